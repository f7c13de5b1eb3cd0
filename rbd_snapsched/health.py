"""Our health checks, composed from the scheduler's state. Pure; the wording is ``render.py``'s.

Every check is named ``RBD_SNAPSCHED_*``, has a summary with a count and a capped detail, and
is absent (cleared) when its condition ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Final

from . import render
from .book import Book, ImageRecord
from .catalog import ScheduleCatalog
from .levels import ImageSpec
from .pauses import Pauses

Checks = dict[str, render.Check]

DEBOUNCE: Final = timedelta(seconds=1)  # republished at most this often on events
REFRESH: Final = timedelta(seconds=60)  # while images are late, their lateness is re-told


class HealthTimer:
    """When our health checks are published next, and what was published last.

    An event that may change a check ``mark``s it; publishing follows at most ``DEBOUNCE``
    after the last publication. While images are late the checks are republished every
    ``REFRESH``, so their ages stay current. ``publish`` records a publication and says
    whether the checks changed (only then does the mgr need them).
    """

    def __init__(self, now: datetime) -> None:
        self.checks: Checks = {}  # as last published
        # An event may have changed a check since the last publication (read it, never
        # write it: ``mark`` and ``publish`` do; an attribute, since each request's end reads it)
        self.marked = False
        self._told = now - REFRESH  # when they were last published: at once the first time

    def mark(self) -> None:
        self.marked = True

    def due(self) -> datetime | None:
        """When to publish next, if at all."""
        if self.marked:
            return self._told + DEBOUNCE
        if "RBD_SNAPSCHED_LATE" in self.checks:
            return self._told + REFRESH
        return None

    def publish(self, now: datetime, checks: Checks) -> bool:
        """``checks`` were composed at ``now``; True if they differ from the last ones."""
        self.marked = False
        self._told = now
        if checks == self.checks:
            return False
        self.checks = checks
        return True


def checks(
    now: datetime,
    *,
    book: Book,
    peerless: Sequence[str],
    pauses: Pauses,
    upstream: ScheduleCatalog,
) -> Checks:
    """The mgr's ``set_health_checks`` argument. ``book.advance(now)`` must have run.

    Paused images are neither late nor failing here: their level's pause is the warning.
    """
    found: Checks = {}
    if peerless:
        found["RBD_SNAPSCHED_NO_TX_PEER"] = render.no_tx_peer(peerless)
    if pauses:
        found["RBD_SNAPSCHED_PAUSED"] = render.paused([(lv.name, since) for lv, since in pauses])
    if upstream:
        levels = [level.name for level, _ in upstream]
        found["RBD_SNAPSCHED_RBD_SUPPORT_SCHEDULES"] = render.rbd_support_schedules(levels)
    late = [item for item in book.late(now) if not pauses or not pauses.covering(item.image)]
    if late:
        found["RBD_SNAPSCHED_LATE"] = render.late(late, book.late_factor)
    failing = _scheduled_unpaused(book.failing(), pauses)
    if failing:
        found["RBD_SNAPSCHED_FAILING"] = render.failing(failing)
    lagging = _scheduled_unpaused(book.lagging(), pauses)
    if lagging:
        found["RBD_SNAPSCHED_PEER_LAGGING"] = render.peer_lagging(lagging)
    return found


def _scheduled_unpaused(
    pairs: Iterable[tuple[ImageSpec, ImageRecord]], pauses: Pauses
) -> list[ImageRecord]:
    """The records still ours to snapshot and under no paused level, in the given order."""
    return [
        record
        for image, record in pairs
        if record.schedule and (not pauses or not pauses.covering(image))
    ]
