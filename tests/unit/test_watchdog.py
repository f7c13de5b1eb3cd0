"""The stall watch alone (``watchdog.py``): each line, told once, with injected times."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from rbd_snapsched.render import LogLine
from rbd_snapsched.watchdog import STALL_AFTER, Watchdog

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
S = timedelta(seconds=1)


def text(line: LogLine | None) -> str:
    """The line as the log shows it (and the fault tests grep it)."""
    assert line is not None
    assert line.level == logging.WARNING
    return line.text % line.args


def test_requests_stalled_are_told_once_when_they_reach_the_bound() -> None:
    w = Watchdog(T0)
    assert w.check(T0 + STALL_AFTER - S, running=2, waiting=1) == []
    (line,) = w.check(T0 + STALL_AFTER + 5 * S, running=2, waiting=1)
    assert text(line) == (
        "snapshot requests stalled: 2 in flight and 1 waiting, none finished for 35s "
        "(OSDs down or the monitors unreachable?)"
    )
    assert w.check(T0 + 10 * STALL_AFTER, running=2, waiting=1) == []  # once


def test_no_stall_without_requests_in_flight() -> None:
    w = Watchdog(T0)
    assert w.check(T0 + 10 * STALL_AFTER, running=0, waiting=0) == []


def test_their_recovery_is_told_once_counted_from_the_last_progress() -> None:
    w = Watchdog(T0)
    assert w.finished(T0 + S) is None  # not told stalled: nothing to tell
    w.check(T0 + S + STALL_AFTER, running=1, waiting=0)
    assert text(w.finished(T0 + 61 * S)) == "snapshot requests moving again after 60s stalled"
    assert w.finished(T0 + 62 * S) is None
    # Progress at 62s: a new stall counts from there, and is told again.
    assert w.check(T0 + 62 * S + STALL_AFTER - S, running=1, waiting=0) == []
    assert len(w.check(T0 + 62 * S + STALL_AFTER, running=1, waiting=0)) == 1


def test_requests_started_idle_count_from_their_start() -> None:
    w = Watchdog(T0)
    later = T0 + timedelta(minutes=30)
    w.starting(later, idle=True)
    assert w.check(later + 5 * S, running=1, waiting=0) == []
    w.starting(later + 20 * S, idle=False)  # one more joins those in flight: no new count
    (line,) = w.check(later + STALL_AFTER, running=2, waiting=0)
    assert "none finished for 30s" in text(line)


def test_a_pass_stuck_is_told_once_and_its_end_once() -> None:
    w = Watchdog(T0)
    w.pass_begins(T0)
    assert w.check(T0 + STALL_AFTER - S, running=0, waiting=0) == []
    (line,) = w.check(T0 + STALL_AFTER + 2 * S, running=0, waiting=0)
    assert text(line) == (
        "scheduler thread stuck: its pass has waited on the cluster for 32s "
        "(OSDs down or the monitors unreachable?)"
    )
    assert w.check(T0 + 2 * STALL_AFTER, running=0, waiting=0) == []
    assert text(w.pass_ends(T0 + 40 * S)) == "scheduler thread passing again after 40s stuck"
    assert w.pass_ends(T0 + 41 * S) is None
    assert w.check(T0 + 10 * STALL_AFTER, running=0, waiting=0) == []  # no pass under way


def test_a_pass_that_ends_in_time_tells_nothing() -> None:
    w = Watchdog(T0)
    w.pass_begins(T0)
    assert w.pass_ends(T0 + STALL_AFTER + S) is None  # not checked meanwhile: not told


def test_both_signs_at_once_stuck_first() -> None:
    w = Watchdog(T0)
    w.pass_begins(T0)
    lines = w.check(T0 + STALL_AFTER, running=3, waiting=0)
    assert [text(x).split(":")[0] for x in lines] == [
        "scheduler thread stuck",
        "snapshot requests stalled",
    ]
