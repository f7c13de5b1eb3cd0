"""Our real Resolver, ClusterIO and SnapshotDriver keep the contracts on a real cluster, run by
the release's own python3 and librados (``tests/runtime_rpc.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from rbd_snapsched.levels import ImageSpec
from rbd_snapsched.requests import Outcome
from tests.cephcluster import Cluster
from tests.contract.cluster_io import check_cluster_io
from tests.contract.driver import check_peer_pacing, check_snapshot_driver
from tests.contract.real_world import build_real, delete_pools
from tests.contract.resolver import check_resolver
from tests.contract.world import Scene
from tests.runtime_rpc import Remote, RemoteClusterIO, RemoteDriver, RemoteResolver

pytestmark = pytest.mark.ceph_cluster


@pytest.fixture(scope="module")
def scene(cluster: Cluster, remote_client: Remote) -> Iterator[Scene]:
    built = build_real(cluster, remote_client, "contract_")
    try:
        yield built
    finally:
        delete_pools(cluster, built)


def test_rados_resolver_keeps_the_contract(cluster: Cluster, scene: Scene) -> None:
    with Remote(cluster, "rbd_snapsched.cluster:RadosResolver") as resolver:
        check_resolver(RemoteResolver(resolver), scene)


def test_rados_cluster_io_keeps_the_contract(cluster: Cluster, scene: Scene) -> None:
    with Remote(cluster, "rbd_snapsched.cluster:RadosClusterIO") as io:
        check_cluster_io(RemoteClusterIO(io), scene, wanted_seen=False)


def test_rbd_driver_keeps_the_contract(cluster: Cluster, scene: Scene) -> None:
    with (
        Remote(cluster, "driver") as remote,
        Remote(cluster, "rbd_snapsched.cluster:RadosClusterIO") as io,
    ):
        driver = RemoteDriver(remote)

        def run(image: ImageSpec, since: datetime | None, check_peer: bool = False) -> Outcome:
            got = driver.run(image, since, check_peer=check_peer)
            assert got.done_calls == 1 and got.image == image, got
            assert got.open_handles == 0, got  # the ioctx is closed with the last request
            assert got.open_images == 0, got  # every image opened was closed
            assert got.in_flight is None, got  # no step left once `done` was called
            return got.outcome

        check_snapshot_driver(run, scene, RemoteClusterIO(io).newest_mirror_snapshot)
        check_peer_pacing(run, lambda image: run(image, None, check_peer=True), scene)
