"""The 3.10 conveniences the package rebuilds for Python 3.9 (``rbd_snapsched/pycompat.py``)."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest

from rbd_snapsched.book import ImageRecord
from rbd_snapsched.metrics import ImageSample
from rbd_snapsched.pycompat import slotted, zip_equal


@slotted
@dataclass
class Point:
    """A doc string that must survive."""

    x: int
    y: int = 7
    tags: list[str] = field(default_factory=list)

    def total(self) -> int:
        return self.x + self.y


@slotted
@dataclass(frozen=True)
class Frozen:
    a: int
    b: str = "b"


def test_slotted_instances_have_slots_and_no_dict() -> None:
    p = Point(1)
    assert Point.__dict__["__slots__"] == ("x", "y", "tags")
    assert not hasattr(p, "__dict__")
    with pytest.raises(AttributeError):
        p.z = 3  # type: ignore[attr-defined]


def test_slotted_keeps_defaults_methods_docs_and_dataclass_behaviour() -> None:
    p = Point(1)
    assert (p.x, p.y, p.tags, p.total()) == (1, 7, [], 8)
    assert Point(1).tags is not p.tags  # the factory still runs per instance
    assert Point.__doc__ == "A doc string that must survive."
    assert Point.__qualname__ == "Point"
    assert dataclasses.is_dataclass(Point)
    assert [f.name for f in dataclasses.fields(Point)] == ["x", "y", "tags"]
    assert dataclasses.replace(p, y=2) == Point(1, 2)
    assert repr(p) == "Point(x=1, y=7, tags=[])"
    p.y = 9
    assert p.total() == 10


def test_slotted_frozen_stays_frozen_and_hashable() -> None:
    f = Frozen(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.a = 2  # type: ignore[misc]
    assert hash(f) == hash(Frozen(1, "b"))
    assert not hasattr(f, "__dict__")


def test_the_package_records_are_slotted_on_every_python() -> None:
    """The per-image book's record is the memory that matters at a million images."""
    assert not hasattr(ImageRecord("rbd/a", datetime(2026, 1, 1, tzinfo=timezone.utc)), "__dict__")
    sample = ImageSample("rbd/a", "rbd", None, None, late=False, failing=False)
    assert not hasattr(sample, "__dict__")
    assert sys.getsizeof(sample) < 100


def test_zip_equal_pairs_sequences_of_one_length() -> None:
    assert list(zip_equal([1, 2], "ab")) == [(1, "a"), (2, "b")]
    assert list(zip_equal([1], [2], [3])) == [(1, 2, 3)]
    assert list(zip_equal([], [])) == []


def test_zip_equal_refuses_sequences_of_different_lengths_before_any_pair() -> None:
    with pytest.raises(ValueError, match=r"different lengths \[2, 1\]"):
        zip_equal([1, 2], [1])
