"""A request that outlives ``snap_create_timeout`` (an image in use whose exclusive lock owner
does not answer): its slot is released at the bound, it is recorded as failed with ETIMEDOUT,
its image gets no second request while it is still in flight, and its late end is recorded.

Driven by the fake clock and a FakeDriver whose completions come only when released: no sleeps.
"""

from __future__ import annotations

import errno
import logging
from datetime import timedelta

import pytest

from rbd_snapsched.errors import InvalidArgument
from rbd_snapsched.levels import ImageSpec
from rbd_snapsched.requests import OutcomeKind, State
from tests.fake_cluster import FakeDriver
from tests.unit.harness import START, Setup

SLOT = START.replace(second=0) + timedelta(minutes=1)  # 17:56:00, the first 1m slot
BOUND = timedelta(seconds=20)


def stuck(*names: str, cap: int = 1) -> tuple[Setup, list[ImageSpec]]:
    """A handler with cap ``cap``, bound 20 s, a 1m schedule on images ``names``, and a driver
    that holds every request until released."""
    s = Setup(hold=True, max_concurrent=cap, snap_create_timeout=BOUND.total_seconds())
    images = [s.cluster.add_image(s.pool, name) for name in names]
    s.add("rbd/", "1m")
    return s, images


def results(s: Setup) -> dict[tuple[str, str, str], int]:
    return dict(s.handler.metrics(100).results)


def test_a_request_past_its_bound_releases_its_slot_and_is_recorded_as_timed_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s, (a, b) = stuck("a", "b")
    s.run_until(SLOT)
    assert s.driver.started == [a]  # cap 1: b waits behind a
    assert s.handler.tick() == SLOT + BOUND  # the thread wakes at a's bound

    s.run_until(SLOT + BOUND - timedelta(seconds=1))
    assert s.driver.started == [a]
    with caplog.at_level(logging.WARNING):
        s.run_until(SLOT + BOUND)
    assert s.driver.started == [a, b]  # a's slot went to b; a is still in flight
    sample = s.handler.metrics(100)
    assert sample.in_flight == 1 and sample.timed_out_in_flight == 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "rbd/a: snapshot request timed out after 20s when creating mirror snapshot (librbd "
        "may be waiting for an exclusive lock owner that does not answer); its slot is "
        "released, the image gets no new request until this one ends"
    ]
    record = s.handler.image_record(a)
    assert record is not None and record.outcome is not None
    assert record.outcome.kind is OutcomeKind.FAILED and record.outcome.step is State.CREATING
    assert record.outcome.rc == -errno.ETIMEDOUT and record.failures == 1
    assert record.finished == SLOT + BOUND and record.last_success is None
    assert results(s)[("rbd", "failed", "create_snapshot")] == 1


def test_no_second_request_while_the_first_is_in_flight_then_the_next_slot_retries() -> None:
    s, (a,) = stuck("a")
    s.run_until(SLOT + timedelta(minutes=2, seconds=30))  # two more slots pass, a still stuck
    assert s.driver.started == [a]
    assert results(s)[("rbd", "skipped", "in_progress")] == 2
    s.driver.release_image(a)  # the late completion: a snapshot after all
    s.run_until(SLOT + timedelta(minutes=3))
    assert s.driver.started == [a, a]  # retried at the next slot


