"""An in-memory cluster for unit tests of the handler, store and levels.

``FakeCluster`` implements the production protocols: ``levels.Resolver``, ``ports.ClusterIO``
and, through ``FakeOmap``/``FakeOption``, ``store.OmapBackend``/``store.OptionBackend``.
``tests/contract/`` runs the same checks against these and the real cluster.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from rbd_snapsched.levels import ImageInfo, ImageSpec, LevelSpec, PoolInfo
from rbd_snapsched.requests import (
    MIRROR_IMAGE_ENABLED,
    MIRROR_IMAGE_MODE_SNAPSHOT,
    Outcome,
    State,
)
from rbd_snapsched.store import PoolGone
from tests.fakes import JUST_ENABLED, FakeImage, FakeRbd, run_request

JOURNAL = 0


@dataclass
class FakeNamespace:
    image_mode: bool = True
    images: dict[str, str] = field(default_factory=dict)  # image id -> name


@dataclass
class FakePool:
    id: int
    name: str
    is_rbd: bool = True
    tx_peer: bool = True
    namespaces: dict[str, FakeNamespace] = field(default_factory=lambda: {"": FakeNamespace()})
    objects: dict[str, dict[str, bytes]] = field(default_factory=dict)  # oid -> omap


class FakeCluster:
    """Pools, namespaces and images; each image's mirror state lives in ``rbd`` (FakeRbd)."""

    def __init__(self) -> None:
        self.pools: dict[int, FakePool] = {}
        self.rbd = FakeRbd()
        self.failing_pools: set[int] = set()  # discover() and omap reads fail for these
        self.seeded: list[ImageSpec] = []  # images whose newest mirror snapshot was read
        self._next_pool = 1
        self._next_image = 0

    # -- building -----------------------------------------------------------------------

    def add_pool(self, name: str, *, is_rbd: bool = True) -> FakePool:
        pool = FakePool(self._next_pool, name, is_rbd)
        self.pools[pool.id] = pool
        self._next_pool += 1
        return pool

    def add_namespace(self, pool: FakePool, name: str, *, image_mode: bool = True) -> None:
        pool.namespaces[name] = FakeNamespace(image_mode)

    def add_image(
        self,
        pool: FakePool,
        name: str,
        namespace: str = "",
        *,
        mode: int = MIRROR_IMAGE_MODE_SNAPSHOT,
        primary: bool = True,
    ) -> ImageSpec:
        self._next_image += 1
        image_id = f"{self._next_image:012x}"
        pool.namespaces[namespace].images[image_id] = name
        spec = ImageSpec(pool.id, namespace, image_id)
        self.rbd.add(spec, FakeImage(mode=mode, primary=primary))
        return spec

    def remove_image(self, image: ImageSpec) -> None:
        del self.pools[image.pool_id].namespaces[image.namespace].images[image.image_id]
        del self.rbd.images[image]

    def remove_pool(self, pool: FakePool) -> None:
        del self.pools[pool.id]
        for image in [i for i in self.rbd.images if i.pool_id == pool.id]:
            del self.rbd.images[image]

    def image(self, image: ImageSpec) -> FakeImage:
        return self.rbd.images[image]

    # -- levels.Resolver ------------------------------------------------------------------

    def _info(self, pool: FakePool) -> PoolInfo:
        return PoolInfo(pool.id, pool.name, pool.is_rbd)

    def pool_by_name(self, name: str) -> PoolInfo | None:
        return next((self._info(p) for p in self.pools.values() if p.name == name), None)

    def pool_by_id(self, pool_id: int) -> PoolInfo | None:
        pool = self.pools.get(pool_id)
        return None if pool is None else self._info(pool)

    def namespaces(self, pool_id: int) -> Collection[str]:
        return {ns for ns in self.pools[pool_id].namespaces if ns}

    def namespace_in_image_mode(self, pool_id: int, namespace: str) -> bool:
        return self.pools[pool_id].namespaces[namespace].image_mode

    def _image_info(self, spec: ImageSpec, name: str) -> ImageInfo:
        fake = self.rbd.images[spec]
        mirrored = fake.mode == MIRROR_IMAGE_MODE_SNAPSHOT and fake.state == MIRROR_IMAGE_ENABLED
        return ImageInfo(spec.image_id, name, mirrored)

    def image_by_name(self, pool_id: int, namespace: str, name: str) -> ImageInfo | None:
        images = self.pools[pool_id].namespaces[namespace].images
        image_id = next((i for i, n in images.items() if n == name), None)
        if image_id is None:
            return None
        return self._image_info(ImageSpec(pool_id, namespace, image_id), name)

    def image_by_id(self, pool_id: int, namespace: str, image_id: str) -> ImageInfo | None:
        name = self.pools[pool_id].namespaces[namespace].images.get(image_id)
        if name is None:
            return None
        return self._image_info(ImageSpec(pool_id, namespace, image_id), name)

    # -- ports.ClusterIO ----------------------------------------------------------------

    def rbd_pools(self) -> list[PoolInfo]:
        return [self._info(p) for p in self.pools.values() if p.is_rbd]

    def discover(
        self, pool: PoolInfo, wanted: Callable[[LevelSpec], bool]
    ) -> dict[ImageSpec, str] | None:
        if pool.id in self.failing_pools:
            return None
        fake_pool = self.pools.get(pool.id)
        if fake_pool is None:
            return {}
        found: dict[ImageSpec, str] = {}
        for namespace, ns in fake_pool.namespaces.items():
            if not wanted(LevelSpec.for_pool(pool, namespace)):
                continue
            for image_id, name in ns.images.items():
                spec = ImageSpec(pool.id, namespace, image_id)
                fake = self.rbd.images[spec]
                if fake.mode == MIRROR_IMAGE_MODE_SNAPSHOT and fake.primary:
                    prefix = f"{pool.name}/{namespace}/" if namespace else f"{pool.name}/"
                    found[spec] = prefix + name
        return found

    def has_tx_peer(self, pool_id: int) -> bool:
        return self.pools[pool_id].tx_peer

    def newest_mirror_snapshot(self, image: ImageSpec) -> datetime | None:
        self.seeded.append(image)
        fake = self.rbd.images.get(image)
        if fake is None or fake.newest_mirror_snapshot == JUST_ENABLED:
            return None  # "a moment ago" has no date: as if it had none
        return fake.newest_mirror_snapshot


