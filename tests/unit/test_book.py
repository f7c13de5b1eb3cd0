"""The per-image book alone: records, lateness on time, failures, missed slots, counters."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from rbd_snapsched.book import LATENCY_BUCKETS, Book, Skip
from rbd_snapsched.levels import ImageSpec, LevelSpec
from rbd_snapsched.requests import Outcome, OutcomeKind, State
from rbd_snapsched.schedule import Interval, Schedule, ScheduleItem

T0 = datetime(2026, 3, 1, 12, 0, 30, tzinfo=timezone.utc)
A = ImageSpec(1, "", "a")
B = ImageSpec(1, "ns", "b")
C = ImageSpec(2, "", "c")
MINUTE = Schedule().with_item(ScheduleItem(Interval.parse("1m"), None))
HOURLY = (
    Schedule()
    .with_item(ScheduleItem(Interval.parse("1h"), None))
    .with_item(ScheduleItem(Interval.parse("1d"), None))
)
CREATED = Outcome(OutcomeKind.CREATED, State.CREATING, 0, 7, "created")
FAILED = Outcome(OutcomeKind.FAILED, State.CREATING, -22, None, "error when creating: rc=-22")
NOT_PRIMARY = Outcome(OutcomeKind.SKIPPED_NOT_PRIMARY, State.GETTING_INFO, 0, None, "demoted")


def tracked(*images: ImageSpec, schedule: Schedule = MINUTE, factor: float = 2.0) -> Book:
    book = Book(factor)
    for image in images:
        book.track(image, f"p{image.pool_id}/{image.image_id}", T0)
        book.set_schedule(image, schedule)
    return book


def test_an_image_goes_late_at_factor_times_its_shortest_interval_and_not_before() -> None:
    book = tracked(A, schedule=HOURLY)
    assert book[A].interval == timedelta(hours=1)
    assert book.next_late_at() == T0 + timedelta(hours=2)
    assert not book.advance(T0 + timedelta(hours=2) - timedelta(microseconds=1))
    assert book.late(T0 + timedelta(hours=2)) == []
    assert book.advance(T0 + timedelta(hours=2))  # at the deadline: late
    (late,) = book.late(T0 + timedelta(hours=3))
    assert late.image == A and late.lateness == timedelta(hours=3)
    assert book.next_late_at() is None  # nothing else can go late


def test_a_success_clears_lateness_and_rearms_from_it() -> None:
    book = tracked(A)
    book.advance(T0 + timedelta(minutes=5))
    assert [x.image for x in book.late(T0 + timedelta(minutes=5))] == [A]
    now = T0 + timedelta(minutes=5, seconds=2)
    book.dispatched(A, T0 + timedelta(minutes=5), now - timedelta(seconds=1))
    book.finished(A, CREATED, now)
    assert book.late(now) == [] and book[A].last_success == now and book[A].missed == 0
    assert book.next_late_at() == now + timedelta(minutes=2)


def test_seed_is_the_last_success_until_a_newer_one() -> None:
    book = tracked(A)
    book.seed(A, T0 - timedelta(minutes=10))  # an old snapshot: late at once
    assert book[A].last_success == T0 - timedelta(minutes=10)
    assert book.advance(T0)
    book.seed(A, T0 - timedelta(minutes=20))  # older than what is known: ignored
    assert book[A].last_success == T0 - timedelta(minutes=10)
    book.seed(A, None)  # no snapshot at all: nothing learnt
    book.seed(C, T0)  # unknown image: ignored
    assert C not in book


def test_failures_count_in_a_row_name_the_step_and_clear_on_success() -> None:
    book = tracked(A, B)
    for minute in (1, 2, 3):
        slot = T0 + timedelta(minutes=minute)
        book.dispatched(A, slot, slot)
        book.finished(A, FAILED, slot + timedelta(seconds=1))
    ((image, record),) = book.failing()
    assert image == A and record.failures == 3 and record.missed == 3
    assert record.last_attempt is not None and record.last_attempt.failed
    assert book.totals.results[("p1", "failed", "create_snapshot")] == 3
    book.dispatched(A, T0 + timedelta(minutes=4), T0 + timedelta(minutes=4))
    book.finished(A, CREATED, T0 + timedelta(minutes=4, seconds=1))
    assert book.failing() == [] and book[A].failures == 0 and book[A].missed == 0


def test_skips_and_non_snapshots_are_missed_slots_counted_by_reason() -> None:
    book = tracked(A)
    book.skipped(A, Skip.PAUSED)
    book.skipped(A, Skip.NO_TX_PEER)
    book.dispatched(A, T0, T0)
    book.finished(A, NOT_PRIMARY, T0)
    assert book[A].missed == 3 and book.failing() == []
    results = book.totals.results
    assert results[("p1", "skipped", "paused")] == 1
    assert results[("p1", "skipped", "no_tx_peer")] == 1
    assert results[("p1", "skipped", "not_primary")] == 1
    book.dispatched(A, None, T0)  # snapshot-now / catch-up: not a slot, not missed
    book.finished(A, NOT_PRIMARY, T0)
    assert book[A].missed == 3


def test_latency_lands_in_its_bucket() -> None:
    book = tracked(A)
    book.dispatched(A, T0, T0)
    book.finished(A, CREATED, T0 + timedelta(seconds=0.7))
    totals = book.totals
    assert totals.latency_count == 1 and abs(totals.latency_sum - 0.7) < 1e-9
    assert totals.latency_buckets[LATENCY_BUCKETS.index(1.0)] == 1
    assert sum(totals.latency_buckets) == 1


def test_forget_drops_the_image_from_every_view() -> None:
    book = tracked(A, B)
    book.dispatched(B, T0, T0)
    book.finished(B, FAILED, T0)
    book.advance(T0 + timedelta(minutes=3))
    book.forget(A)
    book.forget(B)
    book.forget(B)  # twice is harmless
    assert len(book) == 0 and book.late(T0) == [] and book.failing() == []
    assert book.covered(LevelSpec.global_level()) == []


def test_covered_follows_pools_and_namespaces() -> None:
    book = tracked(A, B, C)
    pool1 = LevelSpec(1, None, None, "p1/")
    assert sorted(book.covered(pool1)) == sorted([A, B])
    assert book.covered(LevelSpec(1, "ns", None, "p1/ns/")) == [B]
    assert book.covered(LevelSpec(2, "", "c", "p2/c")) == [C]
    assert sorted(book.covered(LevelSpec.global_level())) == sorted([A, B, C])


def test_a_schedule_removed_or_given_to_rbd_support_is_never_late() -> None:
    book = tracked(A)
    book.set_schedule(A, None)
    assert book[A].late_at is None
    assert not book.advance(T0 + timedelta(days=1)) and book.late(T0 + timedelta(days=1)) == []


def test_a_new_factor_recomputes_every_deadline() -> None:
    book = tracked(A, B)
    book.advance(T0 + timedelta(minutes=3))
    assert len(book.late(T0 + timedelta(minutes=3))) == 2
    book.set_late_factor(5.0)
    assert book.late(T0 + timedelta(minutes=3)) == []
    assert book.next_late_at() == T0 + timedelta(minutes=5)


# A model check: after any sequence of events, the late set equals a brute-force computation.
events = st.lists(
    st.tuples(
        st.sampled_from(["advance", "success", "seed", "reschedule", "forget", "track"]),
        st.sampled_from([A, B, C]),
        st.integers(min_value=0, max_value=400),  # seconds
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(events, st.sampled_from([1.0, 1.5, 2.0, 3.0]))
def test_late_set_equals_brute_force(
    steps: list[tuple[str, ImageSpec, int]], factor: float
) -> None:
    book = tracked(A, B, C, factor=factor)
    now = T0
    for kind, image, seconds in steps:
        if kind == "advance":
            now += timedelta(seconds=seconds)
        elif image not in book and kind != "track":
            continue
        elif kind == "success":
            book.dispatched(image, now, now)
            book.finished(image, CREATED, now)
        elif kind == "seed":
            book.seed(image, now - timedelta(seconds=seconds))
        elif kind == "reschedule":
            book.set_schedule(
                image, HOURLY if seconds % 3 == 0 else MINUTE if seconds % 3 else None
            )
        elif kind == "forget":
            book.forget(image)
        elif kind == "track" and image not in book:
            book.track(image, "x", now)
            book.set_schedule(image, MINUTE)
        book.advance(now)
    expected = {
        image
        for image, record in book.items()
        if record.interval is not None and now >= record.reference + record.interval * factor
    }
    assert {late.image for late in book.late(now)} == expected
    assert book.scheduled == sum(1 for _, record in book.items() if record.schedule)
    upcoming = book.next_late_at()
    pending = [
        record.reference + record.interval * factor
        for image, record in book.items()
        if record.interval is not None and image not in expected
    ]
    assert upcoming == (min(pending) if pending else None)


def test_compaction_does_not_hide_the_next_deadline() -> None:
    # Many forgotten images leave stale heap entries; pushes back while looking for the next
    # deadline must not go to a list the loop no longer reads.
    images = [ImageSpec(1, "", f"i{i}") for i in range(200)]
    book = tracked(*images)
    for image in images[2:]:
        book.forget(image)
    for k, image in enumerate(images[:2]):  # i1 succeeds first: its deadline comes first
        now = T0 + timedelta(seconds=30 - 10 * k)
        book.dispatched(image, now, now)
        book.finished(image, CREATED, now)
    expected = min(book[i].late_at or T0 for i in images[:2])
    assert book.next_late_at() == expected == T0 + timedelta(minutes=2, seconds=20)
    book.advance(T0 + timedelta(minutes=2, seconds=25))
    assert [x.image for x in book.late(T0 + timedelta(minutes=3))] == [images[1]]


def test_a_success_before_a_seed_stamped_ahead_still_goes_late_on_time() -> None:
    book = tracked(A)
    now = T0 + timedelta(minutes=3)
    assert book.advance(now)  # late: its first deadline is gone from the heap
    book.seed(A, now + timedelta(seconds=50))  # the previous mgr's clock was ahead
    book.dispatched(A, now, now)
    book.finished(A, CREATED, now + timedelta(seconds=10))  # before that stamp, by ours
    assert book[A].last_success == now + timedelta(seconds=10)
    assert book.next_late_at() == now + timedelta(minutes=2, seconds=10)
    assert not book.advance(now + timedelta(minutes=2, seconds=9))
    assert book.advance(now + timedelta(minutes=2, seconds=10))


def test_a_huge_factor_means_never_late_not_an_overflow() -> None:
    year = Schedule().with_item(ScheduleItem(Interval.parse("36500d"), None))
    book = tracked(A, schedule=year, factor=1000.0)
    assert book[A].late_at is None and book.next_late_at() is None
    assert not book.advance(T0 + timedelta(days=3650))
    for bad in (float("nan"), float("inf"), 0.0, -1.0):
        try:
            book.set_late_factor(bad)
        except ValueError:
            continue
        raise AssertionError(f"factor {bad} accepted")
    assert book.late_factor == 1000.0