def test_a_late_snapshot_is_the_last_success_and_frees_no_second_slot(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s, (a, b, c) = stuck("a", "b", "c")
    s.run_until(SLOT + BOUND)
    assert s.driver.started == [a, b]  # b holds the one slot, c waits
    late = SLOT + BOUND + timedelta(seconds=15)
    s.clock.set(late)
    with caplog.at_level(logging.INFO):
        s.driver.release_image(a)
    assert s.driver.started == [a, b]  # a's slot was released already: c still waits for b
    assert s.handler.metrics(100).in_flight == 1
    assert s.handler.metrics(100).timed_out_in_flight == 0
    record = s.handler.image_record(a)
    assert record is not None and record.outcome is not None
    assert record.outcome.kind is OutcomeKind.CREATED
    assert record.last_success == late and record.finished == late
    assert record.failures == 0 and record.missed == 0
    assert "rbd/a: snapshot request that timed out ended after 35s: created mirror snapshot" in (
        caplog.text
    )
    totals = results(s)
    assert totals[("rbd", "failed", "create_snapshot")] == 1  # the timeout, once
    assert totals[("rbd", "created", "created")] == 1  # and the snapshot it made
    s.driver.release_image(b)
    assert s.driver.started == [a, b, c]


def test_a_late_failure_counts_once() -> None:
    s, (a,) = stuck("a")
    s.run_until(SLOT + BOUND)
    s.cluster.image(a).create_rc = -errno.ESHUTDOWN  # librbd's answer once blocklisted
    s.driver.release_image(a)
    record = s.handler.image_record(a)
    assert record is not None and record.outcome is not None
    assert record.outcome.kind is OutcomeKind.FAILED and record.outcome.rc != -errno.ETIMEDOUT
    assert record.failures == 1
    assert results(s)[("rbd", "failed", "create_snapshot")] == 1


def test_the_step_it_is_stuck_in_is_recorded() -> None:
    s = Setup(hold=True, max_concurrent=1, snap_create_timeout=20)
    s.driver.held_step = State.OPENING
    a = s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1m")
    s.run_until(SLOT + BOUND)
    record = s.handler.image_record(a)
    assert record is not None and record.outcome is not None
    assert record.outcome.step is State.OPENING
    assert record.outcome.detail == "timed out after 20s when opening image"
    assert results(s)[("rbd", "failed", "open")] == 1


def test_requests_that_end_in_time_never_time_out() -> None:
    s = Setup(snap_create_timeout=20)  # the driver completes at once
    a = s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1m")
    s.run_until(SLOT + timedelta(minutes=5))
    assert s.created()[a] == 6
    assert ("rbd", "failed", "create_snapshot") not in results(s)


def test_the_bound_changes_at_runtime_and_is_range_checked() -> None:
    s, (a, b) = stuck("a", "b")
    s.run_until(SLOT + timedelta(seconds=10))
    s.handler.set_snap_create_timeout(5)  # now past its bound: expired at the next pass
    assert s.handler.tick() is not None
    assert s.driver.started == [a, b]
    for bad in (0, 4.9, 3601, float("nan")):
        with pytest.raises(InvalidArgument):
            s.handler.set_snap_create_timeout(bad)
    with pytest.raises(InvalidArgument):
        Setup(snap_create_timeout=1)


def test_snapshot_now_does_not_start_an_image_still_in_flight() -> None:
    s, (a,) = stuck("a")
    s.run_until(SLOT + BOUND)
    level = s.handler.resolve("rbd/")
    requested = s.handler.snapshot_now(level)
    assert s.driver.started == [a]
    assert requested.requested == () and requested.skipped == (("rbd/a", "in_flight"),)
    assert "(1 already in progress)" in requested.text()


def test_shutdown_waits_for_a_request_past_its_bound(caplog: pytest.LogCaptureFixture) -> None:
    s, _ = stuck("a")
    s.run_until(SLOT + BOUND)
    with caplog.at_level(logging.ERROR):
        s.handler.shutdown(timeout=0)
    assert "gave up waiting for 1 snapshot requests in flight" in caplog.text


def test_a_driver_without_the_request_reports_no_step() -> None:
    """Its completion was being delivered as the bound passed: still timed out, then late."""
    s, (a,) = stuck("a")
    driver: FakeDriver = s.driver
    driver.in_flight = lambda image: None  # type: ignore[method-assign]
    s.run_until(SLOT + BOUND)
    record = s.handler.image_record(a)
    assert record is not None and record.outcome is not None
    assert record.outcome.rc == -errno.ETIMEDOUT and record.outcome.step is State.DONE
    driver.release_image(a)
    record = s.handler.image_record(a)
    assert record is not None and record.outcome is not None
    assert record.outcome.kind is OutcomeKind.CREATED


def test_a_late_skip_takes_back_the_timeouts_failure() -> None:
    """Demoted while stuck: the request ends skipped, so the image is not failing after all."""
    s, (a,) = stuck("a")
    s.run_until(SLOT + BOUND)
    record = s.handler.image_record(a)
    assert record is not None and record.failures == 1
    s.cluster.image(a).primary = False
    s.driver.release_image(a)
    record = s.handler.image_record(a)
    assert record is not None and record.outcome is not None
    assert record.outcome.kind is OutcomeKind.SKIPPED_NOT_PRIMARY
    assert record.failures == 0 and record.last_success is None
    assert results(s)[("rbd", "failed", "create_snapshot")] == 1  # counted once, as it was
