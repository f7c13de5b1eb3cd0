"""Discovery: which primary snapshot-mirrored images the cluster has, through ``ClusterIO``.

No state: the handler decides what to keep of what this finds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .levels import ImageSpec, LevelSpec, PoolInfo
from .pauses import covers
from .ports import ClusterIO

Found = tuple[dict[ImageSpec, str], set[int], dict[int, str]]


def discover(
    io: ClusterIO, pools: Iterable[PoolInfo], wanted: Callable[[LevelSpec], bool]
) -> Found:
    """Scan ``pools`` for the images in the namespaces ``wanted`` accepts: image -> name.

    Also returns the ids of pools that failed, and the pools with images but no tx peer.
    """
    found: dict[ImageSpec, str] = {}
    failed: set[int] = set()
    peerless: dict[int, str] = {}
    for pool in pools:
        images = io.discover(pool, wanted)
        if images is None:
            failed.add(pool.id)
            continue
        found.update(images)
        if images and not io.has_tx_peer(pool.id):
            peerless[pool.id] = pool.name
    return found, failed, peerless


def primary_images(io: ClusterIO, level: LevelSpec) -> dict[ImageSpec, str]:
    """Every primary snapshot-mirrored image under ``level``, scanned now (not only the
    scheduled ones the scheduler knows)."""
    found: dict[ImageSpec, str] = {}
    for pool in io.rbd_pools():
        if level.pool_id is not None and level.pool_id != pool.id:
            continue
        images = io.discover(pool, level.intersects) or {}
        found.update((i, n) for i, n in images.items() if covers(level, i))
    return found
