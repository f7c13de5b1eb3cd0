"""Staggering (upstream main, PR 66758): images without a start time spread over their interval.

The qa properties upstream pins, on a fake clock: 60 images at ``5m`` without a start time land
in exactly 5 distinct next-run minutes, 60 s apart (one extra only when the check straddles a
period boundary), stable as images come and go; images with a start time share one slot; off
is today's behaviour exactly; toggling the option re-queues every image at once.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from rbd_snapsched.levels import ImageSpec
from rbd_snapsched.pycompat import zip_equal
from rbd_snapsched.schedule import (
    EPOCH,
    MAX_INTERVAL_MINUTES,
    Interval,
    Schedule,
    ScheduleItem,
    StartTime,
    stagger_key,
    stagger_offset,
)
from tests.unit.harness import START, Setup

UTC = timezone.utc
FIVE = Interval(5)
MINUTE = timedelta(minutes=1)


def item(interval: str, start: str = "") -> ScheduleItem:
    return ScheduleItem(Interval.parse(interval), StartTime.parse(start))


def schedule(*items: ScheduleItem) -> Schedule:
    return Schedule(frozenset(items))


def minutes_apart(times: Iterable[datetime]) -> list[timedelta]:
    ordered = sorted(set(times))
    return [b - a for a, b in zip(ordered, ordered[1:])]


def keys(n: int, pool_id: int = 2) -> list[int]:
    """Keys of ``n`` images with ids shaped like librbd's (12 hex digits)."""
    return [stagger_key(pool_id, "", f"{0x10AB5C7E0000 + i * 7919:012x}") for i in range(n)]


# -- the offset function --------------------------------------------------------------------

ids = st.text(alphabet="0123456789abcdef", min_size=1, max_size=16)
namespaces = st.text(max_size=12)


@given(st.integers(0, 2**31), namespaces, ids, st.integers(1, MAX_INTERVAL_MINUTES))
def test_offset_is_a_whole_minute_within_the_interval_and_deterministic(
    pool_id: int, namespace: str, image_id: str, minutes: int
) -> None:
    key = stagger_key(pool_id, namespace, image_id)
    assert key == stagger_key(pool_id, namespace, image_id)
    assert 0 <= key < 2**32
    offset = stagger_offset(key, Interval(minutes))
    assert isinstance(offset, int)
    assert 0 <= offset < minutes


def test_key_is_crc32_of_the_ids_so_every_process_and_python_agrees() -> None:
    # A literal, not recomputed: a change of hash would move every image's slots.
    assert stagger_key(2, "", "10ab5c7e0000") == zlib.crc32(b"2//10ab5c7e0000")
    assert stagger_key(2, "", "10ab5c7e0000") == 0x455B6975
    assert stagger_key(2, "ns", "10ab5c7e0000") != stagger_key(2, "", "10ab5c7e0000")


