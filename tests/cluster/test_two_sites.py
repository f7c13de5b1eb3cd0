"""Snapshot mirroring end to end: schedules set through rbd_snapsched drive rbd-mirror between
two real sites (``tests/twosite.py``), then fail over to site-b and replicate back.

Each test waits for one minute slot (at most 60 s) and then for rbd-mirror's status report (up
to 30 s more: it writes image status in 30 s batches). The fixture boots both sites (about 30 s);
the whole file took 111-148 s in five runs here before the pacing test, about 360 s with it.

What "the same content" means: the primary's mirror snapshot of the slot, read through librbd by
snapshot id (``rbd export`` cannot name a mirror snapshot, and Pacific's has no ``--snap-id``),
against ``rbd export`` of the replica image once ``rbd mirror image status`` reports the slot's
snapshot synced. (A replica's own non-primary snapshot holds the replica as it was *before* that
sync, so it is not what to compare.) Each test prints the achieved RPO per image: seconds from
the slot to the replica holding the slot's data (shown even when pytest captures output).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cephcluster import Cluster
from tests.cluster.helpers import checks, raw_status, sched, status_json, wait_until
from tests.slots import next_minute, sleep_until
from tests.twosite import (
    MIRROR_IDS,
    POOL,
    SITE_A,
    SITE_B,
    SLOT,
    MirrorSnap,
    SyncReport,
    TwoSites,
    create_mirrored_image,
    export_sha256,
    follow_slot,
    mirror_daemon_healthy,
    mirror_status,
    own_snapshots,
    promote,
    replica_copy,
    write_random,
)

pytestmark = [pytest.mark.ceph_cluster, pytest.mark.two_sites]

IMAGES = (f"{POOL}/vm-1", f"{POOL}/vm-2")
SIZE = 32 << 20
ZEROS = hashlib.sha256(bytes(SIZE)).hexdigest()
FIRST_SYNC = 60  # seconds: replicas created and their first snapshot copied
DEMOTE_SYNC = 60  # seconds: the demotion snapshot copied to the peer
REPLAYING = 90  # seconds: rbd-mirror of the old primary replaying after the promotion
# Seconds after the slot: the snapshot, its copy, and rbd-mirror's next 30 s status batch.
SLOT_SYNC = 120
LAGGING = "RBD_SNAPSCHED_PEER_LAGGING"
CATCH_UP = 120  # seconds: a restarted rbd-mirror finds the pool and copies the newest snapshot


@pytest.fixture(scope="module")
def sites(release: str) -> Iterator[TwoSites]:
    """Both sites, peered, with IMAGES primary on site-a and replicated once to site-b."""
    two = TwoSites.boot(release=release)
    try:
        for spec in IMAGES:
            create_mirrored_image(two.a, spec, f"{SIZE >> 20}M")
        for spec in IMAGES:
            (first,) = own_snapshots(two.a, spec)
            wait_until(
                copied(two.b, spec, first.id),
                FIRST_SYNC,
                f"{SITE_B} to copy {spec}'s first mirror snapshot",
            )
        yield two
    except BaseException:
        print(two.log_tails())
        raise
    finally:
        two.teardown()


# -- helpers ------------------------------------------------------------------------------------


@contextlib.contextmanager
def diagnosed(sites: TwoSites) -> Iterator[None]:
    """On failure, print each image's mirror state on both sites and the daemon log tails."""
    try:
        yield
    except BaseException:
        for site, cluster in sites.sites.items():
            for spec in IMAGES:
                snaps = own_snapshots(cluster, spec)
                print(f"{site} {spec}: {mirror_status(cluster, spec).brief()}; own snaps {snaps}")
        print(sites.log_tails())
        raise


def copied(replica: Cluster, spec: str, primary_snap_id: int) -> Callable[[], bool]:
    """Probe: the replica has a complete copy of primary snapshot ``primary_snap_id``."""
    return lambda: replica_copy(replica, spec, primary_snap_id) is not None


def replaying(cluster: Cluster, spec: str) -> Callable[[], bool]:
    """Probe: this site's rbd-mirror reports ``spec`` as up+replaying."""
    return lambda: mirror_status(cluster, spec).state == "up+replaying"


SNAPSHOT_SHA256 = """
import hashlib, sys
import rados, rbd
conf, pool, name, snap_id = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
digest = hashlib.sha256()
with rados.Rados(conffile=conf) as client, client.open_ioctx(pool) as ioctx:
    with rbd.Image(ioctx, name, read_only=True) as image:
        image.set_snap_by_id(snap_id)
        size = image.size()
        for offset in range(0, size, 4 << 20):
            digest.update(image.read(offset, min(4 << 20, size - offset)))
print(digest.hexdigest())
"""


