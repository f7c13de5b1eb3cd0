"""Moving rbd_support's schedules into ours, one level at a time, never doubling a slot.

Per level: write ours (merged with any we have), read it back, and only then remove
rbd_support's. Until that removal the level's images stay rbd_support's alone, so an
interruption loses nothing and doubles nothing; a rerun finishes the job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .errors import SnapSchedError
from .levels import LevelSpec, PoolInfo
from .render import describe
from .schedule import Schedule
from .store import ScheduleStore


class Schedules(Protocol):
    """What take-over needs of the scheduler: its storage and its one way to change a level."""

    def change(self, level: LevelSpec, edit: Callable[[Schedule], Schedule]) -> None: ...

    def read_back(self, level: LevelSpec) -> Schedule | None: ...


def merged_with(new: Schedule) -> Callable[[Schedule], Schedule]:
    def merge(old: Schedule) -> Schedule:
        for item in new:
            old = old.with_item(item)
        return old

    return merge


def take_over(
    upstream: ScheduleStore,
    pools: list[PoolInfo],
    ours: Schedules,
    *,
    dry_run: bool,
    remove_upstream: Callable[[LevelSpec], str],
) -> list[str]:
    """Move every schedule ``upstream`` holds into ``ours``; lines that say what happened.

    ``remove_upstream`` removes a level from rbd_support and returns a note.
    """
    verb = "would move" if dry_run else "moved"
    lines: list[str] = []
    loaded = upstream.load(pools)
    for level, schedule in loaded.catalog:
        name = level.name or "(global)"
        text = ", ".join(describe(item) for item in schedule)
        if not dry_run:
            ours.change(level, merged_with(schedule))
            stored = ours.read_back(level)
            if stored is None or not set(schedule).issubset(set(stored)):
                raise SnapSchedError(
                    f"takeover stopped: {name} did not read back from our storage; "
                    "rbd_support keeps it"
                )
            text += remove_upstream(level)
        lines.append(f"{verb} {name}: {text}")
        if any(item.start_time is not None for item in schedule):
            lines.append(
                f"  note: {name}: start times now fire in UTC, offsets applied correctly "
                "(rbd_support used mgr-local time and added the offset)"
            )
    for skipped in loaded.skipped:
        where = f"pool {skipped.where}" if skipped.where else "global option"
        why = "its level no longer exists" if skipped.stale else "it does not decode"
        lines.append(f"not copied: {where} key {skipped.key!r}: {why} ({skipped.reason})")
    if not lines:
        lines.append("nothing to take over: rbd_support holds no mirror snapshot schedules")
    return lines
