"""Per-image results on each release: status fields the rbd CLI still parses, the report
table, last success seeded after a mgr restart, LATE/FAILING health raised and cleared on
time (and muted). The metrics endpoint is tests/cluster/test_metrics_scrape.py.

Waits for real minute slots, bounded: the status test one slot (at most 75 s), the health
test about three (at most 4 minutes).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from tests.cephcluster import Cluster
from tests.cluster.helpers import (
    PROMPT,
    SLOT,
    Pools,
    checks,
    config_restore,
    last_snap_id,
    make_images,
    new_primary_snapshots,
    raw,
    raw_status,
    sched,
    snap_time,
    status_json,
    wait_until,
)

pytestmark = pytest.mark.ceph_cluster

OPTION = "mgr/rbd_snapsched/"
ISO = "%Y-%m-%dT%H:%M:%SZ"
rows = raw_status  # status rows through the mgr command, with our extra keys


def parse(when: str) -> datetime:
    return datetime.strptime(when, ISO).replace(tzinfo=timezone.utc)


@pytest.fixture
def options_restored(cluster: Cluster) -> Iterator[None]:
    try:
        yield
    finally:
        config_restore(cluster, OPTION + "late_factor", "2.0")
        config_restore(cluster, OPTION + "refresh_interval", "60")


def test_status_results_report_and_seed_after_restart(cluster: Cluster, pools: Pools) -> None:
    pool = pools.rbd("p")
    spec = f"{pool}/img"
    make_images(cluster, spec)
    sched(cluster, "add", "-p", pool, "1m")
    wait_until(lambda: bool(rows(cluster, f"{pool}/")), PROMPT, f"{pool} in status")
    before = last_snap_id(cluster, spec)
    wait_until(lambda: bool(new_primary_snapshots(cluster, spec, before)), SLOT, "a snapshot")
    wait_until(lambda: rows(cluster, f"{pool}/")[0]["last_result"] == "created", 10, "its result")
    (row,) = rows(cluster, f"{pool}/")
    assert row["image"] == spec and row["late"] is False and row["missed_slots"] == 0
    slot = parse(row["last_attempt_slot"])
    assert slot.second == 0 and parse(row["last_success"]) >= slot
    assert parse(row["next_run"]) == parse(row["schedule_time"].replace(" ", "T") + "Z")
    assert row["last_error"] is None and row["failures_in_a_row"] == 0

    # Every release's rbd CLI still parses it, in each format.
    (cli,) = status_json(cluster, "-p", pool)
    assert cli["image"] == spec
    plain = sched(cluster, "status", "-p", pool, "--format", "plain").stdout
    assert spec in plain
    assert sched(cluster, "status", "-p", pool, "--format", "xml").returncode == 0

    table = raw(cluster, "report", f"{pool}/").stdout.splitlines()
    assert table[0].split()[:1] == ["IMAGE"] and table[1].split()[0] == spec
    assert table[1].rstrip().endswith("created")

    # After a restart the last success comes back from the image's newest primary mirror
    # snapshot, to the second. An hourly schedule from now on: no slot before the check (the
    # restart's catch-up finds that snapshot recent and skips).
    sched(cluster, "add", "-p", pool, "1h")
    sched(cluster, "rm", "-p", pool, "1m")
    newest = snap_time(new_primary_snapshots(cluster, spec, before)[-1])
    cluster.restart_mgr()
    wait_until(
        lambda: (rows(cluster, f"{pool}/") or [{}])[0].get("last_success") is not None,
        30,
        "the last success seeded after the restart",
    )
    (row,) = rows(cluster, f"{pool}/")
    assert row["last_result"] in ("none", "skipped: recent_snapshot"), row
    assert abs((parse(row["last_success"]) - newest).total_seconds()) <= 1, (row, newest)
    assert row["late"] is False and row["missed_slots"] == 0


def test_late_and_failing_health_raise_mute_and_clear(
    cluster: Cluster, pools: Pools, options_restored: None
) -> None:
    # A refresh would see the peer go and skip the image (RBD_SNAPSCHED_NO_TX_PEER) rather
    # than let librbd refuse it: push the next full refresh an hour away; the pool's creation
    # triggers the refresh that sets that hour.
    cluster.run("ceph", "config", "set", "mgr", OPTION + "refresh_interval", "3600")
    cluster.run("ceph", "config", "set", "mgr", OPTION + "late_factor", "1.5")
    pool = pools.rbd("p")
    spec = f"{pool}/img"
    make_images(cluster, spec)  # enabling mirroring takes a primary mirror snapshot: T0
    sched(cluster, "add", "-p", pool, "1m")
    wait_until(lambda: bool(rows(cluster, f"{pool}/")), PROMPT, f"{pool} in status")
    (peer,) = json.loads(
        cluster.run("rbd", "mirror", "pool", "info", pool, "--format", "json").stdout
    )["peers"]
    cluster.run("rbd", "mirror", "pool", "peer", "remove", pool, peer["uuid"])

    # The next slot's request fails at librbd (no tx peer: EINVAL)...
    wait_until(lambda: "RBD_SNAPSCHED_FAILING" in checks(cluster), SLOT + 5, "FAILING")
    failing = checks(cluster)["RBD_SNAPSCHED_FAILING"]
    (line,) = [d["message"] for d in failing["detail"]]
    assert (
        line.startswith(f"image {spec}: 1 attempt(s) failed in a row") and "create_snapshot" in line
    )
    (row,) = rows(cluster, f"{pool}/")
    assert row["last_result"] == "failed" and row["last_errno"] == 22
    assert row["last_failed_step"] == "create_snapshot"
    # ...and 1.5 minutes after its last mirror snapshot it is late: raised on time, not when
    # a request ends.
    wait_until(lambda: "RBD_SNAPSCHED_LATE" in checks(cluster), 2 * SLOT, "LATE")
    late = checks(cluster)["RBD_SNAPSCHED_LATE"]
    assert late["summary"]["message"].startswith("1 image(s) without a mirror snapshot for more")
    assert late["detail"][0]["message"].startswith(f"image {spec}: no mirror snapshot for ")

    cluster.run("ceph", "health", "mute", "RBD_SNAPSCHED_LATE")
    try:
        wait_until(lambda: checks(cluster)["RBD_SNAPSCHED_LATE"].get("muted") is True, 20, "mute")
        assert checks(cluster)["RBD_SNAPSCHED_FAILING"].get("muted", False) is False
    finally:
        cluster.run("ceph", "health", "unmute", "RBD_SNAPSCHED_LATE")

    cluster.run("rbd", "mirror", "pool", "peer", "add", pool, "client.admin@remote")
    wait_until(
        lambda: not {"RBD_SNAPSCHED_LATE", "RBD_SNAPSCHED_FAILING"} & set(checks(cluster)),
        SLOT + 5,
        "LATE and FAILING to clear at the next slot",
    )
    (row,) = rows(cluster, f"{pool}/")
    assert row["last_result"] == "created" and row["late"] is False
