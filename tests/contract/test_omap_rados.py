from __future__ import annotations

import pytest

from rbd_snapsched.store import SCHEDULE_OID
from tests.cephcluster import Cluster
from tests.contract.omap import check_omap_backend
from tests.runtime_rpc import Remote, RemoteOmap

pytestmark = pytest.mark.ceph_cluster


def test_rados_omap_keeps_the_contract(cluster: Cluster, remote_client: Remote) -> None:
    """Our RadosOmap, run by the release's own python3 and librados (see runtime_rpc)."""
    cluster.create_rbd_pool("contract_omap", mirror_mode="disabled")
    pool_id = remote_client.call("pool_lookup", "contract_omap")
    assert isinstance(pool_id, int)
    with Remote(cluster, "rbd_snapsched.cluster:RadosOmap", [SCHEDULE_OID]) as omap:
        check_omap_backend(RemoteOmap(omap), pool_id, 9999)
    # The records live in the pool's default namespace, in our object, not rbd_support's.
    listed = cluster.run("rados", "-p", "contract_omap", "ls").stdout.split()
    assert SCHEDULE_OID in listed and "rbd_mirror_snapshot_schedule" not in listed
