"""The benchmark's fakes (``tests/benchmarks/bench_scheduler.py``) keep the contracts, in the
world they model: one RBD pool, its images spread over a few image-mode namespaces, every image
primary snapshot-mirrored, a tx peer, and no mirror snapshot yet (a pool just enabled). What
that world lacks (other pools, demoted or journal images, snapshots to catch up from) its
``Scene`` does not list, so those parts of each check have nothing to run on.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from rbd_snapsched.levels import ImageSpec
from rbd_snapsched.requests import Outcome
from tests.benchmarks.fakes import (
    NAMESPACES,
    POOL,
    FakeClusterIO,
    FakeResolver,
    InstantDriver,
    MemoryOmap,
    MemoryOption,
    image_id,
    image_name,
)
from tests.contract.cluster_io import check_cluster_io
from tests.contract.driver import check_snapshot_driver, finish
from tests.contract.omap import check_omap_backend
from tests.contract.option import check_option_backend
from tests.contract.resolver import check_resolver
from tests.contract.world import Scene, SceneImage, ScenePool, image_key

N = 9  # images, over the four namespaces


def bench_scene(n: int = N) -> Scene:
    named = {ns: True for ns in NAMESPACES if ns}
    images: dict[str, SceneImage] = {}
    for i in range(n):
        namespace = NAMESPACES[i % len(NAMESPACES)]
        spec = ImageSpec(POOL.id, namespace, image_id(i))
        images[image_key("rbd", namespace, image_name(i))] = SceneImage(
            spec, POOL, image_name(i), "snapshot", True
        )
    return Scene(
        {"rbd": ScenePool(POOL, True, named)},
        images,
        missing_pool_id=999,
        missing_pool_name="no-such-pool",
        images_have_mirror_snapshots=False,
    )


def test_bench_resolver_keeps_the_contract() -> None:
    # Its image lookups answer None for every image: the benchmark schedules pools only.
    check_resolver(FakeResolver(), dataclasses.replace(bench_scene(), images={}))


def test_bench_cluster_io_keeps_the_contract() -> None:
    # Every pool it is asked about holds the images: it never sees another pool.
    check_cluster_io(FakeClusterIO(N), dataclasses.replace(bench_scene(), missing_pool_id=None))


def test_bench_omap_keeps_the_contract() -> None:
    check_omap_backend(MemoryOmap(), POOL.id, 999)


def test_bench_option_keeps_the_contract() -> None:
    check_option_backend(MemoryOption())


def test_bench_driver_keeps_the_contract() -> None:
    # It reports CREATED for every image: its world has no image it could skip or miss.
    driver = InstantDriver()

    def run(image: ImageSpec, since: datetime | None) -> Outcome:
        return finish(driver, image, since)

    check_snapshot_driver(run, dataclasses.replace(bench_scene(), missing_image_id=None))
