"""``inflight.InFlight``: which running requests outlived the bound, in O(1) each."""

from __future__ import annotations

import errno
from datetime import datetime, timedelta, timezone

import pytest

from rbd_snapsched.errors import InvalidArgument
from rbd_snapsched.inflight import InFlight, check_timeout, timed_out
from rbd_snapsched.levels import ImageSpec
from rbd_snapsched.requests import OutcomeKind, State

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
A, B, C = (ImageSpec(1, "", name) for name in "abc")


def test_the_oldest_running_request_times_out_first_and_only_once() -> None:
    flight = InFlight(20)
    assert flight.started(A, T0) is True  # the first: its bound is the next timeout
    assert flight.started(B, T0 + timedelta(seconds=5)) is False
    assert flight.next_timeout() == T0 + timedelta(seconds=20)
    assert flight.expire(T0 + timedelta(seconds=19)) == []
    assert flight.expire(T0 + timedelta(seconds=20)) == [(A, T0)]
    assert A in flight.overdue_images and B not in flight.overdue_images and flight.overdue == 1
    assert flight.next_timeout() == T0 + timedelta(seconds=25)
    assert flight.expire(T0 + timedelta(seconds=21)) == []  # not twice


def test_an_end_in_time_releases_an_overdue_end_reports_its_start() -> None:
    flight = InFlight(20)
    flight.started(A, T0)
    flight.started(B, T0)
    flight.expire(T0 + timedelta(seconds=30))
    flight.started(C, T0 + timedelta(seconds=30))
    assert flight.ended(A) == T0 and flight.overdue == 1  # overdue: its slot went already
    assert flight.ended(C) is None  # in time: the caller releases its slot
    assert flight.next_timeout() is None and flight.ended(B) == T0 and flight.overdue == 0


def test_a_request_that_could_not_start_ends_in_time() -> None:
    flight = InFlight(20)
    flight.started(A, T0)
    assert flight.ended(A) is None  # in time: the caller releases its slot
    assert flight.next_timeout() is None and flight.ended(A) is None and flight.overdue == 0


def test_a_new_bound_applies_to_the_requests_running() -> None:
    flight = InFlight(60)
    flight.started(A, T0)
    flight.bound = check_timeout(10)
    assert flight.expire(T0 + timedelta(seconds=10)) == [(A, T0)]


@pytest.mark.parametrize("seconds", [4.9, 3600.5, float("nan"), -1.0])
def test_a_bound_out_of_range_is_refused(seconds: float) -> None:
    with pytest.raises(InvalidArgument):
        InFlight(seconds)


def test_a_request_past_its_bound_is_recorded_as_failed_with_etimedout() -> None:
    outcome = timed_out(State.CREATING, timedelta(seconds=20))
    assert outcome.kind is OutcomeKind.FAILED and outcome.step is State.CREATING
    assert outcome.rc == -errno.ETIMEDOUT and outcome.snap_id is None
    assert outcome.detail == "timed out after 20s when creating mirror snapshot"
    ending = timed_out(None, timedelta(seconds=90.5))  # its completion was being delivered
    assert ending.step is State.DONE
    assert ending.detail == "timed out after 90.5s as it ended"
