from __future__ import annotations

from rbd_snapsched.store import SCHEDULE_OID
from tests.contract.omap import check_omap_backend
from tests.fake_cluster import FakeCluster, FakeOmap


def test_fake_omap_keeps_the_contract() -> None:
    cluster = FakeCluster()
    pool = cluster.add_pool("rbd")
    check_omap_backend(FakeOmap(cluster, SCHEDULE_OID), pool.id, 999)