def snapshot_sha256(cluster: Cluster, spec: str, snap_id: int) -> str:
    """sha256 of an image as of one snapshot, chosen by id (any namespace), through librbd:
    the release's own, in its runtime (the host's Pacific librbd cannot reach Tentacle)."""
    pool, name = spec.split("/", 1)
    proc = subprocess.run(
        cluster.argv(
            "/usr/bin/python3", "-c", SNAPSHOT_SHA256, str(cluster.conf), pool, name, str(snap_id)
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return proc.stdout.strip()


def peer_linked(cluster: Cluster, spec: str) -> int:
    """How many of the image's primary mirror snapshots are still linked to a peer (not yet
    released by the peer's rbd-mirror after it synced a newer one)."""
    rows = json.loads(cluster.run("rbd", "snap", "ls", "--all", "--format", "json", spec).stdout)
    return sum(
        1
        for row in rows
        if row.get("namespace", {}).get("type") == "mirror"
        and row["namespace"].get("state") == "primary"
        and row["namespace"].get("mirror_peer_uuids")
    )


def lagging(cluster: Cluster) -> str:
    """RBD_SNAPSCHED_PEER_LAGGING's detail lines, one string ("" while the check is clear)."""
    check = checks(cluster).get(LAGGING, {})
    return "\n".join(d["message"] for d in check.get("detail", []))


def schedule_1m(cluster: Cluster) -> None:
    """``rbd mirror snapshot schedule add --pool POOL 1m``: our module answers."""
    sched(cluster, "add", "--pool", POOL, "1m")
    listed = json.loads(sched(cluster, "ls", "--pool", POOL, "--format", "json").stdout)
    assert [item["interval"] for item in listed] == ["1m"], listed


def scheduled(cluster: Cluster) -> dict[str, str]:
    """``rbd mirror snapshot schedule status --pool POOL``: image -> next schedule time (UTC)."""
    return {e["image"]: e["schedule_time"] for e in status_json(cluster, "--pool", POOL)}


def replicate_one_slot(
    primary: Cluster, replica: Cluster, src: str, capsys: pytest.CaptureFixture[str]
) -> dict[str, SyncReport]:
    """Write random data to every image on ``primary``; once our module lists them all for the
    next minute slot, wait for that slot and follow each slot snapshot to ``replica``. Prints
    and returns the RPO figures."""
    for spec in IMAGES:
        write_random(primary, spec)
    wait_until(
        lambda: sorted(scheduled(primary)) == sorted(IMAGES),
        10,
        f"`schedule status` on {src} to list {IMAGES}",
    )
    slot = next_minute(time.time() + 2)  # a slot the module has surely queued the images for
    due = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(slot))
    wait_until(
        lambda: set(scheduled(primary).values()) == {due},
        10,
        f"`schedule status` on {src} to give every image the slot {due}",
    )
    sleep_until(slot)
    reports = follow_slot(primary, replica, IMAGES, slot, timeout=SLOT_SYNC)
    with capsys.disabled():
        print()
        for report in reports.values():
            print(report.line(src))
    return reports


def assert_same_content(
    primary: Cluster, replica: Cluster, reports: dict[str, SyncReport], before: dict[str, str]
) -> dict[str, str]:
    """The primary's slot snapshot == the primary image (nothing written since) == the replica
    image, and it is new data. Returns the checksums."""
    sums = {}
    for spec, report in reports.items():
        snap = report.snap
        assert isinstance(snap, MirrorSnap)
        at_slot = snapshot_sha256(primary, spec, snap.id)
        assert at_slot == export_sha256(primary, spec), f"{spec}: written after the slot?"
        assert at_slot not in (ZEROS, before.get(spec)), f"{spec}: the slot carried no new data"
        replica_sum = export_sha256(replica, spec)
        assert replica_sum == at_slot, (
            f"{spec}: replica {replica_sum} != primary snapshot {snap.id} {at_slot}; "
            f"replica status: {mirror_status(replica, spec).brief()}"
        )
        sums[spec] = at_slot
    return sums


# -- tests --------------------------------------------------------------------------------------


CHECKSUMS: dict[tuple[Path, str], str] = {}  # (the sites' root, image): set by the first test


def test_scheduled_snapshots_replicate_to_site_b(
    sites: TwoSites, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `1m` schedule on site-a (set through the rbd CLI, answered by our module) snapshots
    each primary image at the slot; rbd-mirror on site-b copies it; the replica matches."""
    with diagnosed(sites):
        schedule_1m(sites.a)
        reports = replicate_one_slot(sites.a, sites.b, SITE_A, capsys)
        for spec, report in reports.items():
            assert report.snap is not None and report.snap.state == "primary", report
            assert report.snap.timestamp - report.slot < 30, f"{spec}: snapshot late: {report}"
        sums = assert_same_content(sites.a, sites.b, reports, {})
        CHECKSUMS.update({(sites.root, spec): digest for spec, digest in sums.items()})


def test_slots_wait_for_a_lagging_peer_and_resume_once_it_catches_up(
    sites: TwoSites, capsys: pytest.CaptureFixture[str]
) -> None:
    """site-b's rbd-mirror stopped: the next slot's snapshot cannot sync, so the slot after is
    skipped (pacing is on by default) and RBD_SNAPSCHED_PEER_LAGGING names the images; site-a
    holds at two linked snapshots per image. Started again: the replica catches up to the
    primary's newest snapshot (same sha256), the warning clears at the next slot, and that slot
    creates a snapshot again. About four slots (4 minutes) at most."""
    a, b = sites.a, sites.b
    mirror_b = MIRROR_IDS[SITE_B]
    with diagnosed(sites):
        if not sched(a, "ls", "--pool", POOL).stdout.strip():
            schedule_1m(a)
        b._stop(f"client.rbd-mirror.{mirror_b}")
        try:
            for spec in IMAGES:
                write_random(a, spec)
            first = next_minute(time.time() + 2)
            sleep_until(first)
            wait_until(
                lambda: all(own_snapshots(a, spec)[-1].timestamp >= first for spec in IMAGES),
                30,
                f"{SITE_A} to snapshot every image at the slot {first:.0f}",
            )
            held = {spec: [s.id for s in own_snapshots(a, spec)] for spec in IMAGES}
            wait_until(
                lambda: all(f"image {spec}:" in lagging(a) for spec in IMAGES),
                SLOT + 30,
                "RBD_SNAPSCHED_PEER_LAGGING naming every image at the next slot",
            )
            detail = lagging(a)
            for spec in IMAGES:
                assert f"image {spec}: 1 slot(s) skipped in a row" in detail, detail
                assert [s.id for s in own_snapshots(a, spec)] == held[spec], "not skipped"
                assert peer_linked(a, spec) == 2, "the bound: synced base + one pending"
            rows = raw_status(a, f"{POOL}/")  # the module's own status, with its extra keys
            assert {r["last_result"] for r in rows} == {"skipped: peer_lagging"}, rows
            assert {r["peer_lag_skips_in_a_row"] for r in rows} == {1}, rows
        finally:
            b.start_rbd_mirror(mirror_b)
        wait_until(
            lambda: mirror_daemon_healthy(b, POOL), 60, f"{SITE_B}'s rbd-mirror healthy again"
        )
        for spec in IMAGES:
            newest = own_snapshots(a, spec)[-1]
            wait_until(
                copied(b, spec, newest.id),
                CATCH_UP,
                f"{SITE_B} to catch up to {spec}'s snapshot {newest.id}",
            )
            digest = snapshot_sha256(a, spec, newest.id)
            assert digest == export_sha256(b, spec), spec
            CHECKSUMS[(sites.root, spec)] = digest  # what site-b holds now, for the failover
        caught_up = time.time()
        wait_until(
            lambda: LAGGING not in checks(a),
            SLOT + 30,
            "RBD_SNAPSCHED_PEER_LAGGING to clear at the next slot",
        )
        for spec in IMAGES:
            fresh = [s for s in own_snapshots(a, spec) if s.timestamp >= caught_up - 1]
            assert fresh, f"{spec}: no snapshot at the slot after the catch-up"
        with capsys.disabled():
            print(f"\npacing: {SITE_A} held at 2 linked snapshots per image while {SITE_B} lagged")


def test_failover_to_site_b_and_replication_back(
    sites: TwoSites, capsys: pytest.CaptureFixture[str]
) -> None:
    """Demote on site-a, promote on site-b once the demotion is copied, schedule on site-b,
    write there: the data comes back to site-a. site-a keeps its schedule but, its images now
    non-primary, its module takes no snapshot of them."""
    with diagnosed(sites):
        a, b = sites.a, sites.b
        demoted: dict[str, MirrorSnap] = {}
        for spec in IMAGES:
            a.run("rbd", "mirror", "image", "demote", spec)
            demoted[spec] = own_snapshots(a, spec)[-1]
            assert demoted[spec].state == "demoted", demoted[spec]
        for spec in IMAGES:
            wait_until(
                copied(b, spec, demoted[spec].id),
                DEMOTE_SYNC,
                f"{SITE_B} to copy {spec}'s demotion snapshot {demoted[spec].id}",
            )
            promote(b, spec)
        for spec in IMAGES:
            wait_until(
                replaying(a, spec),
                REPLAYING,
                f"rbd-mirror of {SITE_A} to replay {spec} from {SITE_B}",
            )
        schedule_1m(b)
        before = {spec: export_sha256(a, spec) for spec in IMAGES}
        reports = replicate_one_slot(b, a, SITE_B, capsys)
        sums = assert_same_content(b, a, reports, before)
        for spec in IMAGES:
            first = CHECKSUMS.get((sites.root, spec))
            if first is not None:  # the first test ran on these sites: site-b has its data
                assert before[spec] == first, f"{spec}: site-a changed while demoted"
            assert sums[spec] != before[spec]
            # site-a still has its `1m` schedule; a slot has passed since the demotion.
            late = [s for s in own_snapshots(a, spec) if s.id > demoted[spec].id]
            assert late == [], f"{spec}: site-a snapshotted a non-primary image: {late}"
        listed = json.loads(sched(a, "ls", "--pool", POOL, "--format", "json").stdout)
        assert [item["interval"] for item in listed] == ["1m"], "site-a's schedule was lost"
