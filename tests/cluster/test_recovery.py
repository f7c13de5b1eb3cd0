"""Blocklist recovery (SPEC-upstream §10, qa item 11): new client and handler, no schedule lost."""

from __future__ import annotations

import json
import time

import pytest

from tests.cephcluster import Cluster
from tests.cluster.helpers import Pools, module_client_addr

pytestmark = pytest.mark.ceph_cluster

SCHEDULE = ("rbd", "mirror", "snapshot", "schedule")


def test_recovers_from_blocklisting_and_keeps_schedules(cluster: Cluster, pools: Pools) -> None:
    pool = pools.rbd("p")
    cluster.run("rbd", "create", "--size", "16M", f"{pool}/a")
    cluster.run("rbd", "mirror", "image", "enable", f"{pool}/a", "snapshot")
    cluster.run(*SCHEDULE, "add", "-p", pool, "1m")
    old_addr = module_client_addr(cluster)
    assert old_addr is not None, "rbd_snapsched registered no rados client"
    cluster.run("ceph", "osd", "blocklist", "add", old_addr)
    try:
        # The module sees its blocklisting in the next OSD map and reconnects at once, so the
        # next command either succeeds already, or (if it beat the map) fails with EAGAIN and
        # changes nothing...
        first = cluster.run(*SCHEDULE, "add", "-p", pool, "2m", check=False)
        assert first.returncode in (0, 11), first.stderr
        if first.returncode:
            assert "connection was shutdown" in first.stderr
        # ...and recovery takes well under a second; retry for at most 60 s (upstream: 240 s).
        deadline = time.monotonic() + 60
        while cluster.run(*SCHEDULE, "add", "-p", pool, "2m", check=False).returncode:
            assert time.monotonic() < deadline, "no recovery within 60 s"
            time.sleep(1)
        # The new client reaches the mgr map with the next mgr beacon (a few seconds).
        while module_client_addr(cluster) in (old_addr, None):
            assert time.monotonic() < deadline + 10, "the blocklisted client is still registered"
            time.sleep(0.5)
        listed = cluster.run(*SCHEDULE, "ls", "-p", pool).stdout.strip()
        assert listed == "every 1m, every 2m"
        status = json.loads(cluster.run(*SCHEDULE, "status", "-p", pool, "--format", "json").stdout)
        assert [s["image"] for s in status] == [f"{pool}/a"]
        cluster.run(*SCHEDULE, "rm", "-p", pool, "2m")
        cluster.run(*SCHEDULE, "rm", "-p", pool, "1m")
        assert cluster.run(*SCHEDULE, "ls", "-p", pool, check=False).returncode == 2
    finally:
        cluster.run("ceph", "osd", "blocklist", "rm", old_addr, check=False)
