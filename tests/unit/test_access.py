"""What a caller's caps let it change and see (``rbd_snapsched/access.py``), against a fake
``is_authorized`` that grants pool ``p1`` (all namespaces) and namespace ``p2/ns`` only."""

from __future__ import annotations

import pytest

from rbd_snapsched import access
from rbd_snapsched.errors import NotAuthorized
from rbd_snapsched.levels import ImageSpec, LevelName, LevelSpec

ASKED: list[dict[str, str]] = []


def restricted(args: dict[str, str]) -> bool:
    ASKED.append(args)
    if args.get("pool") == "p1":
        return True
    return args.get("pool") == "p2" and args.get("namespace") == "ns"


def unrestricted(args: dict[str, str]) -> bool:
    return True


def test_authorize_judges_the_name_alone_and_refuses_with_eacces() -> None:
    access.authorize(restricted, LevelName("p1", None, None))
    access.authorize(restricted, LevelName("p2", "ns", "img"))
    with pytest.raises(NotAuthorized, match="not authorized on pool=p2, namespace=None"):
        access.authorize(restricted, LevelName("p2", None, None))
    with pytest.raises(NotAuthorized, match="pool=None"):
        access.authorize(restricted, LevelName(None, None, None))  # global: unrestricted only


def test_a_restricted_caller_sees_only_its_levels() -> None:
    visible = access.level_visible(restricted)
    assert visible(LevelSpec(1, None, None, "p1/"))
    assert visible(LevelSpec(2, "ns", None, "p2/ns/"))
    assert not visible(LevelSpec(2, None, None, "p2/"))
    assert not visible(LevelSpec.global_level())
    assert access.level_visible(unrestricted)(LevelSpec.global_level())


def test_a_restricted_caller_sees_only_its_images_asking_once_per_namespace() -> None:
    ASKED.clear()
    visible = access.image_visible(restricted, lambda: {1: "p1", 2: "p2"})
    images = [
        ImageSpec(1, "", "a"),
        ImageSpec(1, "", "b"),
        ImageSpec(2, "ns", "c"),
        ImageSpec(2, "", "d"),
        ImageSpec(3, "", "gone"),  # a pool the osd map no longer has
    ]
    assert [visible(i) for i in images] == [True, True, True, False, False]
    assert {"pool": "p1", "namespace": ""} in ASKED
    assert ASKED.count({"pool": "p1", "namespace": ""}) == 1


def test_an_unrestricted_caller_sees_everything_without_listing_pools() -> None:
    def no_pools() -> dict[int, str]:
        raise AssertionError("not needed")

    assert access.image_visible(unrestricted, no_pools)(ImageSpec(9, "x", "y"))
