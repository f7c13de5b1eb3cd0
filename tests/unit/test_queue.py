"""Unit tests for rbd_snapsched.queue.ScheduleQueue."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from rbd_snapsched.levels import ImageSpec
from rbd_snapsched.queue import ScheduleQueue

UTC = timezone.utc
T0 = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
SLACK = 64  # the queue's allowance of stale entries beyond 2 * len


def img(name: str, pool: int = 1, ns: str = "") -> ImageSpec:
    return ImageSpec(pool, ns, name)


def minutes(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


A, B, C, D = img("a"), img("b"), img("c"), img("d")


def drain(q: ScheduleQueue, now: datetime) -> list[ImageSpec]:
    out: list[ImageSpec] = []
    while (image := q.pop_due(now)) is not None:
        out.append(image)
    return out


def test_push_says_whether_the_image_took_a_new_place() -> None:
    q = ScheduleQueue()
    assert q.push(A, minutes(1)) and q.push(B, minutes(1))
    assert not q.push(A, minutes(1))  # already there: keeps its place, first
    assert [image for _, image in q.entries()] == [A, B]
    assert q.push(A, minutes(2)) and q.push(A, minutes(1))  # moved away and back: last
    assert [image for _, image in q.entries()] == [B, A]


def test_empty_queue() -> None:
    q = ScheduleQueue()
    assert len(q) == 0
    assert not q
    assert A not in q
    assert q.pop_due(minutes(10**6)) is None
    assert q.next_deadline() is None
    assert q.due_of(A) is None
    assert q.entries() == []
    assert q.remove(A) is False


def test_pops_in_due_order_and_only_when_due() -> None:
    q = ScheduleQueue()
    q.push(C, minutes(3))
    q.push(A, minutes(1))
    q.push(B, minutes(2))
    assert len(q) == 3
    assert q.next_deadline() == minutes(1)
    assert q.pop_due(minutes(1) - timedelta(microseconds=1)) is None
    assert q.pop_due(minutes(1)) == A  # due == now is due
    assert q.pop_due(minutes(1)) is None
    assert q.next_deadline() == minutes(2)
    assert drain(q, minutes(5)) == [B, C]
    assert len(q) == 0
    assert q.next_deadline() is None


def test_fifo_among_equal_due_times() -> None:
    q = ScheduleQueue()
    order = [img(f"i{k}") for k in range(50)]
    for image in order:
        q.push(image, minutes(1))
    q.push(A, minutes(0))
    assert drain(q, minutes(1)) == [A, *order]


def test_fifo_ties_survive_interleaved_slots() -> None:
    q = ScheduleQueue()
    q.push(A, minutes(2))
    q.push(B, minutes(1))
    q.push(C, minutes(2))
    q.push(D, minutes(1))
    assert [image for _, image in q.entries()] == [B, D, A, C]
    assert drain(q, minutes(2)) == [B, D, A, C]


def test_repush_replaces_the_entry() -> None:
    q = ScheduleQueue()
    q.push(A, minutes(1))
    q.push(B, minutes(2))
    q.push(A, minutes(3))  # later
    assert len(q) == 2
    assert q.due_of(A) == minutes(3)
    assert q.next_deadline() == minutes(2)
    assert q.pop_due(minutes(1)) is None  # A's old entry is gone
    assert q.entries() == [(minutes(2), B), (minutes(3), A)]
    q.push(A, minutes(0))  # earlier
    assert q.entries() == [(minutes(0), A), (minutes(2), B)]
    assert drain(q, minutes(10)) == [A, B]
    assert q.pop_due(minutes(10)) is None


def test_repush_at_the_same_due_keeps_its_place() -> None:
    q = ScheduleQueue()
    for image in (A, B, C):
        q.push(image, minutes(1))
    q.push(A, minutes(1))
    assert drain(q, minutes(1)) == [A, B, C]


def test_repush_at_a_new_due_goes_behind_its_ties() -> None:
    q = ScheduleQueue()
    q.push(A, minutes(1))
    q.push(B, minutes(2))
    q.push(A, minutes(2))
    assert drain(q, minutes(2)) == [B, A]


def test_remove() -> None:
    q = ScheduleQueue()
    q.push(A, minutes(1))
    q.push(B, minutes(1))
    q.push(C, minutes(2))
    assert q.remove(B) is True
    assert q.remove(B) is False
    assert B not in q
    assert q.due_of(B) is None
    assert len(q) == 2
    assert q.remove(A) is True
    assert q.next_deadline() == minutes(2)  # A's and B's slot held only stale entries
    assert drain(q, minutes(5)) == [C]


def test_remove_then_push_at_same_due_goes_to_the_back() -> None:
    q = ScheduleQueue()
    q.push(A, minutes(1))
    q.push(B, minutes(1))
    q.remove(A)
    q.push(A, minutes(1))
    assert q.entries() == [(minutes(1), B), (minutes(1), A)]
    assert drain(q, minutes(1)) == [B, A]


def test_pop_then_repush_like_the_scheduler_loop() -> None:
    q = ScheduleQueue()
    images = [img(f"i{k}") for k in range(10)]
    for image in images:
        q.push(image, minutes(0))
    fired: list[ImageSpec] = []
    for step in range(3):
        now = minutes(step)
        while (due := q.pop_due(now)) is not None:
            fired.append(due)
            q.push(due, now + timedelta(minutes=1))
    assert fired == images * 3
    assert len(q) == 10
    assert q.stored == 10


def test_images_differ_by_pool_and_namespace() -> None:
    q = ScheduleQueue()
    same_id = [img("x", 1, ""), img("x", 2, ""), img("x", 1, "ns")]
    for k, image in enumerate(same_id):
        q.push(image, minutes(k))
    assert len(q) == 3
    assert drain(q, minutes(5)) == same_id


def test_contains_accepts_any_object() -> None:
    q = ScheduleQueue()
    q.push(A, minutes(0))
    assert A in q
    assert ("1", "", "a") not in q
    assert "a" not in q


def test_times_are_exact_and_returned_in_utc() -> None:
    q = ScheduleQueue()
    berlin = datetime(2024, 3, 31, 3, 30, 15, 123456, tzinfo=ZoneInfo("Europe/Berlin"))
    q.push(A, berlin)
    due = q.due_of(A)
    assert due == berlin
    assert due is not None and due.tzinfo == UTC
    assert due.isoformat() == "2024-03-31T01:30:15.123456+00:00"
    assert q.next_deadline() == berlin
    assert q.pop_due(berlin.astimezone(UTC)) == A


def test_naive_datetimes_are_refused() -> None:
    q = ScheduleQueue()
    with pytest.raises(TypeError):
        q.push(A, datetime(2024, 1, 1))
    q.push(A, T0)
    with pytest.raises(TypeError):
        q.pop_due(datetime(2024, 1, 1))
    assert len(q) == 1


@settings(derandomize=True)
@given(st.datetimes(timezones=st.just(UTC)))
def test_any_aware_datetime_round_trips(when: datetime) -> None:
    q = ScheduleQueue()
    q.push(A, when)
    assert q.due_of(A) == when
    assert q.entries() == [(when, A)]


def test_clear() -> None:
    q = ScheduleQueue()
    for k in range(100):
        q.push(img(f"i{k}"), minutes(k % 7))
    q.push(img("i0"), minutes(99))
    q.clear()
    assert len(q) == 0
    assert q.stored == 0
    assert q.entries() == []
    assert q.next_deadline() is None
    q.push(A, minutes(1))
    assert drain(q, minutes(1)) == [A]


def test_entries_is_a_snapshot_in_queue_order() -> None:
    q = ScheduleQueue()
    q.push(B, minutes(5))
    q.push(A, minutes(5))
    q.push(C, minutes(-5))
    snapshot = q.entries()
    q.remove(A)
    assert snapshot == [(minutes(-5), C), (minutes(5), B), (minutes(5), A)]
    assert q.entries() == [(minutes(-5), C), (minutes(5), B)]


def test_stale_entries_stay_bounded_under_repushes() -> None:
    rnd = random.Random(7)
    n = 200
    q = ScheduleQueue()
    images = [img(f"i{k}") for k in range(n)]
    for image in images:
        q.push(image, minutes(rnd.randrange(60)))
    worst = 0
    for _ in range(20 * n):
        q.push(rnd.choice(images), minutes(rnd.randrange(60)))
        worst = max(worst, q.stored)
        assert q.stored <= 2 * len(q) + SLACK
    assert worst > n  # stale entries were really kept lazily, then compacted
    assert len(q) == n
    assert len(drain(q, minutes(60))) == n
    assert q.stored == 0


def test_stale_entries_stay_bounded_under_churn() -> None:
    rnd = random.Random(11)
    q = ScheduleQueue()
    images = [img(f"i{k}") for k in range(300)]
    for step in range(20_000):
        image = rnd.choice(images)
        op = rnd.random()
        if op < 0.5:
            q.push(image, minutes(rnd.randrange(30)))
        elif op < 0.8:
            q.remove(image)
        else:
            q.pop_due(minutes(step // 1000))
        assert q.stored <= 2 * len(q) + SLACK


def test_compaction_keeps_order_and_dues() -> None:
    q = ScheduleQueue()
    keep = [img(f"k{k}") for k in range(10)]
    for k, image in enumerate(keep):
        q.push(image, minutes(k % 3))
    before = q.entries()
    churn = img("churn")
    for k in range(1000):
        q.push(churn, minutes(k))
    q.remove(churn)
    assert q.stored <= 2 * len(q) + SLACK
    assert q.entries() == before
    assert drain(q, minutes(5)) == [image for _, image in before]


# --- model-based: ScheduleQueue against a sorted list ---------------------------------------

MODEL_IMAGES = [img(name, pool) for pool in (1, 2) for name in "abcde"]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


class QueueModel(RuleBasedStateMachine):
    """Compare every operation with a trivial model: a dict sorted on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.q = ScheduleQueue()
        self.model: dict[ImageSpec, tuple[datetime, int]] = {}
        self.seq = 0
        self.shared: dict[int, datetime] = {}  # one datetime object per minute

    def expected(self) -> list[tuple[datetime, ImageSpec]]:
        order = sorted(self.model.items(), key=lambda kv: kv[1])
        return [(due, image) for image, (due, _) in order]

    @initialize()
    def start(self) -> None:
        self.q.clear()

    @rule(image=st.sampled_from(MODEL_IMAGES), minute=st.integers(0, 6), shared=st.booleans())
    def push(self, image: ImageSpec, minute: int, shared: bool) -> None:
        """``shared``: one datetime object per minute, as refresh passes a shared next run
        (the queue converts it once), or a fresh equal one."""
        due = self.shared.setdefault(minute, minutes(minute)) if shared else minutes(minute)
        old = self.model.get(image)
        took = old is None or old[0] != due
        assert self.q.push(image, due) == took
        if took:
            self.seq += 1
            self.model[image] = (due, self.seq)

    @rule(
        images=st.lists(st.sampled_from(MODEL_IMAGES), max_size=6),
        minute=st.integers(0, 6),
    )
    def push_run(self, images: list[ImageSpec], minute: int) -> None:
        """Images not queued (the scheduler pops them first), at one due: as pushed in turn.
        One queued after all goes behind the others at that due (its old occurrence stale),
        and one twice in the run where it is last."""
        due = minutes(minute)
        for image in images:
            self.seq += 1
            self.model[image] = (due, self.seq)
        self.q.push_run(images, due)

    @rule(image=st.sampled_from(MODEL_IMAGES), last=st.integers(0, 6))
    def churn(self, image: ImageSpec, last: int) -> None:
        """Enough re-pushes of one image to force a compaction."""
        for minute in range(100, 100 + SLACK + 10):
            self.q.push(image, minutes(minute))
        self.q.push(image, minutes(last))
        self.seq += 1
        self.model[image] = (minutes(last), self.seq)

    @rule(image=st.sampled_from(MODEL_IMAGES))
    def remove(self, image: ImageSpec) -> None:
        assert self.q.remove(image) == (self.model.pop(image, None) is not None)

    @rule(minute=st.integers(-1, 7))
    def pop_due(self, minute: int) -> None:
        now = minutes(minute)
        due_now = [image for due, image in self.expected() if due <= now]
        expected = due_now[0] if due_now else None
        assert self.q.pop_due(now) == expected
        if expected is not None:
            del self.model[expected]

    @rule(minute=st.integers(-1, 7), limit=st.integers(1, 4))
    def pop_due_many(self, minute: int, limit: int) -> None:
        """A batch: whole slots at once, stale entries among them dropped, cut at the limit."""
        now = minutes(minute)
        expected = [image for due, image in self.expected() if due <= now][:limit]
        assert self.q.pop_due_many(now, limit) == expected
        for image in expected:
            del self.model[image]

    @rule()
    def clear(self) -> None:
        self.q.clear()
        self.model.clear()

    @invariant()
    def agrees(self) -> None:
        expected = self.expected()
        assert self.q.entries() == expected
        assert len(self.q) == len(expected)
        assert self.q.next_deadline() == (expected[0][0] if expected else None)
        for image in MODEL_IMAGES:
            assert (image in self.q) == (image in self.model)
            assert self.q.due_of(image) == (self.model[image][0] if image in self.model else None)
        assert self.q.stored <= 2 * len(self.q) + SLACK
        dues, images = self.q.pushed()  # push order: sorted stably by due, queue order
        order = sorted(range(len(dues)), key=dues.__getitem__)
        assert [images[i] for i in order] == [image for _, image in expected]
        assert [dues[i] for i in order] == [(due - EPOCH) // MICROSECOND for due, _ in expected]


QueueModel.TestCase.settings = settings(
    max_examples=200, stateful_step_count=60, deadline=None, derandomize=True
)
TestQueueModel = QueueModel.TestCase


@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 5)), max_size=60),
    st.integers(0, 30),
    st.integers(1, 20),
)
@settings(max_examples=200, derandomize=True)
def test_pop_due_many_is_repeated_pop_due(
    pushes: list[tuple[int, int]], now: int, limit: int
) -> None:
    one, many = ScheduleQueue(), ScheduleQueue()
    for name, due in pushes:
        for q in (one, many):
            q.push(img(str(name)), minutes(due))
    expected: list[ImageSpec] = []
    while len(expected) < limit and (image := one.pop_due(minutes(now))) is not None:
        expected.append(image)
    assert many.pop_due_many(minutes(now), limit) == expected
    assert many.entries() == one.entries()
