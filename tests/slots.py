"""Minute slots and wall-clock time, shared by the cluster tests, the benchmarks and the tools.

Standard library only (``tests/cephcluster.py`` and ``tests/twosite.py`` run as scripts):
``utcnow``, the next slot (as a datetime, ``next_slot``, or as epoch seconds, ``next_minute``),
``sleep_until`` an instant, and an image's mirror snapshots as the rbd CLI lists them.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Union

from tests.cephcluster import Cluster, ClusterError

SLOT = 60  # seconds: a minute slot, the shortest schedule interval
MINUTE = timedelta(minutes=1)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ENOENT = 2

Instant = Union[datetime, float]  # an aware datetime, or epoch seconds


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def epoch(when: Instant) -> float:
    """``when`` in epoch seconds."""
    return when.timestamp() if isinstance(when, datetime) else when


def next_slot(
    now: datetime, period: timedelta = MINUTE, start: timedelta = timedelta(0)
) -> datetime:
    """The first slot strictly after ``now`` of ``period`` anchored at the epoch + ``start``."""
    anchor = EPOCH + start
    return anchor + ((now - anchor) // period + 1) * period


def next_minute(after: float | None = None, lead: float = 0.0) -> float:
    """The first UTC minute boundary strictly after ``after`` (default: now), epoch seconds;
    if it is less than ``lead`` s away, the one after."""
    now = time.time() if after is None else after
    boundary = float((int(now) // SLOT + 1) * SLOT)
    return boundary if boundary - now >= lead else boundary + SLOT


def sleep_until(when: Instant) -> None:
    """Sleep until a wall-clock instant (a minute slot); at once if it has passed."""
    target = epoch(when)
    while (left := target - time.time()) > 0:
        time.sleep(min(left, 1.0))


def sleep_past_next_minute(margin: float) -> datetime:
    """Sleep until ``margin`` s past the next UTC minute boundary; the time on waking."""
    sleep_until(next_minute() + margin)
    return utcnow()


def mirror_snapshots(
    cluster: Cluster, spec: str, *, missing_ok: bool = False
) -> list[dict[str, Any]]:
    """The image's mirror snapshots, oldest first, as ``rbd snap ls --all --format json`` lists
    them. ``missing_ok``: none while the image does not exist (yet)."""
    proc = cluster.run("rbd", "snap", "ls", "--all", "--format", "json", spec, check=not missing_ok)
    if proc.returncode == ENOENT:
        return []
    if proc.returncode != 0:
        raise ClusterError(f"rbd snap ls --all {spec} failed ({proc.returncode}): {proc.stderr}")
    rows: list[dict[str, Any]] = json.loads(proc.stdout or "[]")
    return [row for row in rows if row.get("namespace", {}).get("type") == "mirror"]
