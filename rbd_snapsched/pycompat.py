"""What Python 3.10+ gives the code and 3.9 lacks, one way on every version.      pure

ceph-mgr runs on the Python of its distribution: 3.9 in the CentOS Stream 9 container images
of Squid and early Tentacle, 3.11 to 3.14 on Debian. The package keeps to 3.9's language and
library; the two 3.10 conveniences it would otherwise use live here, implemented the same way
on every version so behaviour (and memory) does not depend on the interpreter:

- ``slotted``: what ``@dataclass(slots=True)`` does, for a class already made a dataclass.
- ``zip_equal``: what ``zip(..., strict=True)`` does, for sequences.

Release differences of Ceph itself are ``compat.py``'s, not this file's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar, overload

_C = TypeVar("_C", bound=type)
_A = TypeVar("_A")
_B = TypeVar("_B")
_D = TypeVar("_D")


def slotted(cls: _C) -> _C:
    """Rebuild the dataclass ``cls`` with ``__slots__`` for its fields and no ``__dict__``.

    Put it above ``@dataclass(...)``. As ``dataclass(slots=True)`` does, it makes a new class
    with the same body less the fields' class-level defaults (``__init__`` already holds them),
    so instances take only their slots: the per-image records stay small at a million images.
    Methods must not use zero-argument ``super()`` (its cell would name the old class).
    """
    names = tuple(f.name for f in dataclasses.fields(cls))
    body: dict[str, Any] = {
        key: value
        for key, value in cls.__dict__.items()
        if key not in names and key not in ("__dict__", "__weakref__")
    }
    body["__slots__"] = names
    new: _C = type(cls)(cls.__name__, cls.__bases__, body)
    new.__qualname__ = cls.__qualname__
    return new


@overload
def zip_equal(a: Sequence[_A], b: Sequence[_B], /) -> Iterator[tuple[_A, _B]]: ...


@overload
def zip_equal(
    a: Sequence[_A], b: Sequence[_B], c: Sequence[_D], /
) -> Iterator[tuple[_A, _B, _D]]: ...


def zip_equal(*seqs: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
    """``zip`` over sequences of one length; ValueError (before any pair) if they differ."""
    lengths = {len(s) for s in seqs}
    if len(lengths) > 1:
        raise ValueError(f"zip_equal: sequences of different lengths {[len(s) for s in seqs]}")
    return zip(*seqs)
