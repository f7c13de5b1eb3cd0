"""Text and JSON shapes built from plain data: status rows, schedule text, health checks.

Pure. The handler hands over what it knows (names, times, levels); everything an operator
reads is worded here, so JSON, tables and health checks say the same thing the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from .schedule import ScheduleItem

STATUS_TIME: Final = "%Y-%m-%d %H:%M:00"  # upstream's schedule_time, in UTC here
DETAIL_LINES: Final = 30  # health detail lines at most, then "and N more"

Check = dict[str, Any]


def describe(item: ScheduleItem) -> str:
    """``every 1h`` / ``every 1d starting at 14:00:00-05:00``, as the rbd CLI prints them."""
    text = f"every {item.interval}"
    return text if item.start_time is None else f"{text} starting at {item.start_time}"


def status(entries: Iterable[tuple[datetime, str]]) -> dict[str, Any]:
    """Upstream's ``status`` JSON from (next run, image name) pairs in queue order."""
    return {
        "scheduled_images": [
            {"schedule_time": due.strftime(STATUS_TIME), "image": name} for due, name in entries
        ]
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
