"""The snapshot requests the driver is running, and which outlived ``snap_create_timeout``. Pure.

librbd has no aio cancel: a create on an image whose exclusive lock owner does not answer
retries for as long as the owner's watch lives. So a request that outlives the bound is not
stopped; it becomes *overdue*: the scheduler releases its concurrency slot and records it as
failed (ETIMEDOUT), while the driver keeps its image open until librbd's callback comes. Until
then its image is admitted no new request (one request per image in librbd at a time).

Invariants (the handler's lock held around every call):
  - an image is in at most one of ``running`` (started, slot held) and ``overdue``;
  - ``running`` is in start order, so its first entry reaches the bound first: ``expire``
    and ``next_timeout`` look at the front only (O(1) per request).
"""

from __future__ import annotations

import errno
from collections.abc import Container
from datetime import datetime, timedelta

from .errors import InvalidArgument
from .levels import ImageSpec
from .requests import Outcome, OutcomeKind, State
from .settings import DEFAULTS, SNAP_CREATE_TIMEOUT_RANGE

SNAP_CREATE_TIMEOUT = DEFAULTS.snap_create_timeout  # seconds, the default bound


def check_timeout(seconds: float) -> timedelta:
    """The bound as a timedelta; InvalidArgument outside the range (NaN too)."""
    low, high = SNAP_CREATE_TIMEOUT_RANGE
    if not low <= seconds <= high:
        raise InvalidArgument(
            f"snap_create_timeout must be from {low:g} to {high:g} seconds, not {seconds}"
        )
    return timedelta(seconds=seconds)


class InFlight:
    """Start times of the running requests; the overdue ones apart."""

    def __init__(self, seconds: float = SNAP_CREATE_TIMEOUT) -> None:
        self.bound = check_timeout(seconds)
        self._running: dict[ImageSpec, datetime] = {}  # image -> started, in start order
        self._overdue: dict[ImageSpec, datetime] = {}  # image -> started

    @property
    def overdue(self) -> int:
        """Requests past the bound that librbd has not ended yet."""
        return len(self._overdue)

    @property
    def overdue_images(self) -> Container[ImageSpec]:
        """The images whose request is overdue, as a live read-only view."""
        return self._overdue.keys()

    def started(self, image: ImageSpec, now: datetime) -> bool:
        """The driver started ``image``'s request; True if it is now the oldest running (its
        bound is the next timeout)."""
        self._running[image] = now
        return len(self._running) == 1

    def next_timeout(self) -> datetime | None:
        """When the oldest running request reaches the bound."""
        oldest = next(iter(self._running.values()), None)
        return None if oldest is None else oldest + self.bound

    def expire(self, now: datetime) -> list[tuple[ImageSpec, datetime]]:
        """Move the requests past the bound at ``now`` to overdue: (image, started) each."""
        expired = []
        while self._running:
            image, since = next(iter(self._running.items()))
            if since + self.bound > now:
                break
            del self._running[image]
            self._overdue[image] = since
            expired.append((image, since))
        return expired

    def ended(self, image: ImageSpec) -> datetime | None:
        """Its request ended (it is no longer in flight): when it started if it was overdue
        (its slot went already), else None (the caller releases its slot)."""
        since = self._overdue.pop(image, None)
        if since is None:
            self._running.pop(image, None)
        return since


def timed_out(step: State | None, bound: timedelta) -> Outcome:
    """The outcome recorded for a request that outlived ``bound`` while in ``step`` (None:
    its completion was being delivered): a failure with ETIMEDOUT."""
    seconds = f"{bound.total_seconds():g}s"
    detail = f"timed out after {seconds} " + (f"when {step.value}" if step else "as it ended")
    return Outcome(OutcomeKind.FAILED, step or State.DONE, -errno.ETIMEDOUT, None, detail)
