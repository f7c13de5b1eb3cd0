"""pytest wiring: the ``ceph_cluster`` marker and the session's throwaway cluster.

Tests marked ``ceph_cluster`` take the ``cluster`` fixture: one real mon/mgr/OSD for the whole
session, booted on first use by ``tests/cephcluster.py``. If it cannot boot, every such test
errors with the reason and the daemon log tails; none is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import rados

from tests.cephcluster import Cluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    c = Cluster.boot()
    try:
        yield c
    finally:
        c.teardown()


@pytest.fixture(scope="session")
def rados_client(cluster: Cluster) -> Iterator[rados.Rados]:
    """A librados client of the session cluster (client.admin)."""
    client = rados.Rados(conffile=str(cluster.conf))
    client.connect()
    try:
        yield client
    finally:
        client.shutdown()
