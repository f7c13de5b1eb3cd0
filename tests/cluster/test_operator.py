"""Operator controls through the ``ceph`` CLI on each release: pause/resume across a mgr
restart, snapshot-now, explain, catch-up, and their errnos and caps.

Waits for real minute slots, bounded: the pause test about three slots (at most 4 minutes),
the catch-up test at most 3 minutes (its image must first be older than a 2m interval).
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

import pytest

from tests.cephcluster import Cluster
from tests.cluster.helpers import (
    PROMPT,
    Pools,
    checks,
    last_snap_id,
    make_images,
    mirror_snapshots,
    new_primary_snapshots,
    raw,
    raw_status,
    sched,
    snap_time,
    wait_until,
)
from tests.slots import sleep_past_next_minute

pytestmark = pytest.mark.ceph_cluster

ENOENT, EACCES, EINVAL = 2, 13, 22


def test_pause_holds_across_a_mgr_restart_until_resume(cluster: Cluster, pools: Pools) -> None:
    pool = pools.rbd("p")
    spec = f"{pool}/img"
    make_images(cluster, spec)
    sched(cluster, "add", "-p", pool, "1m")
    wait_until(lambda: bool(raw_status(cluster, f"{pool}/")), PROMPT, f"{pool} in status")

    out = raw(cluster, "pause", f"{pool}/").stdout.strip()
    assert out == f"paused {pool}/: 1 scheduled image(s) under it"
    (row,) = raw_status(cluster, f"{pool}/")
    assert row["paused_by"] == f"{pool}/"
    assert sched(cluster, "status", "-p", pool).returncode == 0  # the rbd CLI still parses it
    wait_until(lambda: "RBD_SNAPSCHED_PAUSED" in checks(cluster), 20, "the pause warning")
    assert f"level {pool}/ paused since" in json.dumps(checks(cluster)["RBD_SNAPSCHED_PAUSED"])

    cluster.restart_mgr()  # the pause is stored: the new mgr keeps it
    (level,) = [v for v in json.loads(raw(cluster, "list", f"{pool}/").stdout).values()]
    assert "paused_since" in level
    wait_until(lambda: "RBD_SNAPSCHED_PAUSED" in checks(cluster), 30, "the pause warning again")
    before = last_snap_id(cluster, spec)
    sleep_past_next_minute(8.0)
    assert new_primary_snapshots(cluster, spec, before) == [], "a paused image got a snapshot"

    assert raw(cluster, "resume", f"{pool}/").stdout.startswith(f"resumed {pool}/")
    wait_until(lambda: "RBD_SNAPSCHED_PAUSED" not in checks(cluster), 20, "the warning to clear")
    sleep_past_next_minute(8.0)
    assert len(new_primary_snapshots(cluster, spec, before)) == 1
    again = raw(cluster, "resume", f"{pool}/", check=False)
    assert again.returncode == ENOENT and f"level {pool}/ is not paused" in again.stderr
    missing = raw(cluster, "pause", f"{pool}nope/", check=False)  # upstream's level errors
    assert missing.returncode == EINVAL and f"pool {pool}nope does not exist" in missing.stderr


def test_snapshot_now_and_explain(cluster: Cluster, pools: Pools) -> None:
    pool, other = pools.create("p", "q")
    specs = (f"{pool}/a", f"{pool}/b")
    make_images(cluster, *specs, f"{other}/c")
    sched(cluster, "add", "-p", pool, "1d", "03:00")
    listed = raw(cluster, "list", f"{pool}/").stdout
    before = {spec: last_snap_id(cluster, spec) for spec in specs}

    out = raw(cluster, "snapshot-now", f"{pool}/").stdout
    assert out.startswith(f"snapshot requested for 2 image(s) under {pool}/"), out

    def each_has_one() -> bool:
        return all(len(new_primary_snapshots(cluster, s, before[s])) == 1 for s in specs)

    wait_until(each_has_one, PROMPT, "one new mirror snapshot of each image")
    assert raw(cluster, "list", f"{pool}/").stdout == listed  # the schedule is untouched

    explained = json.loads(raw(cluster, "explain", f"{pool}/", "3").stdout)
    assert [e["image"] for e in explained["images"]] == list(specs)
    first = explained["images"][0]
    assert first["governed_by"] == f"{pool}/" and first["paused_by"] is None
    assert first["why"] == f"{pool}/ is the most specific level with a schedule"
    assert len(first["next_runs"]) == 3 and all(
        r.endswith("T03:00:00Z") for r in first["next_runs"]
    )
    (unscheduled,) = json.loads(raw(cluster, "explain", f"{other}/c").stdout)["images"]
    assert unscheduled["governed_by"] is None and unscheduled["next_runs"] == []
    bad = raw(cluster, "explain", f"{pool}/", "0", check=False)
    assert bad.returncode == EINVAL and "count must be from 1 to 100" in bad.stderr

    # Caps: a client allowed on `pool` only is refused elsewhere and at the global level.
    keyring = cluster.root / "operator.keyring"
    cluster.run(
        "ceph", "auth", "get-or-create", "client.operator", "mon", "profile rbd",
        "osd", f"profile rbd pool={pool}",
        "mgr", f"profile rbd pool={pool}, allow module rbd_snapsched with pool={pool} rw",
        "-o", str(keyring),
    )  # fmt: skip
    try:

        def as_operator(*args: str) -> int:
            who = ("--id", "operator", "--keyring", str(keyring))
            return raw(cluster, *args, *who, check=False).returncode

        assert as_operator("explain", f"{pool}/") == 0
        for verb in ("pause", "snapshot-now", "explain"):
            assert as_operator(verb, f"{other}/") == EACCES, verb
        assert as_operator("pause", "") == EACCES
    finally:
        cluster.run("ceph", "auth", "rm", "client.operator")


def test_sync_now_for_a_failover_runbook(
    cluster: Cluster, pools: Pools, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a DR runbook runs before demoting a level: ``snapshot-now --format json`` names
    the images asked for and those skipped, with ``requested_at``; ``snapshot-now-status``
    turns complete once each has a primary mirror snapshot taken since, which the images'
    own snapshot lists confirm. Bounded: PROMPT seconds for the snapshots."""
    monkeypatch.setenv("TZ", "UTC")  # `rbd snap ls` prints timestamps in local time
    pool = pools.rbd("p")
    specs = [f"{pool}/a", f"{pool}/b", f"{pool}/c"]
    make_images(cluster, *specs)
    asked = json.loads(raw(cluster, "snapshot-now", f"{pool}/", "--format", "json").stdout)
    assert asked["level"] == f"{pool}/" and asked["images"] == 3
    assert asked["requested"] == specs and asked["skipped"] == []
    since = datetime.strptime(asked["requested_at"], "%Y-%m-%dT%H:%M:%SZ")
    since = since.replace(tzinfo=timezone.utc)

    def status() -> dict[str, Any]:
        answer = raw(
            cluster, "snapshot-now-status", f"{pool}/", asked["requested_at"], "--format", "json"
        )
        result: dict[str, Any] = json.loads(answer.stdout)
        return result

    wait_until(lambda: status()["complete"], PROMPT, "snapshot-now-status to say complete")
    done = status()
    assert done["pending"] == [] and done["failed"] == []
    assert [entry["image"] for entry in done["done"]] == specs
    for spec in specs:  # the cluster's own word
        taken = [snap_time(snap) for snap in mirror_snapshots(cluster, spec)]
        assert max(taken) >= since, (spec, taken, since)
    text = raw(cluster, "snapshot-now-status", f"{pool}/", asked["requested_at"]).stdout
    assert text == f"3 of 3 image(s) under {pool}/ have a mirror snapshot taken since " + (
        f"{asked['requested_at']}\n"
    )
    later = raw(cluster, "snapshot-now-status", f"{pool}/", "2999-01-01T00:00:00Z", "-f", "json")
    assert json.loads(later.stdout)["pending"] == specs
    bad = raw(cluster, "snapshot-now-status", f"{pool}/", "soon", check=False)
    assert bad.returncode == EINVAL and "invalid requested_at 'soon'" in bad.stderr


