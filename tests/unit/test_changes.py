"""What a refresh drops or renames, worded (``changes.py``): each line, and told once because
the next refresh compares with what this one left."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timezone

from rbd_snapsched import changes
from rbd_snapsched.book import ImageRecord
from rbd_snapsched.catalog import ScheduleCatalog
from rbd_snapsched.levels import ImageSpec, LevelSpec
from rbd_snapsched.render import LogLine
from rbd_snapsched.schedule import Interval, Schedule, ScheduleItem
from rbd_snapsched.store import SCHEDULE_OID, Skipped

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
GLOBAL = LevelSpec.global_level()
POOL = LevelSpec(1, None, None, "rbd/")
NS = LevelSpec(1, "ns", None, "rbd/ns/")
IMAGE = LevelSpec(1, "", "abc", "rbd/img")
OTHER_POOL = LevelSpec(2, None, None, "two/")


def every(text: str) -> Schedule:
    return Schedule().with_item(ScheduleItem(Interval.parse(text)))


def texts(lines: list[LogLine], level: int) -> list[str]:
    assert all(line.level == level for line in lines)
    return [line.text % line.args for line in lines]


def record(name: str, *, scheduled: bool = True) -> ImageRecord:
    return ImageRecord(
        name, T0, name.partition("/")[0], schedule=every("1h") if scheduled else None
    )


def test_a_deleted_pool_is_told_with_what_it_had_then_not_again() -> None:
    previous = ScheduleCatalog({GLOBAL: every("1d"), POOL: every("1h"), NS: every("2h")})
    book = [ImageSpec(1, "", "a"), ImageSpec(1, "ns", "b"), ImageSpec(2, "", "c")]
    known = {1: "rbd", 2: "two"}
    present = {2: "two"}
    lines = changes.pools_gone(known, present, previous, book)
    assert texts(lines, logging.INFO) == [
        "pool rbd (id 1) no longer exists: dropped its 2 schedule level(s) and 2 scheduled image(s)"
    ]
    # The handler keeps ``present`` as the pools known: the next refresh tells nothing.
    assert changes.pools_gone(present, present, previous, book) == []


def test_a_deleted_pool_without_schedules_or_images_is_not_told() -> None:
    previous = ScheduleCatalog({POOL: every("1h")})
    assert changes.pools_gone({1: "rbd", 2: "two"}, {1: "rbd"}, previous, []) == []


class Unwalked:
    def __iter__(self) -> Iterator[ImageSpec]:
        raise AssertionError("the book was walked")


def test_the_book_is_not_walked_when_no_pool_went() -> None:
    assert changes.pools_gone({1: "rbd"}, {1: "rbd"}, ScheduleCatalog(), Unwalked()) == []


def test_levels_gone_from_storage_are_told_per_pool_once() -> None:
    previous = ScheduleCatalog(
        {GLOBAL: every("1d"), POOL: every("1h"), NS: every("2h"), OTHER_POOL: every("3h")}
    )
    catalog = ScheduleCatalog({GLOBAL: every("1d"), OTHER_POOL: every("3h")})
    present = {1: "rbd", 2: "two"}
    lines = changes.levels_gone(previous, catalog, present, [])
    assert texts(lines, logging.WARNING) == [
        f"pool rbd: 2 schedule level(s) no longer in storage ({SCHEDULE_OID} removed or "
        "edited outside this module?), dropped: rbd/, rbd/ns/"
    ]
    # The catalog loaded becomes the previous one: nothing more to tell.
    assert changes.levels_gone(catalog, catalog, present, []) == []


def test_levels_the_store_skipped_or_of_deleted_pools_are_not_told_here() -> None:
    previous = ScheduleCatalog({GLOBAL: every("1d"), POOL: every("1h"), NS: every("2h")})
    skipped = [Skipped("rbd", NS.id, "corrupt", stale=False)]
    lines = changes.levels_gone(previous, ScheduleCatalog(), {1: "rbd"}, skipped)
    assert [line.args[3] for line in lines] == ["rbd/"]  # not the skipped one, nor the global
    assert changes.levels_gone(previous, ScheduleCatalog(), {}, []) == []  # pool deleted


def test_scheduled_images_that_left_are_told_per_pool_in_the_scanned_pools_only() -> None:
    gone = [
        (ImageSpec(1, "", "a"), record("rbd/gone")),
        (ImageSpec(1, "", "b"), record("rbd/demoted")),
        (ImageSpec(1, "", "c"), record("rbd/theirs", scheduled=False)),  # rbd_support's
        (ImageSpec(2, "", "d"), record("two/unscanned")),  # its pool failed to scan
    ]
    lines = changes.images_left(gone, {1})
    assert texts(lines, logging.INFO) == [
        "pool rbd: 2 scheduled image(s) no longer primary and snapshot-mirrored (removed, "
        "demoted or mirroring disabled), no longer scheduled: rbd/gone, rbd/demoted"
    ]
    assert changes.images_left([], {1}) == []  # forgotten: the next refresh has none


def test_a_long_list_of_names_is_cut() -> None:
    gone = [(ImageSpec(1, "", str(i)), record(f"rbd/i{i:02d}")) for i in range(12)]
    (line,) = changes.images_left(gone, {1})
    assert line.args[1] == 12
    assert line.args[2] == ", ".join(f"rbd/i{i:02d}" for i in range(10)) + ", ..."
    assert changes.names(["a"] * changes.LOG_NAMES).count("a") == changes.LOG_NAMES
    assert not changes.names(["a"] * changes.LOG_NAMES).endswith("...")


def test_a_renamed_image_is_told() -> None:
    lines = changes.renamed([("rbd/old", "rbd/new"), ("rbd/a", "rbd/b")])
    assert texts(lines, logging.INFO) == [
        "image rbd/old renamed to rbd/new: it keeps its slots",
        "image rbd/a renamed to rbd/b: it keeps its slots",
    ]
    assert changes.renamed([]) == []  # the book took the new names: nothing on the next pass


def test_a_pool_losing_its_tx_peer_is_told_once_and_its_return_once() -> None:
    lost = changes.peers_changed({}, {1: "rbd"})
    assert texts(lost, logging.ERROR) == [
        "pool rbd has scheduled images but no mirror tx peer: no snapshots there until one is "
        "added (rbd mirror pool peer add/bootstrap)"
    ]
    assert changes.peers_changed({1: "rbd"}, {1: "rbd"}) == []  # still without: not again
    back = changes.peers_changed({1: "rbd"}, {})
    assert texts(back, logging.INFO) == ["pool rbd has a mirror tx peer again"]
