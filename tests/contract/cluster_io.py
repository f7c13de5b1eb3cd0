"""The contract every ``ports.ClusterIO`` keeps: what discovery and catch-up rely on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from rbd_snapsched.levels import LevelSpec, PoolInfo
from rbd_snapsched.ports import ClusterIO
from tests.contract.world import Scene


@dataclass
class NamespaceFilter:
    """A ``wanted`` predicate that accepts the namespaces in ``accepted`` (None: all) and
    records what it was asked. A plain object, so a remote ClusterIO can send it across."""

    accepted: frozenset[str] | None = None
    asked: list[LevelSpec] = field(default_factory=list)

    def __call__(self, level: LevelSpec) -> bool:
        self.asked.append(level)
        return self.accepted is None or level.namespace in self.accepted


def check_cluster_io(io: ClusterIO, scene: Scene, *, wanted_seen: bool = True) -> None:
    """``wanted_seen``: False when ``io`` runs elsewhere and cannot report what ``wanted``
    was asked (its remote copy of the filter was asked instead)."""
    # rbd_pools: every RBD pool of the scene, no other kind (a real cluster has more pools).
    listed = io.rbd_pools()
    assert all(p.is_rbd for p in listed)
    for pool in scene.pools.values():
        assert (pool.info in listed) is pool.info.is_rbd, pool

    for pool in scene.pools.values():
        if not pool.info.is_rbd:
            continue
        info = pool.info
        images = [i for i in scene.images.values() if i.pool == info]
        schedulable = {i.spec: i.display for i in images if i.schedulable}
        # Only primary snapshot-mirrored images, named POOL/IMG or POOL/NS/IMG; {} if none.
        everything = NamespaceFilter()
        assert io.discover(info, everything) == schedulable
        if wanted_seen:  # asked once per namespace, the default one included
            assert {lv.namespace for lv in everything.asked} == {"", *pool.namespaces}
            assert all(lv.pool_id == info.id and lv.image_id is None for lv in everything.asked)
        # `wanted` is honoured per namespace.
        for keep in ({""}, set(pool.namespaces), set()):
            subset = {s: n for s, n in schedulable.items() if s.namespace in keep}
            assert io.discover(info, NamespaceFilter(frozenset(keep))) == subset, keep
        # Mirror peers: librbd refuses mirror snapshots of a pool without a tx peer.
        assert io.has_tx_peer(info.id) is pool.tx_peer

    # A pool deleted since it was listed has no images; it is not a failure.
    if scene.missing_pool_id is not None:
        assert io.discover(PoolInfo(scene.missing_pool_id, "gone", True), NamespaceFilter()) == {}

    # The newest primary mirror snapshot: an aware UTC time, or None.
    for image in scene.images.values():
        taken = io.newest_mirror_snapshot(image.spec)
        if image.mirror == "snapshot" and scene.images_have_mirror_snapshots:
            assert taken is not None and taken.utcoffset() == timedelta(0), (image, taken)
        elif image.mirror != "snapshot":
            assert taken is None, (image, taken)
    if scene.missing_image_id is not None:
        for image in scene.images.values():
            gone = image.spec._replace(image_id=scene.missing_image_id)
            assert io.newest_mirror_snapshot(gone) is None
