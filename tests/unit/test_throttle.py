"""Unit tests for rbd_snapsched.throttle.Throttle."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from rbd_snapsched.levels import ImageSpec
from rbd_snapsched.throttle import Admission, Throttle


def img(name: str) -> ImageSpec:
    return ImageSpec(1, "", name)


A, B, C, D, E = (img(n) for n in "abcde")


def counts(t: Throttle) -> tuple[int, int, int]:
    return t.running, t.waiting, t.pending


@pytest.mark.parametrize("limit", [0, -1, True])
def test_limit_must_be_at_least_one(limit: int) -> None:
    with pytest.raises(ValueError):
        Throttle(limit)
    t = Throttle(3)
    with pytest.raises(ValueError):
        t.set_limit(limit)
    assert t.limit == 3


def test_new_throttle_is_idle() -> None:
    t = Throttle(1)
    assert t.idle
    assert counts(t) == (0, 0, 0)
    assert not t.is_pending(A)


def test_cap_is_respected_and_the_rest_wait() -> None:
    t = Throttle(2)
    assert t.admit(A) is Admission.START
    assert t.admit(B) is Admission.START
    assert t.admit(C) is Admission.WAIT
    assert t.admit(D) is Admission.WAIT
    assert counts(t) == (2, 2, 4)
    assert all(t.is_pending(i) for i in (A, B, C, D))
    assert not t.is_pending(E)
    assert not t.idle


def test_already_pending_is_not_queued_twice() -> None:
    t = Throttle(1)
    assert t.admit(A) is Admission.START
    assert t.admit(B) is Admission.WAIT
    assert t.admit(A) is Admission.ALREADY_PENDING  # running
    assert t.admit(B) is Admission.ALREADY_PENDING  # waiting
    assert counts(t) == (1, 1, 2)
    assert t.finish(A) == B
    assert t.finish(B) is None
    assert t.idle


def test_waiting_images_start_in_fifo_order() -> None:
    t = Throttle(2)
    for image in (A, B, C, D, E):
        t.admit(image)
    assert t.finish(B) == C
    assert t.finish(A) == D
    assert t.finish(D) == E
    assert t.finish(C) is None
    assert t.finish(E) is None
    assert t.idle


def test_finish_of_an_unknown_image_is_a_safe_no_op() -> None:
    t = Throttle(1)
    t.admit(A)
    t.admit(B)
    assert t.finish(E) is None
    assert counts(t) == (1, 1, 2)
    assert t.finish(A) == B
    assert t.finish(A) is None  # twice
    assert counts(t) == (1, 0, 1)


def test_finish_of_a_waiting_image_drops_it_without_starting_anything() -> None:
    t = Throttle(1)
    for image in (A, B, C):
        t.admit(image)
    assert t.finish(B) is None
    assert counts(t) == (1, 1, 2)
    assert not t.is_pending(B)
    assert t.finish(A) == C


def test_raising_the_limit_starts_waiters_in_order() -> None:
    t = Throttle(1)
    for image in (A, B, C, D):
        t.admit(image)
    assert t.set_limit(3) == [B, C]
    assert counts(t) == (3, 1, 4)
    assert t.set_limit(10) == [D]
    assert t.set_limit(10) == []
    assert t.admit(E) is Admission.START


def test_lowering_the_limit_lets_running_requests_finish() -> None:
    t = Throttle(3)
    for image in (A, B, C, D):
        t.admit(image)
    assert t.set_limit(1) == []
    assert t.limit == 1
    assert counts(t) == (3, 1, 4)
    assert t.finish(A) is None  # still 2 running, above the new cap
    assert t.finish(B) is None
    assert t.admit(E) is Admission.WAIT
    assert t.finish(C) == D
    assert t.finish(D) == E
    assert t.finish(E) is None
    assert t.idle


def test_drain_waiting() -> None:
    t = Throttle(1)
    for image in (A, B, C):
        t.admit(image)
    assert t.drain_waiting() == [B, C]
    assert counts(t) == (1, 0, 1)
    assert t.finish(A) is None
    assert t.idle
    assert t.drain_waiting() == []


def test_readmission_after_finish() -> None:
    t = Throttle(1)
    t.admit(A)
    t.finish(A)
    assert t.admit(A) is Admission.START


# --- model-based ------------------------------------------------------------------------------


class ThrottleModel(RuleBasedStateMachine):
    """Compare against the obvious list-based implementation (upstream's shape)."""

    def __init__(self) -> None:
        super().__init__()
        self.t = Throttle(2)
        self.limit = 2
        self.running: list[ImageSpec] = []
        self.waiting: list[ImageSpec] = []

    def _fill(self) -> list[ImageSpec]:
        started: list[ImageSpec] = []
        while self.waiting and len(self.running) < self.limit:
            started.append(self.waiting.pop(0))
            self.running.append(started[-1])
        return started

    @rule(image=st.sampled_from([A, B, C, D, E]))
    def admit(self, image: ImageSpec) -> None:
        got = self.t.admit(image)
        if image in self.running or image in self.waiting:
            assert got is Admission.ALREADY_PENDING
        elif len(self.running) < self.limit:
            assert got is Admission.START
            self.running.append(image)
        else:
            assert got is Admission.WAIT
            self.waiting.append(image)

    @rule(
        images=st.lists(st.sampled_from([A, B, C, D, E]), max_size=6),
        busy=st.sets(st.sampled_from([A, B, C, D, E]), max_size=2),
    )
    def admit_many(self, images: list[ImageSpec], busy: set[ImageSpec]) -> None:
        """A batch, duplicates included, with some images in flight elsewhere (``busy``):
        each decided as ``admit`` would in turn, a busy one refused and not taken."""
        got = self.t.admit_many(images, busy)
        expected = []
        for image in images:
            if image in self.running or image in self.waiting or image in busy:
                expected.append(Admission.ALREADY_PENDING)
            elif len(self.running) < self.limit:
                expected.append(Admission.START)
                self.running.append(image)
            else:
                expected.append(Admission.WAIT)
                self.waiting.append(image)
        assert got == expected

    @rule(image=st.sampled_from([A, B, C, D, E]))
    def finish(self, image: ImageSpec) -> None:
        got = self.t.finish(image)
        if image in self.waiting:
            self.waiting.remove(image)
            assert got is None
        elif image in self.running:
            self.running.remove(image)
            started = self._fill()
            assert got == (started[0] if started else None)
        else:
            assert got is None

    @rule()
    def drain_waiting(self) -> None:
        """Given up, in FIFO order: the wait list's order is what it hands out."""
        assert self.t.drain_waiting() == self.waiting
        self.waiting = []

    @rule(limit=st.integers(1, 4))
    def set_limit(self, limit: int) -> None:
        self.limit = limit
        assert self.t.set_limit(limit) == self._fill()

    @invariant()
    def agrees(self) -> None:
        assert counts(self.t) == (
            len(self.running),
            len(self.waiting),
            len(self.running) + len(self.waiting),
        )
        assert self.t.idle == (not self.running and not self.waiting)
        for image in (A, B, C, D, E):
            assert self.t.is_pending(image) == (image in self.running or image in self.waiting)
        if self.waiting:
            assert self.t.running >= self.t.limit


ThrottleModel.TestCase.settings = settings(
    max_examples=200, stateful_step_count=40, deadline=None, derandomize=True
)
TestThrottleModel = ThrottleModel.TestCase
