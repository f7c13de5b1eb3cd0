"""The contract every ``levels.Resolver`` keeps: what level validation and pruning rely on."""

from __future__ import annotations

from rbd_snapsched.levels import ImageInfo, Resolver
from tests.contract.world import Scene


def check_resolver(resolver: Resolver, scene: Scene) -> None:
    for pool in scene.pools.values():
        info = pool.info
        # Found by name and by id, with the rbd application reported as it is.
        assert resolver.pool_by_name(info.name) == info
        assert resolver.pool_by_id(info.id) == info
        if not info.is_rbd:
            continue
        # The named namespaces only ('' is implied), and each one's mirror mode.
        assert set(resolver.namespaces(info.id)) == set(pool.namespaces)
        assert resolver.namespace_in_image_mode(info.id, "") is True
        for namespace, image_mode in pool.namespaces.items():
            assert resolver.namespace_in_image_mode(info.id, namespace) is image_mode
    # Missing pools are None, never an error: a stored level of a deleted pool gets pruned.
    if scene.missing_pool_name is not None:
        assert resolver.pool_by_name(scene.missing_pool_name) is None
    if scene.missing_pool_id is not None:
        assert resolver.pool_by_id(scene.missing_pool_id) is None

    for image in scene.images.values():
        spec = image.spec
        # Snapshot-mirrored means mode snapshot and enabled; primary or not does not matter.
        expected = ImageInfo(spec.image_id, image.name, image.mirror == "snapshot")
        assert resolver.image_by_name(spec.pool_id, spec.namespace, image.name) == expected
        assert resolver.image_by_id(spec.pool_id, spec.namespace, spec.image_id) == expected
    # Missing images are None, in the default namespace and in each named one.
    for pool in scene.pools.values():
        if not pool.info.is_rbd:
            continue
        for namespace in ("", *pool.namespaces):
            assert resolver.image_by_name(pool.info.id, namespace, "no-such-image") is None
            if scene.missing_image_id is not None:
                missing = scene.missing_image_id
                assert resolver.image_by_id(pool.info.id, namespace, missing) is None
