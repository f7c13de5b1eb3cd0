"""The timetable (``rbd_snapsched/timetable.py``): the one writer of the queue, the catch-up
marks and each record's ``next_run``; its invariant holds after every call."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from rbd_snapsched.book import Book
from rbd_snapsched.levels import ImageSpec
from rbd_snapsched.schedule import Schedule
from rbd_snapsched.timetable import Timetable

NOW = datetime(2026, 12, 6, 10, 0, 30, tzinfo=timezone.utc)
HOURLY = Schedule.from_json('[{"interval": "1h", "start_time": null}]')
MINUTELY = Schedule.from_json('[{"interval": "1m", "start_time": null}]')
A, B, C = (ImageSpec(1, "", name) for name in "abc")


def book_of(*images: ImageSpec) -> Book:
    book = Book(2.0)
    for image in images:
        book.track(image, f"rbd/{image.image_id}", NOW)
    return book


def consistent(t: Timetable, book: Book) -> None:
    """Invariant 1: a record's next_run is its due time in the queue, or None unqueued."""
    queued = {image: due for due, image in t.entries()}
    for image in book:
        assert book[image].next_run == queued.get(image), image


def test_requeue_queues_by_the_governing_schedule_and_keeps_next_run_equal() -> None:
    book, t = book_of(A, B, C), Timetable(stagger=False)
    t.requeue([A, B, C], book, {A: HOURLY, B: MINUTELY}.get, NOW)
    assert (len(t), A in t, C in t) == (2, True, False)
    assert book[A].next_run == datetime(2026, 12, 6, 11, tzinfo=timezone.utc)
    assert (
        book[B].next_run == t.next_deadline() == datetime(2026, 12, 6, 10, 1, tzinfo=timezone.utc)
    )
    assert book[A].schedule == HOURLY and book[C].schedule is None
    consistent(t, book)
    nothing: dict[ImageSpec, Schedule] = {}
    t.requeue([A], book, nothing.get, NOW)  # rbd_support took it, or its schedule went
    assert (A in t, book[A].next_run, book[A].schedule) == (False, None, None)
    consistent(t, book)


def test_a_pop_serves_its_slot_and_queues_the_image_again() -> None:
    book, t = book_of(A), Timetable(stagger=False)
    t.requeue([A], book, {A: MINUTELY}.get, NOW)
    slot = book[A].next_run
    assert slot is not None
    due, popped = t.pop_due(slot, 10, book)
    assert popped == 1 and due == [(A, book[A], slot)]
    assert book[A].next_run == slot + timedelta(minutes=1)
    consistent(t, book)


def test_a_catch_up_is_due_now_serves_no_slot_and_keeps_its_mark_until_started() -> None:
    book, t = book_of(A, B), Timetable(stagger=False)
    t.requeue([A, B], book, {A: HOURLY, B: MINUTELY}.get, NOW)
    t.plan_catch_up([A, B], book, NOW)  # B's next slot is within a minute: no catch-up
    assert book[A].next_run == NOW and t.next_deadline() == NOW
    consistent(t, book)
    due, _ = t.pop_due(NOW, 10, book)
    assert [(image, slot) for image, _, slot in due] == [(A, None)]
    assert t.restagger(True, book, NOW) is True  # A still carries its mark: not moved
    assert t.take_catch_up(A) == NOW - timedelta(hours=1)  # snapshot only if older than 1h
    assert t.take_catch_up(A) is None
    consistent(t, book)


def test_restagger_is_a_no_op_when_unchanged_and_forget_drops_everything() -> None:
    book, t = book_of(A), Timetable(stagger=False)
    t.requeue([A], book, {A: HOURLY}.get, NOW)
    assert t.restagger(False, book, NOW) is False
    t.plan_catch_up([A], book, NOW)
    t.forget(A)
    assert (len(t), t.take_catch_up(A)) == (0, None)
    book.forget(A)


def test_an_image_whose_schedule_went_is_popped_and_dropped() -> None:
    book, t = book_of(A), Timetable(stagger=False)
    t.requeue([A], book, {A: MINUTELY}.get, NOW)
    slot = book[A].next_run
    assert slot is not None
    book.set_schedule(A, None)
    due, popped = t.pop_due(slot, 10, book)
    assert (due, popped, len(t)) == ([], 1, 0)


def test_a_slot_that_passes_while_rook_resets_the_schedules_is_served_once() -> None:
    """Rook's reconcile removes every schedule, then adds the spec's again, seconds apart. A
    slot in that gap is served as soon as the same schedule is back, for that slot."""
    book, t = book_of(A, B), Timetable(stagger=False)
    slot = datetime(2026, 12, 6, 10, 1, tzinfo=timezone.utc)
    t.requeue([A, B], book, {A: MINUTELY, B: MINUTELY}.get, NOW)
    nothing: dict[ImageSpec, Schedule] = {}
    removed = slot - timedelta(seconds=2)
    t.requeue([A, B], book, nothing.get, removed)  # `remove`: the slot is 2 s away
    assert t.pop_due(slot, 10, book) == ([], 0)  # nothing scheduled at the slot itself
    back = slot + timedelta(seconds=3)
    t.requeue([A], book, {A: MINUTELY}.get, back)  # `add` of the same schedule
    t.requeue([B], book, {B: HOURLY}.get, back)  # a schedule without that slot: no
    consistent(t, book)
    assert book[A].next_run == slot and book[B].next_run == datetime(
        2026, 12, 6, 11, tzinfo=timezone.utc
    )
    due, _ = t.pop_due(back, 10, book)
    assert due == [(A, book[A], slot)]  # the gap's slot, once
    assert book[A].next_run == slot + timedelta(minutes=1)
    assert t.pop_due(back + timedelta(seconds=1), 10, book) == ([], 0)
    consistent(t, book)


def test_a_removal_long_before_the_slot_or_a_late_re_add_keeps_nothing() -> None:
    nothing: dict[ImageSpec, Schedule] = {}
    slot = datetime(2026, 12, 6, 11, tzinfo=timezone.utc)
    # Removed 30 min before its hourly slot, added back after it: an ordinary removal.
    book, t = book_of(A), Timetable(stagger=False)
    t.requeue([A], book, {A: HOURLY}.get, NOW)
    t.requeue([A], book, nothing.get, NOW)
    t.requeue([A], book, {A: HOURLY}.get, slot + timedelta(seconds=5))
    assert book[A].next_run == slot + timedelta(hours=1)
    # Removed 5 s before the slot but added back 40 s later (past the grace): not kept.
    book, t = book_of(A), Timetable(stagger=False)
    t.requeue([A], book, {A: HOURLY}.get, NOW)
    t.requeue([A], book, nothing.get, slot - timedelta(seconds=5))
    t.requeue([A], book, {A: HOURLY}.get, slot + timedelta(seconds=35))
    assert book[A].next_run == slot + timedelta(hours=1)
    # Removed and added back before the slot: the slot simply stays queued.
    book, t = book_of(A), Timetable(stagger=False)
    t.requeue([A], book, {A: HOURLY}.get, NOW)
    t.requeue([A], book, nothing.get, slot - timedelta(seconds=5))
    t.requeue([A], book, {A: HOURLY}.get, slot - timedelta(seconds=2))
    assert book[A].next_run == slot
    consistent(t, book)
