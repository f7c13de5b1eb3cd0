"""Text and JSON shapes built from plain data: status rows, schedule text, health checks.

Pure. The handler hands over what it knows (names, times, levels); everything an operator
reads is worded here, so JSON, tables and health checks say the same thing the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from .levels import LevelSpec
from .schedule import ScheduleItem

STATUS_TIME: Final = "%Y-%m-%d %H:%M:00"  # upstream's schedule_time, in UTC here
DETAIL_LINES: Final = 30  # health detail lines at most, then "and N more"

Check = dict[str, Any]


def describe(item: ScheduleItem) -> str:
    """``every 1h`` / ``every 1d starting at 14:00:00-05:00``, as the rbd CLI prints them."""
    text = f"every {item.interval}"
    return text if item.start_time is None else f"{text} starting at {item.start_time}"


def status(entries: Iterable[tuple[datetime, str, LevelSpec | None]]) -> dict[str, Any]:
    """Upstream's ``status`` JSON from (next run, image name, paused level) in queue order;
    a paused image carries the extra key ``paused_by`` (the paused level's name)."""
    rows: list[dict[str, str]] = []
    for due, name, paused_by in entries:
        row = {"schedule_time": due.strftime(STATUS_TIME), "image": name}
        if paused_by is not None:
            row["paused_by"] = paused_by.name
        rows.append(row)
    return {"scheduled_images": rows}


def explain(
    name: str,
    candidates: Sequence[tuple[str, Sequence[ScheduleItem]]],
    *,
    rbd_support: str | None,
    paused_by: str | None,
    next_runs: Sequence[datetime],
) -> dict[str, Any]:
    """One image's ``explain`` entry: who governs it, why, and when it runs next (UTC)."""
    governing = candidates[0][0] if candidates else None
    if rbd_support is not None:
        why = f"rbd_support still schedules it (its level {rbd_support or '(global)'}): ours waits"
    elif governing is None:
        why = "no level above it has a schedule"
    else:
        why = f"{governing or '(global)'} is the most specific level with a schedule"
    return {
        "image": name,
        "governed_by": governing,
        "why": why,
        "levels": [
            {"level": level, "schedule": ", ".join(describe(item) for item in items)}
            for level, items in candidates
        ],
        "rbd_support": rbd_support,
        "paused_by": paused_by,
        "next_runs": [due.strftime("%Y-%m-%dT%H:%M:00Z") for due in next_runs],
    }


def capped(lines: Sequence[str], most: int = DETAIL_LINES) -> list[str]:
    """At most ``most`` detail lines; past that, the first ``most - 1`` and "and N more"."""
    if len(lines) <= most:
        return list(lines)
    return [*lines[: most - 1], f"and {len(lines) - most + 1} more"]


def no_tx_peer(pool_names: Sequence[str]) -> Check:
    names = sorted(pool_names)
    return {
        "severity": "warning",
        "summary": f"{len(names)} pool(s) with mirror snapshot schedules but no tx peer",
        "count": len(names),
        "detail": capped(
            [
                f"pool {name}: scheduled images get no mirror snapshots until a peer is added"
                for name in names
            ]
        ),
    }


def paused(levels: Sequence[tuple[str, datetime]]) -> Check:
    """The operator flag left on: like OSDMAP_FLAGS, named until resumed."""
    return {
        "severity": "warning",
        "summary": f"{len(levels)} level(s) paused: no scheduled mirror snapshots there",
        "count": len(levels),
        "detail": capped(
            [
                f"level {name or '(global)'} paused since {since.strftime(STATUS_TIME)} UTC "
                f"(ceph rbd mirror snapshot schedule resume '{name}')"
                for name, since in levels
            ]
        ),
    }


def rbd_support_schedules(level_names: Sequence[str]) -> Check:
    levels = [name or "(global)" for name in level_names]
    return {
        "severity": "warning",
        "summary": f"rbd_support still holds {len(levels)} mirror snapshot schedule(s): "
        "its images are not scheduled by rbd_snapsched",
        "count": len(levels),
        "detail": capped(
            [
                "move them with `ceph rbd mirror snapshot schedule takeover` "
                "(add --dry-run to preview)",
                *(f"rbd_support schedule at level {name}" for name in levels),
            ]
        ),
    }