class FakeOmap:
    """``store.OmapBackend`` over the fake cluster's pools."""

    def __init__(self, cluster: FakeCluster, oid: str) -> None:
        self.cluster = cluster
        self.oid = oid

    def _pool(self, pool_id: int) -> FakePool:
        pool = self.cluster.pools.get(pool_id)
        if pool is None:
            raise PoolGone(f"pool {pool_id} does not exist")
        return pool

    def read(self, pool_id: int) -> dict[str, bytes]:
        if pool_id in self.cluster.failing_pools:
            raise OSError(f"cannot read pool {pool_id}")
        return dict(self._pool(pool_id).objects.get(self.oid, {}))

    def write(self, pool_id: int, key: str, value: bytes) -> None:
        self._pool(pool_id).objects.setdefault(self.oid, {})[key] = value

    def delete(self, pool_id: int, keys: Sequence[str]) -> None:
        records = self._pool(pool_id).objects.get(self.oid)
        if records is not None:
            for key in keys:
                records.pop(key, None)


class FakeOption:
    """``store.OptionBackend``: one module option's value ("" reads as None, as the real one)."""

    def __init__(self, value: str | None = None) -> None:
        self.value = value

    def get(self) -> str | None:
        return self.value or None

    def set(self, value: str | None) -> None:
        self.value = value


class FakeClock:
    """``clock.Clock`` whose time moves only by ``advance``/``set``; ``wait`` never blocks."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2025, 12, 10, 17, 55, 21, tzinfo=timezone.utc)
        self.waits: list[datetime | None] = []

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, when: datetime) -> None:
        self._now = when

    def wait(self, cond: threading.Condition, deadline: datetime | None) -> None:
        self.waits.append(deadline)


@dataclass
class Started:
    image: ImageSpec
    name: str
    done: Callable[[ImageSpec, Outcome], None]
    recent_since: datetime | None = None


class FakeDriver:
    """``ports.SnapshotDriver`` running the real request machine against ``FakeRbd``.

    With ``hold=True`` requests wait in ``held`` until ``release()``, to test the cap; a held
    request is in step ``held_step`` (``in_flight``), as if librbd were stuck there.
    ``check_peer`` as ``RbdDriver``'s.
    """

    def __init__(
        self,
        cluster: FakeCluster,
        *,
        hold: bool = False,
        held_step: State = State.CREATING,
        check_peer: bool = False,
    ) -> None:
        self.cluster = cluster
        self.hold = hold
        self.held_step = held_step
        self.check_peer = check_peer
        self.held: list[Started] = []
        self.started: list[ImageSpec] = []
        self.outcomes: list[tuple[ImageSpec, Outcome]] = []

    def start(
        self,
        image: ImageSpec,
        name: str,
        done: Callable[[ImageSpec, Outcome], None],
        recent_since: datetime | None = None,
    ) -> None:
        self.started.append(image)
        run = Started(image, name, done, recent_since)
        if self.hold:
            self.held.append(run)
        else:
            self._complete(run)

    def in_flight(self, image: ImageSpec) -> State | None:
        return self.held_step if any(run.image == image for run in self.held) else None

    def release_image(self, image: ImageSpec) -> None:
        """Complete the held request of ``image`` (its late completion, say)."""
        (run,) = [run for run in self.held if run.image == image]
        self.held.remove(run)
        self._complete(run)

    def release(self, count: int | None = None) -> None:
        runs, self.held = self.held[:count], self.held[len(self.held[:count]) :]
        for run in runs:
            self._complete(run)

    def _complete(self, run: Started) -> None:
        outcome = run_request(
            self.cluster.rbd, run.image, run.recent_since, check_peer=self.check_peer
        ).outcome
        self.outcomes.append((run.image, outcome))
        run.done(run.image, outcome)
