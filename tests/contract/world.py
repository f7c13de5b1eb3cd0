"""The world a contract check runs in: what exists, described once, built on a fake or a cluster.

A check never builds anything itself: it gets a ``Scene``, the description of what was built
(with the ids the builder got back), and states what each protocol must answer about it. So
the same check runs against ``FakeCluster`` (``build_fake``), a real cluster
(``tests/contract/real_world.py``) and the benchmark's narrower fakes, whose ``Scene`` simply
lists less.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal, Optional

from rbd_snapsched.levels import ImageSpec, PoolInfo
from rbd_snapsched.requests import MIRROR_IMAGE_MODE_SNAPSHOT
from tests.fake_cluster import JOURNAL, FakeCluster

Mirror = Optional[Literal["snapshot", "journal"]]


@dataclass(frozen=True)
class PoolDef:
    """A pool to build. ``namespaces`` maps each named namespace to whether it is in mirror
    mode image; the default namespace follows the pool (image mode iff ``rbd``)."""

    key: str
    rbd: bool = True
    tx_peer: bool = True
    namespaces: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageDef:
    pool: str  # a PoolDef key
    namespace: str
    name: str
    mirror: Mirror = "snapshot"
    primary: bool = True


@dataclass(frozen=True)
class ScenePool:
    info: PoolInfo  # id and name as built (a real cluster's names carry a prefix)
    tx_peer: bool
    namespaces: dict[str, bool]  # named namespaces -> image mode ('' not listed)


@dataclass(frozen=True)
class SceneImage:
    spec: ImageSpec
    pool: PoolInfo
    name: str
    mirror: Mirror
    primary: bool

    @property
    def display(self) -> str:
        ns = self.spec.namespace
        return f"{self.pool.name}/{ns}/{self.name}" if ns else f"{self.pool.name}/{self.name}"

    @property
    def schedulable(self) -> bool:
        """What discovery must return and the driver must snapshot."""
        return self.mirror == "snapshot" and self.primary


@dataclass
class Scene:
    """What exists. ``missing_*``: ids that certainly do not (None: the world cannot say)."""

    pools: dict[str, ScenePool]
    images: dict[str, SceneImage]  # key: "POOLKEY/NS/NAME"
    missing_pool_id: int | None
    missing_pool_name: str | None
    missing_image_id: str | None = "0123456789ab"
    # Images with a primary mirror snapshot (enabling snapshot mirroring takes one). False for
    # the benchmark's world, whose images never took one.
    images_have_mirror_snapshots: bool = True

    def image(self, key: str) -> SceneImage:
        return self.images[key]


def image_key(pool: str, namespace: str, name: str) -> str:
    return f"{pool}/{namespace}/{name}"


# The layout every cluster-side contract runs on: small, yet one of each case the scheduler
# tells apart. Building it on a real cluster takes a few parallel CLI rounds.
POOLS = (
    PoolDef("main", namespaces={"ns1": True, "ns2": False}),
    PoolDef("nopeer", tx_peer=False),
    PoolDef("plain", rbd=False),
)
IMAGES = (
    ImageDef("main", "", "prim"),
    ImageDef("main", "", "demoted", primary=False),
    ImageDef("main", "", "journal", mirror="journal"),
    ImageDef("main", "", "unmirrored", mirror=None),
    ImageDef("main", "ns1", "prim"),
    ImageDef("main", "ns1", "demoted", primary=False),
    ImageDef("main", "ns2", "unmirrored", mirror=None),
)


def build_fake(
    cluster: FakeCluster,
    pools: tuple[PoolDef, ...] = POOLS,
    images: tuple[ImageDef, ...] = IMAGES,
    *,
    now: datetime | None = None,
) -> Scene:
    """Build the layout on ``cluster``. Snapshot-mirrored images get a mirror snapshot taken
    ``now`` (the one enabling mirroring takes on a real cluster)."""
    taken = now or datetime.now(timezone.utc)
    built: dict[str, ScenePool] = {}
    for p in pools:
        pool = cluster.add_pool(p.key, is_rbd=p.rbd)
        pool.tx_peer = p.tx_peer
        pool.namespaces[""].image_mode = p.rbd
        for ns, image_mode in p.namespaces.items():
            cluster.add_namespace(pool, ns, image_mode=image_mode)
        info = PoolInfo(pool.id, pool.name, p.rbd)
        built[p.key] = ScenePool(info, p.tx_peer, dict(p.namespaces))
    scene_images: dict[str, SceneImage] = {}
    for i in images:
        mode = MIRROR_IMAGE_MODE_SNAPSHOT if i.mirror == "snapshot" else JOURNAL
        pool = cluster.pools[built[i.pool].info.id]
        spec = cluster.add_image(pool, i.name, i.namespace, mode=mode, primary=i.primary)
        fake = cluster.image(spec)
        if i.mirror is None:
            fake.state = 0  # RBD_MIRROR_IMAGE_DISABLED
        fake.newest_mirror_snapshot = taken if i.mirror == "snapshot" else None
        scene_images[image_key(i.pool, i.namespace, i.name)] = SceneImage(
            spec, built[i.pool].info, i.name, i.mirror, i.primary
        )
    return Scene(built, scene_images, missing_pool_id=999, missing_pool_name="no-such-pool")
