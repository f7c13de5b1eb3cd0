"""The catalog: the most specific level wins; ``list`` selects as upstream."""

from __future__ import annotations

from rbd_snapsched.catalog import ScheduleCatalog
from rbd_snapsched.levels import ImageSpec, LevelSpec
from rbd_snapsched.schedule import Interval, Schedule, ScheduleItem

GLOBAL = LevelSpec.global_level()
POOL = LevelSpec(1, None, None, "p/")
DEFAULT_NS = LevelSpec(1, "", None, "p//")
NS = LevelSpec(1, "ns", None, "p/ns/")
IMAGE = LevelSpec(1, "ns", "abc", "p/ns/img")
OTHER_IMAGE = LevelSpec(1, "ns", "def", "p/ns/other")


def every(text: str) -> Schedule:
    return Schedule().with_item(ScheduleItem(Interval.parse(text)))


def test_most_specific_level_wins() -> None:
    catalog = ScheduleCatalog({GLOBAL: every("1d"), POOL: every("1h")})
    image = ImageSpec(1, "ns", "abc")
    assert catalog.find(image) == every("1h")
    catalog.set(NS, every("30m"))
    assert catalog.find(image) == every("30m")
    catalog.set(IMAGE, every("5m"))
    assert catalog.governing_level(image) is not None
    assert catalog.governing_level(image) == IMAGE
    assert catalog.spec(LevelSpec(1, "ns", "abc", "")).name == "p/ns/img"
    assert catalog.find(image) == every("5m")
    assert catalog.find(ImageSpec(2, "", "x")) == every("1d")
    # The default-namespace level governs only the default namespace.
    catalog.set(DEFAULT_NS, every("2m"))
    assert catalog.find(ImageSpec(1, "", "x")) == every("2m")
    assert catalog.find(ImageSpec(1, "other", "x")) == every("1h")


def test_empty_schedule_removes_level() -> None:
    catalog = ScheduleCatalog({POOL: every("1h")})
    catalog.set(POOL, Schedule())
    assert not catalog and catalog.find(ImageSpec(1, "", "x")) is None


def test_select_level_with_its_own_schedule_and_descendants() -> None:
    catalog = ScheduleCatalog(
        {GLOBAL: every("1d"), POOL: every("1h"), NS: every("3h"), IMAGE: every("5m")}
    )
    assert [level for level, _ in catalog.select(POOL)] == [POOL, NS, IMAGE]
    # Ancestors other than the level itself are not listed.
    assert [level for level, _ in catalog.select(NS)] == [NS, IMAGE]
    assert [level for level, _ in catalog.select(GLOBAL)] == [GLOBAL, POOL, NS, IMAGE]


def test_select_level_without_schedule_shows_nearest_ancestor() -> None:
    catalog = ScheduleCatalog({GLOBAL: every("1d"), POOL: every("1h"), OTHER_IMAGE: every("1m")})
    assert [level for level, _ in catalog.select(IMAGE)] == [POOL]
    assert [level for level, _ in catalog.select(NS)] == [POOL, OTHER_IMAGE]
    assert ScheduleCatalog().select(NS) == []


def test_intersects() -> None:
    catalog = ScheduleCatalog({IMAGE: every("1h")})
    assert catalog.intersects(LevelSpec(1, None, None, ""))
    assert catalog.intersects(NS)
    assert not catalog.intersects(DEFAULT_NS)
    assert not catalog.intersects(LevelSpec(2, None, None, ""))