starts = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@given(starts, st.integers(1, 3 * 1440), st.integers(0, 2**32 - 1))
def test_staggered_next_run_is_the_first_grid_instant_after_now(
    now: datetime, minutes: int, key: int
) -> None:
    interval = Interval(minutes)
    offset = stagger_offset(key, interval)
    due = ScheduleItem(interval).next_run(now, offset)
    assert now < due <= now + interval.timedelta
    assert due.second == due.microsecond == 0
    assert ((due - EPOCH) // MINUTE - offset) % minutes == 0


@given(starts, st.integers(0, 2**32 - 1))
def test_an_item_with_a_start_time_ignores_the_offset(now: datetime, key: int) -> None:
    for timed in (item("5m", "00:02"), item("1h", "14:00-05:00"), item("1d", "2100-01-01")):
        assert timed.next_run(now, stagger_offset(key, timed.interval)) == timed.next_run(now)


@given(starts, st.integers(0, 2**32 - 1))
def test_several_items_next_run_is_the_minimum_and_phase_equals_key(
    now: datetime, key: int
) -> None:
    mixed = schedule(item("5m"), item("7m"), item("1h", "00:30"))
    assert mixed.stagger_period == 35
    due = mixed.next_run(now, key)
    assert due == min(
        item("5m").next_run(now, key % 5),
        item("7m").next_run(now, key % 7),
        item("1h", "00:30").next_run(now),
    )
    assert due == mixed.next_run(now, key % mixed.stagger_period)


def test_stagger_none_is_todays_next_run() -> None:
    sch = schedule(item("5m"), item("1d", "14:00"))
    for k in range(200):
        now = START + k * timedelta(seconds=97)
        assert sch.next_run(now, None) == sch.next_run(now) == item("5m").next_run(now)


# -- the qa properties, pure ----------------------------------------------------------------


def next_runs(now: datetime, image_keys: Iterable[int], sch: Schedule) -> list[datetime]:
    return [sch.next_run(now, key) for key in image_keys]


def test_60_images_at_5m_land_in_exactly_5_minutes_60s_apart() -> None:
    five = schedule(item("5m"))
    assert set(Counter(k % 5 for k in keys(60))) == {0, 1, 2, 3, 4}  # the ids cover all phases
    for now in (START, START.replace(minute=59, second=59), START.replace(second=0)):
        runs = next_runs(now, keys(60), five)
        assert len(set(runs)) == 5
        assert minutes_apart(runs) == [MINUTE] * 4
        assert all(now < due <= now + FIVE.timedelta for due in runs)


def test_one_extra_minute_only_when_the_check_straddles_a_period_boundary() -> None:
    five = schedule(item("5m"))
    before = datetime(2025, 12, 10, 17, 59, 59, tzinfo=UTC)
    after = datetime(2025, 12, 10, 18, 0, 1, tzinfo=UTC)
    within = datetime(2025, 12, 10, 17, 59, 1, tzinfo=UTC)
    image_keys = keys(60)
    # half read before 18:00, half after: 18:00 is still listed, 18:05 already is
    straddling = next_runs(before, image_keys[:30], five) + next_runs(after, image_keys[30:], five)
    assert len(set(straddling)) == 6
    assert minutes_apart(straddling) == [MINUTE] * 5
    # the same split within one period: still exactly 5
    same = next_runs(within, image_keys[:30], five) + next_runs(before, image_keys[30:], five)
    assert len(set(same)) == 5


def test_adding_and_removing_images_keeps_the_others_next_runs() -> None:
    five = schedule(item("5m"))
    image_keys = keys(80)
    first = dict(zip_equal(image_keys[:60], next_runs(START, image_keys[:60], five)))
    kept = image_keys[10:80]  # ten removed, twenty added
    again = dict(zip_equal(kept, next_runs(START, kept, five)))
    assert all(again[k] == first[k] for k in image_keys[10:60])


def test_images_with_a_start_time_share_one_slot() -> None:
    timed = schedule(item("5m", "00:02"))
    runs = next_runs(START, keys(60), timed)
    assert set(runs) == {timed.next_run(START)} == {datetime(2025, 12, 10, 17, 57, tzinfo=UTC)}


# -- the scheduler ------------------------------------------------------------------------


def status_times(s: Setup) -> dict[str, str]:
    result = s.handler.status(s.handler.resolve(""), lambda image: True)
    return {e["image"]: e["schedule_time"] for e in result["scheduled_images"]}


def as_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def sixty(s: Setup, count: int = 60, prefix: str = "img") -> list[ImageSpec]:
    return [s.cluster.add_image(s.pool, f"{prefix}{i:02d}") for i in range(count)]


def test_scheduler_staggers_60_images_at_5m_and_status_explain_show_it() -> None:
    s = Setup()
    s.handler.set_stagger(True)
    images = sixty(s)
    s.add("rbd/", "5m")
    s.handler.tick()
    times = status_times(s)
    assert len(times) == 60
    assert len(set(times.values())) == 5
    assert minutes_apart(map(as_time, times.values())) == [MINUTE] * 4
    five = schedule(item("5m"))
    for image in images:
        record = s.handler.image_record(image)
        assert record is not None and record.next_run == five.next_run(START, stagger_key(*image))
        assert times[record.name] == record.next_run.strftime("%Y-%m-%d %H:%M:%S")
    # explain shows the same staggered runs, every 5 minutes from there
    out = s.handler.explain(s.handler.resolve("rbd/"), 3)
    for entry in out["images"]:
        first = as_time(times[entry["image"]])
        assert entry["next_runs"] == [
            (first + k * FIVE.timedelta).strftime("%Y-%m-%dT%H:%M:00Z") for k in range(3)
        ]


def test_scheduler_snapshots_each_image_at_its_own_minute_then_every_5m() -> None:
    s = Setup()
    s.handler.set_stagger(True)
    images = sixty(s)
    s.add("rbd/", "5m")
    s.handler.tick()
    before = s.created()
    s.run_until(START + timedelta(minutes=15))
    made = s.created() - before
    assert all(made[image] == 3 for image in images)
    for image in images:
        record = s.handler.image_record(image)
        assert record is not None and record.slot is not None
        assert ((record.slot - EPOCH) // MINUTE) % 5 == stagger_key(*image) % 5
    times = status_times(s)
    assert len(set(times.values())) == 5


def test_adding_and_removing_images_leaves_the_others_where_they_were() -> None:
    s = Setup()
    s.handler.set_stagger(True)
    images = sixty(s)
    s.add("rbd/", "5m")
    s.handler.tick()
    first = status_times(s)
    for image in images[:10]:
        s.cluster.remove_image(image)
    sixty(s, 20, "new")
    s.clock.advance(timedelta(seconds=30))  # 17:55:51: no slot passes
    s.handler.request_refresh()
    s.handler.tick()
    again = status_times(s)
    assert len(again) == 70
    assert {n: again[n] for n in first if n in again} == {
        n: t for n, t in first.items() if n in again
    }
    assert len(set(again.values())) == 5


def test_images_with_a_start_time_keep_their_shared_slot() -> None:
    s = Setup()
    s.handler.set_stagger(True)
    sixty(s)
    s.add("rbd/", "5m", "00:02")
    s.add("rbd/img07", "5m", "00:02")  # image level too
    s.handler.tick()
    assert set(status_times(s).values()) == {"2025-12-10 17:57:00"}


def test_stagger_off_is_todays_behaviour_exactly() -> None:
    s, today = Setup(), Setup()
    s.handler.set_stagger(True)
    s.handler.set_stagger(False)
    for setup in (s, today):
        sixty(setup)
        setup.add("rbd/", "5m")
        setup.add("rbd/img07", "1h", "00:02")
        setup.run_until(START + timedelta(minutes=12))
    assert s.status() == today.status()
    assert set(status_times(s).values()) == {"2025-12-10 18:10:00", "2025-12-10 19:02:00"}
    assert s.created() == today.created()


def test_toggling_requeues_every_image_at_once() -> None:
    s = Setup()
    sixty(s)
    s.add("rbd/", "5m")
    s.add("rbd/img07", "5m", "00:02")
    s.handler.tick()
    assert set(status_times(s).values()) == {"2025-12-10 18:00:00", "2025-12-10 17:57:00"}

    s.handler.set_stagger(True)  # no pass of the thread needed
    on = status_times(s)
    assert on["rbd/img07"] == "2025-12-10 17:57:00"  # a start time keeps its slot
    del on["rbd/img07"]
    assert len(set(on.values())) == 5
    assert minutes_apart(map(as_time, on.values())) == [MINUTE] * 4

    s.handler.set_stagger(False)
    assert set(status_times(s).values()) == {"2025-12-10 18:00:00", "2025-12-10 17:57:00"}


def test_an_image_already_due_is_not_moved_by_a_toggle() -> None:
    s = Setup()
    (image,) = sixty(s, 1)
    s.add("rbd/", "5m")
    s.handler.tick()
    s.clock.set(datetime(2025, 12, 10, 18, 0, 0, 500000, tzinfo=UTC))  # due, not yet popped
    s.handler.set_stagger(True)
    assert status_times(s) == {"rbd/img00": "2025-12-10 18:00:00"}
    before = s.created()[image]
    s.handler.tick()
    assert s.created()[image] == before + 1
    record = s.handler.image_record(image)
    assert record is not None
    assert record.next_run == schedule(item("5m")).next_run(s.clock.now(), stagger_key(*image))


def test_a_toggle_keeps_consecutive_slots_less_than_two_intervals_apart() -> None:
    five = schedule(item("5m"))
    for key in range(5):
        for second in range(0, 600, 7):
            toggle = START + timedelta(seconds=second)
            last_off = five.next_run(toggle - FIVE.timedelta)  # the last slot served, stagger off
            last_on = five.next_run(toggle - FIVE.timedelta, key)
            assert five.next_run(toggle, key) - last_off < 2 * FIVE.timedelta  # turned on
            assert five.next_run(toggle) - last_on < 2 * FIVE.timedelta  # turned off
