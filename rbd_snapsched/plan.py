"""What should be snapshotted: the schedules, the pauses and the pools without a tx peer.  pure

The Handler's first room along its pipeline (storage -> plan -> timetable -> requests). It owns:

- ``catalog``: our levels' schedules; ``upstream``: rbd_support's, whose images are not ours;
- ``pauses``: the paused levels;
- ``peerless``: the pools with scheduled images but no mirror tx peer (librbd refuses there);
- ``pools``: the RBD pools the last full refresh saw, id -> name;
- ``generation``: bumped by every command that changes the catalog or the pauses, so a refresh
  that read storage before the command keeps the command's (newer) view.

Read its fields freely (with the Handler's lock held); change them only through its methods.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from . import changes
from .book import Skip
from .catalog import ScheduleCatalog
from .levels import ImageSpec, LevelSpec
from .pauses import Pauses
from .render import LogLine
from .schedule import Schedule


class Plan:
    __slots__ = ("catalog", "generation", "pauses", "peerless", "pools", "upstream")

    def __init__(self) -> None:
        self.catalog = ScheduleCatalog()
        self.upstream = ScheduleCatalog()
        self.pauses = Pauses()
        self.peerless: dict[int, str] = {}  # pool id -> name
        self.pools: dict[int, str] = {}  # pool id -> name
        self.generation = 0

    # -- reads ----------------------------------------------------------------------------

    def schedule_for(self, image: ImageSpec) -> Schedule | None:
        """The schedule of ours that governs ``image``; None while rbd_support holds it."""
        return None if self.upstream.find(image) else self.catalog.find(image)

    @property
    def holds_any(self) -> bool:
        """Whether ``hold`` can hold anything back now (else the hot path skips asking)."""
        return bool(self.peerless) or bool(self.pauses)

    def hold(self, image: ImageSpec) -> Skip | None:
        """Why a due image takes no snapshot at this slot, if it does not: its pool has no tx
        peer (librbd would refuse; told in health), or a pause covers it (it keeps its slots).
        """
        if image.pool_id in self.peerless:
            return Skip.NO_TX_PEER
        if self.pauses and self.pauses.covering(image) is not None:
            return Skip.PAUSED
        return None

    # -- writes ---------------------------------------------------------------------------

    def set_level(self, level: LevelSpec, schedule: Schedule) -> None:
        """A command changed one level's schedule (stored already)."""
        self.catalog.set(level, schedule)
        self.generation += 1

    def set_pauses(self, pauses: Pauses) -> None:
        """A command paused or resumed a level (stored already)."""
        self.pauses = pauses
        self.generation += 1

    def replace(self, generation: int, catalog: ScheduleCatalog, pauses: Pauses) -> bool:
        """A refresh's catalog and pauses, read from storage when the plan was at
        ``generation``; kept only if no command changed the plan since (True if kept)."""
        if generation != self.generation:
            return False
        self.catalog = catalog
        self.pauses = pauses
        return True

    def set_upstream(self, upstream: ScheduleCatalog) -> bool:
        """rbd_support's schedules as a refresh found them; True if they changed."""
        if list(upstream) == list(self.upstream):
            return False
        self.upstream = upstream
        return True

    def set_pools(self, present: Mapping[int, str]) -> dict[int, str]:
        """The RBD pools a full refresh saw; returns the ones it saw before."""
        before, self.pools = self.pools, dict(present)
        return before

    def set_peerless(self, checked: Iterable[int], found: Mapping[int, str]) -> list[LogLine]:
        """Of the ``checked`` pools, ``found`` lack a tx peer; the lines telling what changed."""
        before = dict(self.peerless)
        for pool_id in checked:
            self.peerless.pop(pool_id, None)
        self.peerless.update(found)
        return changes.peers_changed(before, self.peerless)
