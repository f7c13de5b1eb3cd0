"""snapshot-now and explain against the fake cluster and an injected clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rbd_snapsched import render
from rbd_snapsched.errors import InvalidArgument
from tests.fake_cluster import JOURNAL
from tests.unit.harness import START, Setup


@pytest.fixture
def s() -> Setup:
    return Setup()


def test_snapshot_now_takes_one_snapshot_of_each_primary_image_under_the_level(
    s: Setup,
) -> None:
    a = s.cluster.add_image(s.pool, "a")
    b = s.cluster.add_image(s.pool, "b", "ns")
    s.cluster.add_image(s.pool, "journal", mode=JOURNAL)
    s.cluster.add_image(s.pool, "secondary", primary=False)
    s.add("rbd/", "1d")
    s.handler.tick()
    before = s.handler.status(s.handler.resolve(""), lambda i: True)
    s.handler.pause(s.handler.resolve("rbd/"))  # an explicit request: the pause does not apply
    out = s.handler.snapshot_now(s.handler.resolve("rbd/")).text()
    assert out.startswith("snapshot requested for 2 image(s) under rbd/")
    assert s.created() == {a: 1, b: 1}
    record = s.handler.image_record(a)
    assert record is not None and record.last_attempt is not None  # recorded like a slot's
    assert record.last_attempt.slot is None and render.result(record) == "created"
    # The schedule is untouched: same next runs.
    after = s.handler.status(s.handler.resolve(""), lambda i: True)["scheduled_images"]
    assert [(r["schedule_time"], r["image"], r["paused_by"]) for r in after] == [
        (r["schedule_time"], r["image"], "rbd/") for r in before["scheduled_images"]
    ]


def test_snapshot_now_covers_unscheduled_images_and_respects_the_cap() -> None:
    s = Setup(hold=True, max_concurrent=1)
    images = [s.cluster.add_image(s.pool, f"i{n}") for n in range(3)]
    out = s.handler.snapshot_now(s.handler.resolve("rbd/")).text()  # no schedule at all
    assert out == "snapshot requested for 3 image(s) under rbd/; 1 request(s) running now"
    assert s.driver.started == images[:1]
    again = s.handler.snapshot_now(s.handler.resolve("rbd/")).text()
    assert "(3 already in progress)" in again
    s.driver.release()
    s.driver.release()
    s.driver.release()
    assert s.created() == {i: 1 for i in images}


def test_explain_names_the_governing_level_why_and_the_next_runs(s: Setup) -> None:
    a = s.cluster.add_image(s.pool, "a")
    s.cluster.add_image(s.pool, "b", "ns")
    s.add("", "1d")
    s.add("rbd/", "1h")
    s.add("rbd/a", "30m", "00:10")
    s.handler.pause(s.handler.resolve("rbd/ns/"))
    s.handler.tick()
    out = s.handler.explain(s.handler.resolve("rbd/"), 3)
    assert out["now"] == "2025-12-10T17:55:21Z"
    first, second = out["images"]
    assert first["image"] == "rbd/a" and first["governed_by"] == "rbd/a"
    assert first["why"] == "rbd/a is the most specific level with a schedule"
    assert [lv["level"] for lv in first["levels"]] == ["rbd/a", "rbd/", ""]
    assert first["levels"][0]["schedule"] == "every 30m starting at 00:10:00"
    assert first["next_runs"] == [
        "2025-12-10T18:10:00Z",
        "2025-12-10T18:40:00Z",
        "2025-12-10T19:10:00Z",
    ]
    assert first["paused_by"] is None and first["rbd_support"] is None
    assert second["image"] == "rbd/ns/b" and second["governed_by"] == "rbd/"
    assert second["paused_by"] == "rbd/ns/"
    assert len(s.handler.explain(s.handler.resolve("rbd/a"), 1)["images"]) == 1
    assert s.handler.image_record(a) is not None


def test_explain_says_when_rbd_support_holds_an_image_or_nothing_governs(s: Setup) -> None:
    s.cluster.add_image(s.pool, "a")
    (entry,) = s.handler.explain(s.handler.resolve("rbd/"), 5)["images"]
    assert entry["governed_by"] is None and entry["next_runs"] == []
    assert entry["why"] == "no level above it has a schedule"
    s.upstream_option.set('[{"interval": "1h", "start_time": null}]')
    s.add("rbd/", "1h")
    s.clock.advance(timedelta(minutes=2))
    s.handler.refresh()
    (entry,) = s.handler.explain(s.handler.resolve("rbd/"), 5)["images"]
    assert entry["rbd_support"] == "" and entry["next_runs"] == []
    assert entry["why"].startswith("rbd_support still schedules it")


def test_explain_lists_only_the_runs_before_the_end_of_time(s: Setup) -> None:
    """An anchor at the last minute datetime can hold has one run: the next would overflow."""
    s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1h", "9999-12-31T23:00Z")
    s.handler.tick()
    (entry,) = s.handler.explain(s.handler.resolve("rbd/"), 5)["images"]
    assert entry["next_runs"] == ["9999-12-31T23:00:00Z"]
    (row,) = s.handler.status(s.handler.resolve("rbd/"), lambda i: True)["scheduled_images"]
    assert row["schedule_time"] == "9999-12-31 23:00:00"


@pytest.mark.parametrize("count", [0, 101, -1])
def test_explain_count_out_of_range_is_einval(s: Setup, count: int) -> None:
    with pytest.raises(InvalidArgument):
        s.handler.explain(s.handler.resolve(""), count)
    assert s.clock.now() == START
