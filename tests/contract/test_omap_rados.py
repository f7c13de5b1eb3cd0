from __future__ import annotations

import pytest
import rados

from rbd_snapsched.cluster import RadosOmap
from rbd_snapsched.store import SCHEDULE_OID
from tests.cephcluster import Cluster
from tests.contract.omap import check_omap_backend

pytestmark = pytest.mark.ceph_cluster


def test_rados_omap_keeps_the_contract(cluster: Cluster, rados_client: rados.Rados) -> None:
    cluster.create_rbd_pool("contract_omap", mirror_mode="disabled")
    pool_id = rados_client.pool_lookup("contract_omap")
    assert pool_id is not None
    check_omap_backend(RadosOmap(rados_client, SCHEDULE_OID), pool_id, 9999)
    # The records live in the pool's default namespace, in our object, not rbd_support's.
    listed = cluster.run("rados", "-p", "contract_omap", "ls").stdout.split()
    assert SCHEDULE_OID in listed and "rbd_mirror_snapshot_schedule" not in listed
