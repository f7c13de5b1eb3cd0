"""The stall watch: whether the cluster stopped answering, told once and once more at its end.

Pure: fed times and counts by the handler (under its lock), it returns the lines to log and
keeps no clock, lock or logger. Two signs, each told once when it starts and once when it ends:
  - requests in flight and none finished for ``STALL_AFTER`` (an OSD or the mons down);
  - one pass of the scheduler thread lasting ``STALL_AFTER`` (a refresh waiting on the cluster).
``check`` is called now and then from another thread: the scheduler thread itself may be the
one waiting on the cluster.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from .render import LogLine

STALL_AFTER = timedelta(seconds=30)


class Watchdog:
    def __init__(self, now: datetime) -> None:
        self.progress_at = now  # a request last finished, or requests started idle
        self.stalled_since: datetime | None = None  # told: no request finished since then
        self.pass_began: datetime | None = None  # the thread's pass under way, if any
        self.stuck_since: datetime | None = None  # told: that pass waits on the cluster

    def pass_begins(self, now: datetime) -> None:
        """The scheduler thread starts a pass."""
        self.pass_began = now

    def pass_ends(self, now: datetime) -> LogLine | None:
        """The pass is over: the line telling its end, if it was told stuck."""
        self.pass_began = None
        since, self.stuck_since = self.stuck_since, None
        if since is None:
            return None
        return LogLine(
            logging.WARNING,
            "scheduler thread passing again after %.0fs stuck",
            ((now - since).total_seconds(),),
        )

    def starting(self, now: datetime, *, idle: bool) -> None:
        """Requests are about to start; ``idle``: none was in flight, so a stall counts from
        ``now`` (not from the last one that finished, maybe long ago)."""
        if idle:
            self.progress_at = now

    def finished(self, now: datetime) -> LogLine | None:
        """A request ended: the line telling the requests move again, if they were told
        stalled."""
        self.progress_at = now
        since, self.stalled_since = self.stalled_since, None
        if since is None:
            return None
        return LogLine(
            logging.WARNING,
            "snapshot requests moving again after %.0fs stalled",
            ((now - since).total_seconds(),),
        )

    def check(self, now: datetime, running: int, waiting: int) -> list[LogLine]:
        """The lines for what became stuck or stalled by ``now`` and was not told yet
        (``running``, ``waiting``: the requests in flight and those waiting for the cap)."""
        lines: list[LogLine] = []
        began = self.pass_began
        if began is not None and self.stuck_since is None and now - began >= STALL_AFTER:
            self.stuck_since = began
            lines.append(
                LogLine(
                    logging.WARNING,
                    "scheduler thread stuck: its pass has waited on the cluster for %.0fs "
                    "(OSDs down or the monitors unreachable?)",
                    ((now - began).total_seconds(),),
                )
            )
        if not running or self.stalled_since is not None:
            return lines
        stalled = now - self.progress_at
        if stalled < STALL_AFTER:
            return lines
        self.stalled_since = self.progress_at
        lines.append(
            LogLine(
                logging.WARNING,
                "snapshot requests stalled: %d in flight and %d waiting, none finished for "
                "%.0fs (OSDs down or the monitors unreachable?)",
                (running, waiting, stalled.total_seconds()),
            )
        )
        return lines
