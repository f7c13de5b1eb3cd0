"""Sync now, for DR tooling: what ``snapshot-now`` asked for, and whether it is done.

A failover runbook (or csi-addons/Ramen) fences a level, asks for one mirror snapshot of each
primary image under it, waits until each has one, then demotes. ``snapshot-now`` answers with
a ``Requested`` (text, or JSON with ``--format json``): how many images, which were asked,
which were not and why, and ``requested_at``. ``snapshot-now-status <level> <requested_at>``
answers with a ``Synced``: which images have a primary mirror snapshot taken at or after
``requested_at``, read from the images themselves (not from the module's word), which are
still pending, and which failed since.

``requested_at`` is a whole second (librbd keeps snapshot times in whole seconds), and the
module dispatches no request before it: a snapshot whose time is at or after ``requested_at``
was therefore taken after the request was made, and holds every write acknowledged before it.

Pure: no mgr, no I/O. The handler reads the cluster and builds these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from .errors import InvalidArgument

ISO: Final = "%Y-%m-%dT%H:%M:%SZ"

# Why an image under the level got no request (the JSON's ``reason``).
IN_FLIGHT: Final = "in_flight"  # a request of it is running or waiting: not asked twice
NO_TX_PEER: Final = "no_tx_peer"  # its pool has no mirror peer to send snapshots to


def whole_second_after(now: datetime) -> datetime:
    """``now`` itself if it is a whole second, else the next whole second."""
    floor = now.replace(microsecond=0)
    return floor if floor == now else floor + timedelta(seconds=1)


def parse_since(text: str) -> datetime:
    """``requested_at`` as ``snapshot-now`` prints it (``2026-12-06T19:30:12Z``), or any ISO
    8601 date-time with an offset; one without a zone is UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(
            f"invalid requested_at '{text}': expected a date-time like 2026-12-06T19:30:12Z "
            "(snapshot-now --format json prints it)"
        ) from None
    if when.tzinfo is None:
        return when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def _level(name: str) -> str:
    return name or "(global)"


@dataclass(frozen=True)
class Requested:
    """What one ``snapshot-now`` did."""

    level: str
    requested_at: datetime
    images: int  # primary snapshot-mirrored images under the level, found now
    requested: tuple[str, ...]  # asked for now (started, or waiting for the cap)
    skipped: tuple[tuple[str, str], ...]  # (image, reason): not asked
    running: int  # requests holding a slot of the cap after this one

    def text(self) -> str:
        busy = sum(1 for _, why in self.skipped if why == IN_FLIGHT)
        peerless = len(self.skipped) - busy
        notes = [f"{busy} already in progress"] if busy else []
        if peerless:
            notes.append(f"{peerless} in pools without a tx peer, skipped")
        text = f"snapshot requested for {len(self.requested)} image(s) under {_level(self.level)}"
        text += f" ({', '.join(notes)})" if notes else ""
        return f"{text}; {self.running} request(s) running now"

    def json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "requested_at": self.requested_at.strftime(ISO),
            "images": self.images,
            "requested": list(self.requested),
            "skipped": [{"image": image, "reason": why} for image, why in self.skipped],
            "running": self.running,
        }


@dataclass(frozen=True)
class Synced:
    """Whether each image under a level has a primary mirror snapshot since ``since``."""

    level: str
    since: datetime
    done: tuple[tuple[str, datetime], ...]  # (image, when its newest primary snapshot was taken)
    pending: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]  # (image, the error of its last attempt since)

    @property
    def complete(self) -> bool:
        return not self.pending and not self.failed

    def text(self) -> str:
        images = len(self.done) + len(self.pending) + len(self.failed)
        text = (
            f"{len(self.done)} of {images} image(s) under {_level(self.level)} have a mirror "
            f"snapshot taken since {self.since.strftime(ISO)}"
        )
        if self.pending:
            text += f"; pending: {', '.join(self.pending)}"
        if self.failed:
            text += "; failed: " + ", ".join(f"{image} ({error})" for image, error in self.failed)
        return text

    def json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "since": self.since.strftime(ISO),
            "images": len(self.done) + len(self.pending) + len(self.failed),
            "complete": self.complete,
            "done": [
                {"image": image, "snapshot_time": when.strftime(ISO)} for image, when in self.done
            ],
            "pending": list(self.pending),
            "failed": [{"image": image, "error": error} for image, error in self.failed],
        }
