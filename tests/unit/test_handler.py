"""The scheduler against a fake cluster and an injected clock: hours of schedule in milliseconds."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from rbd_snapsched.clock import SystemClock
from rbd_snapsched.errors import InvalidArgument
from rbd_snapsched.handler import Handler
from rbd_snapsched.levels import ImageSpec, LevelSpec, PoolInfo
from rbd_snapsched.requests import Outcome, OutcomeKind
from rbd_snapsched.store import SCHEDULE_OID
from tests.fake_cluster import JOURNAL
from tests.unit.harness import LOG, START, Setup


@pytest.fixture
def s() -> Setup:
    return Setup()


def test_discovers_only_primary_snapshot_mode_images(s: Setup) -> None:
    s.cluster.add_image(s.pool, "a")
    s.cluster.add_image(s.pool, "b", "ns")
    s.cluster.add_image(s.pool, "journal", mode=JOURNAL)
    s.cluster.add_image(s.pool, "secondary", primary=False)
    s.add("rbd/", "1h")
    s.handler.tick()
    assert s.status() == [("2025-12-10 18:00:00", "rbd/a"), ("2025-12-10 18:00:00", "rbd/ns/b")]


def test_status_lists_newly_covered_images_at_the_next_pass_after_add(s: Setup) -> None:
    s.handler.tick()  # first refresh: no schedules, nothing discovered
    s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1h")
    assert s.status() == []  # discovery happens on the thread...
    s.handler.tick()  # ...at its next pass, not after the 60 s refresh
    assert s.status() == [("2025-12-10 18:00:00", "rbd/a")]
    assert s.clock.now() == START


def test_hours_of_a_1m_schedule_run_in_milliseconds(s: Setup) -> None:
    images = [s.cluster.add_image(s.pool, f"img{i}") for i in range(5)]
    journal = s.cluster.add_image(s.pool, "journal", mode=JOURNAL)
    s.add("rbd/", "1m")
    began = time.monotonic()
    s.run_until(START + timedelta(hours=3))
    assert time.monotonic() - began < 5
    # One snapshot per image per minute slot: 17:56 .. 20:55 inclusive.
    assert s.created() == Counter({image: 180 for image in images})
    assert journal not in s.driver.started


def test_offset_start_time_fires_at_the_utc_instant(s: Setup) -> None:
    image = s.cluster.add_image(s.pool, "a")
    s.add("rbd/a", "1d", "14:00-05:00")
    s.run_until(START + timedelta(days=2))
    assert s.created()[image] == 2
    assert s.status() == [("2025-12-12 19:00:00", "rbd/a")]


def test_add_requeues_only_the_images_the_level_governs(s: Setup) -> None:
    a = s.cluster.add_image(s.pool, "a")
    s.cluster.add_image(s.pool, "b", "ns")
    s.add("", "1d")
    s.handler.tick()
    assert s.status() == [("2025-12-11 00:00:00", "rbd/a"), ("2025-12-11 00:00:00", "rbd/ns/b")]
    s.add("rbd/ns/", "1h")
    assert s.status() == [("2025-12-10 18:00:00", "rbd/ns/b"), ("2025-12-11 00:00:00", "rbd/a")]
    s.add("rbd/a", "5m")
    assert s.status("rbd/a") == [("2025-12-10 18:00:00", "rbd/a")]
    s.remove("rbd/a")
    s.remove("rbd/ns/")
    assert s.status() == [("2025-12-11 00:00:00", "rbd/a"), ("2025-12-11 00:00:00", "rbd/ns/b")]
    s.remove("")
    assert s.status() == []
    s.run_until(START + timedelta(days=1))
    assert a not in s.created()


def test_status_filters_as_upstream(s: Setup) -> None:
    s.cluster.add_image(s.pool, "a")
    s.cluster.add_image(s.pool, "b", "ns")
    other = s.cluster.add_pool("other")
    s.cluster.add_image(other, "c")
    s.add("", "1h")
    s.handler.tick()
    assert [n for _, n in s.status("rbd/")] == ["rbd/a", "rbd/ns/b"]
    assert [n for _, n in s.status("rbd/ns/")] == ["rbd/ns/b"]
    assert [n for _, n in s.status("rbd//")] == ["rbd/a", "rbd/ns/b"]  # upstream's quirk
    assert [n for _, n in s.status("rbd/a")] == ["rbd/a"]
    assert [n for _, n in s.status("other/")] == ["other/c"]


def test_bad_input_changes_nothing(s: Setup) -> None:
    s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1h", "00:15")
    s.handler.tick()
    before = (dict(s.pool.objects[SCHEDULE_OID]), s.status())
    for interval, start in (("0m", None), ("1h", "dummy"), ("99999999999999d", None), ("x", None)):
        with pytest.raises(InvalidArgument):
            s.add("rbd/", interval, start)
        with pytest.raises(InvalidArgument):
            s.remove("rbd/", interval, start)
    with pytest.raises(InvalidArgument):
        s.remove("rbd/", None, "dummy")  # parsed even without an interval (as Tentacle)
    with pytest.raises(InvalidArgument):
        s.remove("rbd/ns/", "1h", "dummy")  # parsed even where no schedule exists
    assert (dict(s.pool.objects[SCHEDULE_OID]), s.status()) == before
    s.remove("rbd/", "1h")  # no item without a start time: a silent no-op
    assert (dict(s.pool.objects[SCHEDULE_OID]), s.status()) == before


def test_demoted_promoted_and_deleted_images_follow_the_refresh(s: Setup) -> None:
    a = s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1h")
    s.handler.tick()
    s.cluster.image(a).primary = False
    s.clock.advance(timedelta(seconds=59))
    s.handler.tick()
    assert s.status() == [("2025-12-10 18:00:00", "rbd/a")]  # not yet refreshed
    s.clock.advance(timedelta(seconds=1))
    s.handler.tick()
    assert s.status() == []
    s.cluster.image(a).primary = True
    s.clock.advance(timedelta(seconds=60))
    s.handler.tick()
    assert s.status() == [("2025-12-10 18:00:00", "rbd/a")]
    s.cluster.remove_image(a)
    s.clock.advance(timedelta(seconds=60))
    s.handler.tick()
    assert s.status() == []


def test_a_failing_pool_keeps_its_images_and_others_go_on(s: Setup) -> None:
    a = s.cluster.add_image(s.pool, "a")
    other = s.cluster.add_pool("other")
    c = s.cluster.add_image(other, "c")
    s.add("", "1m")
    s.handler.tick()
    s.cluster.failing_pools.add(s.pool.id)
    s.run_until(START + timedelta(minutes=10))
    assert s.created() == Counter({a: 10, c: 10})


def test_a_deleted_pool_leaves_status_and_stops_nothing(s: Setup) -> None:
    s.cluster.add_image(s.pool, "a")
    other = s.cluster.add_pool("other")
    c = s.cluster.add_image(other, "c")
    s.add("", "1m")
    s.add("rbd/", "1h")
    s.handler.tick()
    s.cluster.remove_pool(s.pool)
    s.run_until(START + timedelta(minutes=5))
    assert [n for _, n in s.status()] == ["other/c"]
    assert s.created()[c] == 5
    assert [
        e["name"]
        for e in s.handler.list_schedules(LevelSpec.global_level(), lambda lv: True).values()
    ] == [""]


def test_cap_on_requests_in_flight_and_no_image_twice() -> None:
    s = Setup(hold=True, max_concurrent=2)
    images = [s.cluster.add_image(s.pool, f"img{i}") for i in range(5)]
    s.add("rbd/", "1m")
    s.run_until(START + timedelta(minutes=1))
    assert s.driver.started == images[:2]
    s.driver.release(1)  # finishing one starts the next in line (FIFO)
    assert s.driver.started == images[:3]
    # The next slot comes while the others are still pending: none of them is queued twice;
    # img0, done, waits behind them.
    s.run_until(START + timedelta(minutes=2))
    assert s.driver.started == images[:3]
    s.handler.set_max_concurrent(10)  # raising the cap starts the waiting ones at once
    assert s.driver.started == [*images, images[0]]
    s.driver.release()
    assert s.created() == Counter({images[0]: 2, **{image: 1 for image in images[1:]}})
    with pytest.raises(InvalidArgument):
        s.handler.set_max_concurrent(0)


def test_a_driver_that_raises_releases_the_slot(s: Setup) -> None:
    images = [s.cluster.add_image(s.pool, f"img{i}") for i in range(3)]
    calls: list[ImageSpec] = []

    def broken(
        image: ImageSpec,
        name: str,
        done: Callable[[ImageSpec, Outcome], None],
        recent_since: datetime | None = None,
    ) -> None:
        calls.append(image)
        raise RuntimeError("ioctx open failed")

    s.driver.start = broken  # type: ignore[method-assign]
    s.handler.set_max_concurrent(1)
    s.add("rbd/", "1m")
    s.run_until(START + timedelta(minutes=2))
    assert calls == images * 2


def test_last_outcome_is_recorded_per_image(s: Setup) -> None:
    a = s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1m")
    s.cluster.image(a).create_rc = -22
    s.run_until(START + timedelta(minutes=1))
    record = s.handler.image_record(a)
    assert record is not None and record.last_attempt is not None
    assert record.last_attempt.outcome is not None
    assert record.last_attempt.outcome.kind is OutcomeKind.FAILED


def test_schedules_survive_a_new_handler(s: Setup) -> None:
    s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1h")
    s.add("", "1d", "01:30")
    again = s.make_handler()
    again.tick()
    listed = again.list_schedules(LevelSpec.global_level(), lambda level: True)
    assert {e["name"]: e["schedule"] for e in listed.values()} == {
        "": [{"interval": "1d", "start_time": "01:30:00"}],
        "rbd/": [{"interval": "1h", "start_time": None}],
    }


def test_shutdown_wakes_the_thread_at_once() -> None:
    s = Setup()
    s.cluster.add_image(s.pool, "a")
    handler = Handler(
        io=s.cluster,
        resolver=s.cluster,
        store=s.store,
        driver=s.driver,
        clock=SystemClock(),
        log=LOG,
    )
    handler.start()
    handler.add_schedule(handler.resolve("rbd/"), "1d", None)
    began = time.monotonic()
    handler.shutdown()
    assert time.monotonic() - began < 1
    assert not any(t.name == "rbd_snapsched" for t in threading.enumerate())


def test_a_pool_without_tx_peer_is_reported_once_and_skipped(
    s: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    a = s.cluster.add_image(s.pool, "a")
    health: list[dict[str, dict[str, object]]] = []
    s.handler.on_health = health.append
    s.pool.tx_peer = False
    s.add("rbd/", "1m")
    with caplog.at_level(logging.ERROR):
        s.run_until(START + timedelta(minutes=5))
    assert a not in s.created()
    assert caplog.text.count("no mirror tx peer") == 1
    assert s.status() == [("2025-12-10 18:01:00", "rbd/a")]  # still scheduled
    # Its images also go late (2x 1m without a snapshot): the RPO is really missed.
    assert [sorted(h) for h in health][:2] == [
        ["RBD_SNAPSCHED_NO_TX_PEER"],
        ["RBD_SNAPSCHED_LATE", "RBD_SNAPSCHED_NO_TX_PEER"],
    ]
    assert health[0]["RBD_SNAPSCHED_NO_TX_PEER"]["detail"] == [
        "pool rbd: scheduled images get no mirror snapshots until a peer is added"
    ]
    s.pool.tx_peer = True  # seen at the next full refresh
    s.run_until(START + timedelta(minutes=7))
    assert health[-1] == {}
    assert s.created()[a] >= 1


def test_a_shorter_refresh_interval_applies_at_once(s: Setup) -> None:
    a = s.cluster.add_image(s.pool, "a")
    s.handler.refresh_interval = 3600
    s.add("rbd/", "1h")
    s.handler.tick()
    s.cluster.image(a).primary = False
    s.handler.set_refresh_interval(2)
    s.clock.advance(timedelta(seconds=2))
    s.handler.tick()
    assert s.status() == []


def test_a_change_during_a_full_refresh_is_rescanned_at_the_next_pass(s: Setup) -> None:
    s.cluster.add_image(s.pool, "a")
    other = s.cluster.add_pool("other")
    s.cluster.add_image(other, "c")
    s.add("rbd/", "1h")
    real_discover = s.cluster.discover

    def discover_then_add(
        pool: PoolInfo, wanted: Callable[[LevelSpec], bool]
    ) -> dict[ImageSpec, str] | None:
        found = real_discover(pool, wanted)
        if pool.name == "rbd" and not s.handler.list_schedules(
            s.handler.resolve("other/"), lambda level: True
        ):
            s.add("other/", "1h")  # a command lands while the refresh is scanning
        return found

    s.cluster.discover = discover_then_add  # type: ignore[method-assign]
    s.handler.tick()
    s.cluster.discover = real_discover  # type: ignore[method-assign]
    s.handler.tick()  # the next pass, well before the next full refresh
    assert sorted(name for _, name in s.status()) == ["other/c", "rbd/a"]


# -- data faults: each logged once, clearly (issue 13) ---------------------------------------


def _lines(caplog: pytest.LogCaptureFixture, needle: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if needle in r.getMessage()]


def test_a_deleted_pool_is_told_once_with_what_went_with_it(
    s: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    other = s.cluster.add_pool("other")
    s.cluster.add_image(s.pool, "a")
    s.cluster.add_image(s.pool, "b")
    kept = s.cluster.add_image(other, "c")
    s.add("rbd/", "1m")
    s.add("rbd/a", "2m")
    s.add("other/", "1m")
    s.handler.refresh()
    with caplog.at_level(logging.INFO):
        s.cluster.remove_pool(s.pool)
        s.handler.refresh()
        s.handler.refresh()
    (line,) = _lines(caplog, "no longer exists")
    assert line == (
        f"pool rbd (id {s.pool.id}) no longer exists: dropped its 2 schedule level(s) and "
        "2 scheduled image(s)"
    )
    assert not _lines(caplog, "no longer in storage") and not _lines(caplog, "no longer primary")
    assert [e[1] for e in s.status()] == ["other/c"] and kept in s.handler._book


def test_schedules_removed_from_storage_by_hand_are_dropped_and_told(
    s: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1m")
    s.add("rbd/ns/", "1h")
    s.handler.refresh()
    with caplog.at_level(logging.INFO):
        del s.pool.objects[SCHEDULE_OID]  # `rados rm` of our object
        s.handler.refresh()
        s.handler.refresh()
    (line,) = _lines(caplog, "no longer in storage")
    assert line.startswith("pool rbd: 2 schedule level(s) no longer in storage (")
    assert line.endswith("dropped: rbd/, rbd/ns/")
    assert s.handler.list_schedules(s.handler.resolve(""), lambda level: True) == {}
    assert s.status() == []


def test_scheduled_images_that_leave_or_are_renamed_are_told_per_pool(
    s: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    gone = s.cluster.add_image(s.pool, "gone")
    demoted = s.cluster.add_image(s.pool, "demoted")
    renamed = s.cluster.add_image(s.pool, "old")
    s.add("rbd/", "1m")
    s.handler.refresh()
    with caplog.at_level(logging.INFO):
        s.cluster.remove_image(gone)
        s.cluster.image(demoted).primary = False
        s.cluster.pools[s.pool.id].namespaces[""].images[renamed.image_id] = "new"
        s.handler.refresh()
        s.handler.refresh()
    (left,) = _lines(caplog, "no longer scheduled")
    assert left.startswith("pool rbd: 2 scheduled image(s) no longer primary")
    assert left.endswith("no longer scheduled: rbd/gone, rbd/demoted")
    (moved,) = _lines(caplog, "renamed")
    assert moved == "image rbd/old renamed to rbd/new: it keeps its slots"
    assert [e[1] for e in s.status()] == ["rbd/new"]
    # Told by the rescan after add/remove too; a removed schedule is not an image leaving.
    s.cluster.remove_image(renamed)
    s.add("rbd/ns/", "1h")
    with caplog.at_level(logging.INFO):
        s.handler.tick()  # the touched pool's rescan
    assert _lines(caplog, "no longer scheduled")[1].endswith("no longer scheduled: rbd/new")
    s.remove("rbd/")
    with caplog.at_level(logging.INFO):
        s.handler.tick()
        s.handler.refresh()
    assert len(_lines(caplog, "no longer scheduled")) == 2


def test_rooks_reconcile_around_a_slot_loses_no_slot_and_doubles_none(s: Setup) -> None:
    """Rook removes every schedule of the pool and adds the spec's again on each reconcile
    (every few seconds under churn). Reconciles straddling slots, each with its rescan, give
    exactly one snapshot per slot."""
    a = s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1m")
    first = START.replace(second=0) + timedelta(minutes=1)
    s.run_until(first - timedelta(seconds=30))
    base = s.created()[a]
    for n in range(3):
        slot = first + timedelta(minutes=n)
        s.run_until(slot - timedelta(seconds=1))
        s.remove("rbd/", "1m")  # the gap spans the slot
        s.run_until(slot + timedelta(seconds=2))  # a pass (with the rescan) in the gap
        s.add("rbd/", "1m")
        s.run_until(slot + timedelta(seconds=20))
        assert s.created()[a] == base + n + 1, f"slot {slot}"
        s.remove("rbd/", "1m")  # and once more mid-minute: nothing extra
        s.add("rbd/", "1m")
        s.run_until(slot + timedelta(seconds=40))
        assert s.created()[a] == base + n + 1, f"after slot {slot}"
