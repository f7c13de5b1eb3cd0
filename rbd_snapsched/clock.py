"""The one source of time: aware UTC datetimes, injectable for tests."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def wait(self, cond: threading.Condition, deadline: datetime | None) -> None:
        """Wait on ``cond`` (held by the caller) until notified or ``deadline`` passes.

        ``None`` waits until notified. Spurious wake-ups are allowed: callers re-check.
        """
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def wait(self, cond: threading.Condition, deadline: datetime | None) -> None:
        if deadline is None:
            cond.wait()
            return
        timeout = (deadline - self.now()).total_seconds()
        if timeout > 0:
            cond.wait(timeout)
