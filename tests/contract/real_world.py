"""The contract layout (``world.POOLS``/``IMAGES``) built on a real cluster through its CLIs."""

from __future__ import annotations

import json
from functools import partial

from rbd_snapsched.levels import ImageSpec, PoolInfo
from tests.cephcluster import Cluster
from tests.cluster.helpers import in_parallel, make_image, make_namespace
from tests.contract.world import (
    IMAGES,
    POOLS,
    ImageDef,
    PoolDef,
    Scene,
    SceneImage,
    ScenePool,
    image_key,
)
from tests.runtime_rpc import Remote

MISSING_POOL_ID = 9999


def _make_pool(cluster: Cluster, name: str, p: PoolDef) -> None:
    if p.rbd and p.tx_peer:
        cluster.create_rbd_pool(name)
        return
    cluster.run("ceph", "osd", "pool", "create", name, "8")
    if p.rbd:
        cluster.run("rbd", "pool", "init", name)
        cluster.run("rbd", "mirror", "pool", "enable", name, "image")


def _make_image(cluster: Cluster, spec: str, i: ImageDef) -> None:
    make_image(cluster, spec, i.mirror)
    if not i.primary:
        cluster.run("rbd", "mirror", "image", "demote", spec)


def _spec(pool: str, namespace: str, name: str) -> str:
    return f"{pool}/{namespace}/{name}" if namespace else f"{pool}/{name}"


def build_real(
    cluster: Cluster,
    client: Remote,
    prefix: str,
    pools: tuple[PoolDef, ...] = POOLS,
    images: tuple[ImageDef, ...] = IMAGES,
) -> Scene:
    """Build the layout in pools named ``prefix + key`` (delete them with ``delete_pools``);
    each round's CLI calls run side by side."""
    names = {p.key: prefix + p.key for p in pools}
    in_parallel(*(partial(_make_pool, cluster, names[p.key], p) for p in pools))
    in_parallel(
        *(
            partial(make_namespace, cluster, names[p.key], ns, image_mode=image_mode)
            for p in pools
            for ns, image_mode in p.namespaces.items()
        )
    )
    in_parallel(
        *(
            partial(_make_image, cluster, _spec(names[i.pool], i.namespace, i.name), i)
            for i in images
        )
    )
    built: dict[str, ScenePool] = {}
    for p in pools:
        pool_id = client.call("pool_lookup", names[p.key])
        assert isinstance(pool_id, int)
        built[p.key] = ScenePool(PoolInfo(pool_id, names[p.key], p.rbd), p.tx_peer, p.namespaces)
    scene_images: dict[str, SceneImage] = {}
    for i in images:
        info = json.loads(
            cluster.run(
                "rbd", "info", "--format", "json", _spec(names[i.pool], i.namespace, i.name)
            ).stdout
        )
        pool = built[i.pool].info
        spec = ImageSpec(pool.id, i.namespace, str(info["id"]))
        scene_images[image_key(i.pool, i.namespace, i.name)] = SceneImage(
            spec, pool, i.name, i.mirror, i.primary
        )
    return Scene(
        built,
        scene_images,
        missing_pool_id=MISSING_POOL_ID,
        missing_pool_name=prefix + "no_such_pool",
    )


def delete_pools(cluster: Cluster, scene: Scene) -> None:
    in_parallel(
        *(
            partial(
                cluster.run,
                "ceph",
                "osd",
                "pool",
                "rm",
                p.info.name,
                p.info.name,
                "--yes-i-really-really-mean-it",
                check=False,
            )
            for p in scene.pools.values()
        )
    )
