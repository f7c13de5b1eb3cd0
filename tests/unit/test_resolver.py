"""RadosResolver's answers for names that cannot exist, with librbd's errors simulated."""

from __future__ import annotations

import errno
from typing import Any

import pytest
import rbd

from rbd_snapsched.cluster import RadosResolver


class _Ioctx:
    def __enter__(self) -> _Ioctx:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def set_namespace(self, namespace: str) -> None:
        pass


class _Client:
    def open_ioctx2(self, pool_id: int) -> _Ioctx:
        return _Ioctx()


def _failing_image(code: int) -> Any:
    def open_image(ioctx: Any, **kwargs: Any) -> Any:
        raise rbd.OSError(f"[errno {code}] error opening image", errno=code)

    return open_image


def test_a_name_too_long_for_the_osd_is_an_image_that_does_not_exist(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rbd, "Image", _failing_image(errno.ENAMETOOLONG))
    resolver = RadosResolver(_Client())  # type: ignore[arg-type]
    assert resolver.image_by_name(1, "", "x" * 5000) is None


def test_other_errors_opening_an_image_still_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rbd, "Image", _failing_image(errno.EIO))
    resolver = RadosResolver(_Client())  # type: ignore[arg-type]
    with pytest.raises(rbd.OSError):
        resolver.image_by_name(1, "", "img")
    # By id (stored levels), even ENAMETOOLONG raises: a stored level is never pruned on it.
    monkeypatch.setattr(rbd, "Image", _failing_image(errno.ENAMETOOLONG))
    with pytest.raises(rbd.OSError):
        resolver.image_by_id(1, "", "x" * 5000)
