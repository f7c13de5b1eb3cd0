"""What a refresh drops or renames, worded once for the log. Pure.

The handler hands over what it had and what it found (catalogs, pools, the book's records,
the store's skipped records, discovered images, pools without a tx peer) and logs the lines
returned: one per pool deleted, per pool that lost levels from storage, per pool whose
scheduled images left, per pool that lost or regained its tx peer, and one per renamed image.
Each is told once because each compares before with after: the handler moves "before" on
after asking (its pools, catalog, book and peerless pools).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence

from .book import ImageRecord
from .catalog import ScheduleCatalog
from .levels import ImageSpec
from .render import LogLine
from .store import SCHEDULE_OID, Skipped

LOG_NAMES = 10  # names a log line lists at most


def names(listed: Sequence[str]) -> str:
    """The first ``LOG_NAMES`` names, then ", ..." if there are more."""
    return ", ".join(listed[:LOG_NAMES]) + (", ..." if len(listed) > LOG_NAMES else "")


def pools_gone(
    known: Mapping[int, str],
    present: Mapping[int, str],
    previous: ScheduleCatalog,
    images: Iterable[ImageSpec],
) -> list[LogLine]:
    """Each pool the last full refresh saw (``known``: id -> name) and that is no longer
    ``present``, if it had schedule levels in ``previous`` or ``images`` (the book's, all of
    them counted as the line's "scheduled"): its schedules went with it."""
    gone = {pool_id: name for pool_id, name in known.items() if pool_id not in present}
    if not gone:
        return []  # the usual case: the book is not walked
    levels = dict.fromkeys(gone, 0)
    for level, _ in previous:
        if level.pool_id in levels:
            levels[level.pool_id] += 1
    counted = dict.fromkeys(gone, 0)
    for image in images:
        if image.pool_id in counted:
            counted[image.pool_id] += 1
    return [
        LogLine(
            logging.INFO,
            "pool %s (id %d) no longer exists: dropped its %d schedule level(s) and "
            "%d scheduled image(s)",
            (name, pool_id, levels[pool_id], counted[pool_id]),
        )
        for pool_id, name in gone.items()
        if levels[pool_id] or counted[pool_id]
    ]


def levels_gone(
    previous: ScheduleCatalog,
    catalog: ScheduleCatalog,
    present: Mapping[int, str],
    skipped: Iterable[Skipped],
) -> list[LogLine]:
    """The levels of ``present`` pools whose schedule left storage without a command (the
    object or its keys removed by hand), one line per pool: the listing now shows storage, so
    say what it lost. Records the store ``skipped`` (pruned, corrupt) are the store's to
    tell; deleted pools ``pools_gone``'s."""
    told = {(s.where, s.key) for s in skipped}
    gone: dict[str, list[str]] = {}
    for level, _ in previous:
        pool = present.get(level.pool_id) if level.pool_id is not None else None
        if pool is None or catalog.get(level) is not None or (pool, level.id) in told:
            continue
        gone.setdefault(pool, []).append(level.name)
    return [
        LogLine(
            logging.WARNING,
            "pool %s: %d schedule level(s) no longer in storage (%s removed or edited "
            "outside this module?), dropped: %s",
            (pool, len(listed), SCHEDULE_OID, names(listed)),
        )
        for pool, listed in gone.items()
    ]


def images_left(
    gone: Iterable[tuple[ImageSpec, ImageRecord]], scanned: Collection[int]
) -> list[LogLine]:
    """The scheduled images no longer found in the ``scanned`` pools (removed, demoted,
    mirroring disabled), one line per pool; ``gone``: the book's records of every image
    about to be forgotten (those of pools not scanned are not told: not known to be gone)."""
    left: dict[str, list[str]] = {}
    for image, record in gone:
        if image.pool_id in scanned and record.schedule is not None:
            left.setdefault(record.pool, []).append(record.name)
    return [
        LogLine(
            logging.INFO,
            "pool %s: %d scheduled image(s) no longer primary and snapshot-mirrored "
            "(removed, demoted or mirroring disabled), no longer scheduled: %s",
            (pool, len(listed), names(listed)),
        )
        for pool, listed in left.items()
    ]


def renamed(names: Iterable[tuple[str, str]]) -> list[LogLine]:
    """Each image found under another name than the book's: (old, new) each. The handler
    collects the pairs in the pass that tracks the found images (one pass under its lock)."""
    return [
        LogLine(logging.INFO, "image %s renamed to %s: it keeps its slots", (old, new))
        for old, new in names
    ]


def peers_changed(before: Mapping[int, str], after: Mapping[int, str]) -> list[LogLine]:
    """Each pool that lost or regained its tx peer (pool id -> name, the pools without one)."""
    lines = [
        LogLine(
            logging.ERROR,
            "pool %s has scheduled images but no mirror tx peer: no snapshots there "
            "until one is added (rbd mirror pool peer add/bootstrap)",
            (name,),
        )
        for pool_id, name in after.items()
        if pool_id not in before
    ]
    lines.extend(
        LogLine(logging.INFO, "pool %s has a mirror tx peer again", (name,))
        for pool_id, name in before.items()
        if pool_id not in after
    )
    return lines


def election(
    previous: int | None, seen: tuple[int, list[str]] | None
) -> tuple[int | None, LogLine | None]:
    """A new monitor election (a mon restarted, or the quorum changed), told once seen.

    ``seen`` is a mon_status's election epoch and quorum (``cluster.mon_election``; None if it
    did not say); returns the epoch to remember and the line to log, if any.
    """
    if seen is None:
        return previous, None
    epoch, quorum = seen
    if previous is None or epoch == previous:
        return epoch, None
    return epoch, LogLine(
        logging.INFO,
        "monitor election: epoch %s -> %s, quorum %s (a monitor restarted or the quorum changed)",
        (previous, epoch, ",".join(quorum) or "?"),
    )