def test_catch_up_snapshots_an_image_behind_its_interval_at_once(
    cluster: Cluster, pools: Pools
) -> None:
    """An image whose newest mirror snapshot is older than the interval, newly covered, gets
    one snapshot at once instead of at its next slot; a mgr restart then adds none."""
    pool = pools.rbd("p")
    spec = f"{pool}/img"
    make_images(cluster, spec)  # enabling takes its first mirror snapshot: now
    (first,) = mirror_snapshots(cluster, spec)
    # Wait until that snapshot is older than 2m, at a moment when the next 2m slot is more
    # than a minute away (else the slot itself comes first): at most about 3 minutes.
    deadline = time.monotonic() + 200
    while True:
        now = time.time()
        if now - created_at(first) > 125 and 120 - now % 120 > 70:
            break
        assert time.monotonic() < deadline
        time.sleep(1)
    sched(cluster, "add", "-p", pool, "2m")
    wait_until(
        lambda: len(new_primary_snapshots(cluster, spec, int(first["id"]))) == 1,
        20,
        "the catch-up snapshot (well before the next 2m slot)",
    )
    (taken,) = new_primary_snapshots(cluster, spec, int(first["id"]))
    assert 120 - created_at(taken) % 120 > 40, "that was the slot, not a catch-up"
    cluster.restart_mgr()
    time.sleep(10)  # the new mgr's first pass: its catch-up finds the recent snapshot
    assert len(new_primary_snapshots(cluster, spec, int(first["id"]))) == 1


def created_at(snap: dict[str, Any]) -> float:
    stamp = datetime.strptime(snap["timestamp"], "%a %b %d %H:%M:%S %Y")
    return stamp.replace(tzinfo=timezone.utc).timestamp()
