"""Handing requests to the driver (``dispatch.py``): a request's bound starts when it is begun,
right before its hand-off, never while it waits behind another's; a request the driver cannot
start frees its slot, and leaves nothing in flight even when it timed out meanwhile.

A driver whose ``start`` blocks is played by a FakeDriver that moves the fake clock and runs
the scheduler thread's expiry from inside ``start``, as that thread would meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from rbd_snapsched.levels import ImageSpec
from rbd_snapsched.requests import Outcome, OutcomeKind, State
from rbd_snapsched.throttle import Admission
from tests.fake_cluster import FakeDriver
from tests.unit.harness import START, Setup

SLOT = START.replace(second=0) + timedelta(minutes=1)
BOUND = 20.0


class BlockingDriver(FakeDriver):
    """``on_start(image)`` runs first in each ``start`` (a slow ioctx open, say); ``fail``
    names the images whose start raises after it."""

    def __init__(
        self, s: Setup, on_start: Callable[[ImageSpec], None], fail: set[ImageSpec]
    ) -> None:
        super().__init__(s.cluster, hold=True)
        self.on_start = on_start
        self.fail = fail

    def start(
        self,
        image: ImageSpec,
        name: str,
        done: Callable[[ImageSpec, Outcome], None],
        recent_since: datetime | None = None,
    ) -> None:
        self.on_start(image)
        if image in self.fail:
            raise RuntimeError("open_ioctx2 failed")
        super().start(image, name, done, recent_since)


def setup(names: str, cap: int) -> tuple[Setup, list[ImageSpec]]:
    s = Setup(hold=True, max_concurrent=cap, snap_create_timeout=BOUND)
    images = [s.cluster.add_image(s.pool, name) for name in names]
    s.add("rbd/", "1m")
    return s, images


def use(s: Setup, driver: FakeDriver) -> None:
    s.driver = driver
    s.handler._dispatcher._driver = driver


def test_a_bound_does_not_run_while_its_request_waits_behind_a_slow_hand_off() -> None:
    s, (a, b, c) = setup("abc", cap=3)

    def slow(image: ImageSpec) -> None:
        if image == a:  # a's hand-off takes 30 s, past the 20 s bound
            s.clock.advance(timedelta(seconds=30))
            s.handler._dispatcher.expire_overdue()  # the scheduler thread, meanwhile

    driver = BlockingDriver(s, slow, set())
    use(s, driver)
    s.run_until(SLOT)
    # a's own hand-off passed its bound: it alone timed out. b and c were begun only when
    # handed on, so their bounds had not started
    assert [run.image for run in driver.held] == [a, b, c]
    assert s.handler._dispatcher.counts() == (2, 0, 1)
    for image in (b, c):
        record = s.handler.image_record(image)
        assert record is not None and record.outcome is None  # running, not timed out
    driver.release()
    assert s.created() == {a: 1, b: 1, c: 1}


def test_a_request_the_driver_cannot_start_frees_its_slot_for_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s, (a, b, c) = setup("abc", cap=1)
    driver = BlockingDriver(s, lambda image: None, {b})
    use(s, driver)
    with caplog.at_level(logging.ERROR, logger="test_handler"):
        s.run_until(SLOT)
        driver.release()  # a ends; b cannot start; c gets the slot
        driver.release()
    assert s.created() == {a: 1, c: 1}
    assert "exception when starting snapshot request for rbd/b: open_ioctx2 failed" in (caplog.text)
    dispatcher = s.handler._dispatcher
    assert dispatcher.idle() and dispatcher.admit(b) is Admission.START


def test_a_start_that_fails_after_its_request_timed_out_leaves_nothing_in_flight() -> None:
    s, (a, b) = setup("ab", cap=1)

    def slow(image: ImageSpec) -> None:
        if image == a:  # expired while the driver still has it: its slot goes to b
            s.clock.advance(timedelta(seconds=30))
            s.handler._dispatcher.expire_overdue()

    driver = BlockingDriver(s, slow, {a})
    use(s, driver)
    s.run_until(SLOT)
    record = s.handler.image_record(a)
    assert record is not None and record.outcome is not None
    assert record.outcome.kind is OutcomeKind.FAILED and record.outcome.step is State.DONE
    assert [run.image for run in driver.held] == [b]  # b started in a's released slot
    driver.release()
    dispatcher = s.handler._dispatcher
    # a is not left overdue: the next slot admits it, and shutdown would not wait for it
    assert dispatcher.counts() == (0, 0, 0) and dispatcher.idle()
    assert dispatcher.admit(a) is Admission.START
