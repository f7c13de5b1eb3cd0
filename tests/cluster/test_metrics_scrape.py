"""The metrics endpoint on each release: scraped by a real Prometheus server, turned off and on
by its port option, a busy port retried by the module's own thread, and a standby answering 503
naming the active mgr.

Waits for one real minute slot (the first created snapshot); the standby test boots its own
two-mgr cluster (about 20 s) and fails it over once.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.cephcluster import Cluster
from tests.cluster.helpers import (
    SLOT,
    MgrLog,
    Pools,
    fetch,
    make_images,
    raw_status,
    sched,
    wait_until,
)
from tests.prometheus import PrometheusServer

pytestmark = pytest.mark.ceph_cluster

OPTION = "mgr/rbd_snapsched/"
rows = raw_status  # status rows through the mgr command, with our extra keys


def test_prometheus_scrapes_the_module(cluster: Cluster, pools: Pools) -> None:
    pool = pools.rbd("p")
    spec = f"{pool}/img"
    make_images(cluster, spec)
    sched(cluster, "add", "-p", pool, "1m")
    url = cluster.metrics_url()
    services = cluster.ceph_json("mgr", "services")
    assert services["rbd_snapsched"] == url.removesuffix("metrics")
    target = url.removeprefix("http://").removesuffix("/metrics")
    with PrometheusServer([target]) as prom:
        prom.wait_for(f'rbd_snapsched_pool_images{{pool="{pool}"}} == 1', timeout=30)
        created = f'rbd_snapsched_snapshots_total{{pool="{pool}",result="created"}}'
        prom.wait_for(created, timeout=SLOT + 10)
        (success,) = prom.wait_for(
            f'rbd_snapsched_image_last_success_timestamp_seconds{{image="{spec}"}}'
        )
        assert abs(float(success["value"][1]) - time.time()) < SLOT + 10
        (heartbeat,) = prom.query("time() - rbd_snapsched_scheduler_heartbeat_timestamp_seconds")
        assert float(heartbeat["value"][1]) < 65
        assert prom.query("rbd_snapsched_snapshot_request_duration_seconds_count")
        for family in ("requests_in_flight", "requests_waiting", "queue_length"):
            assert prom.query(f"rbd_snapsched_{family}"), family
        assert prom.query("rbd_snapsched_refresh_duration_seconds")

    # Port 0 turns the endpoint off and withdraws its URL; the old port turns it on again.
    port = target.rpartition(":")[2]
    option = OPTION + "metrics_server_port"
    cluster.run("ceph", "config", "set", "mgr.x", option, "0")
    try:
        wait_until(lambda: fetch(url)[0] == 0, 30, "the endpoint to close")
        wait_until(
            lambda: "rbd_snapsched" not in cluster.ceph_json("mgr", "services"), 30, "no URL"
        )
    finally:
        cluster.run("ceph", "config", "set", "mgr.x", option, port)
    wait_until(lambda: fetch(url)[0] == 200, 30, "the endpoint back")
    assert rows(cluster, f"{pool}/"), "the scheduler kept running"

    # A port another process holds: the bind fails, is logged once, and is retried by the
    # module's own thread (as after a failover, where this mgr's standby instance may still
    # hold it), so the endpoint comes up once the port frees, with no option change.
    log = MgrLog(cluster)
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    held = str(holder.getsockname()[1])
    refused = f"cannot listen on 127.0.0.1:{held}"
    try:
        cluster.run("ceph", "config", "set", "mgr.x", option, held)
        wait_until(
            lambda: any(refused in line for line in log.new_lines()),
            30,
            "the failed bind to be logged",
        )
    finally:
        holder.close()
    moved = url.replace(f":{port}/", f":{held}/")
    try:
        # Bounded: the module's thread looks every 5 s.
        wait_until(lambda: fetch(moved)[0] == 200, 30, "the endpoint on the freed port")
        failed = [line for line in log.new_lines() if refused in line]
        assert len(failed) == 1, failed
    finally:
        cluster.run("ceph", "config", "set", "mgr.x", option, port)
    wait_until(lambda: fetch(url)[0] == 200, 30, "the endpoint back on its port")


def test_a_standby_answers_503_naming_the_active(release: str) -> None:
    with Cluster.boot(release=release, standby_mgrs=1) as cluster:
        active = cluster.ceph_json("mgr", "dump")["active_name"]
        (standby,) = [m for m in cluster.mgr_ids if m != active]
        assert fetch(cluster.metrics_url(active))[0] == 200
        code, body = fetch(cluster.metrics_url(standby))
        assert code == 503 and f"mgr {standby} is a standby" in body
        assert cluster.metrics_url(active).removesuffix("metrics") in body

        cluster.run("ceph", "mgr", "fail", active)
        wait_until(
            lambda: fetch(cluster.metrics_url(standby))[0] == 200, 120, "the new active's metrics"
        )
        wait_until(
            lambda: fetch(cluster.metrics_url(active))[0] == 503, 120, "the old active as standby"
        )
