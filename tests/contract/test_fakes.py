"""The unit tests' fakes (``tests/fake_cluster.py``) keep every contract."""

from __future__ import annotations

from datetime import datetime, timezone

from rbd_snapsched.levels import ImageSpec
from rbd_snapsched.requests import Outcome
from tests.contract.cluster_io import check_cluster_io
from tests.contract.driver import check_peer_pacing, check_snapshot_driver, finish
from tests.contract.option import check_option_backend
from tests.contract.resolver import check_resolver
from tests.contract.world import build_fake
from tests.fake_cluster import FakeCluster, FakeDriver, FakeOption


def test_fake_resolver_keeps_the_contract() -> None:
    cluster = FakeCluster()
    check_resolver(cluster, build_fake(cluster))


def test_fake_cluster_io_keeps_the_contract() -> None:
    cluster = FakeCluster()
    check_cluster_io(cluster, build_fake(cluster))


def test_fake_option_keeps_the_contract() -> None:
    check_option_backend(FakeOption())


def test_fake_driver_keeps_the_contract() -> None:
    cluster = FakeCluster()
    scene = build_fake(cluster)
    cluster.rbd.now = lambda: datetime.now(timezone.utc)
    driver = FakeDriver(cluster)

    def run(image: ImageSpec, since: datetime | None) -> Outcome:
        return finish(driver, image, since)

    check_snapshot_driver(run, scene, cluster.newest_mirror_snapshot)
    paced_driver = FakeDriver(cluster, check_peer=True)
    check_peer_pacing(run, lambda image: finish(paced_driver, image), scene)
