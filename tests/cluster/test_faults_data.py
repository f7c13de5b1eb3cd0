"""Data faults on a real cluster of the host release (issue 13): what the module does when the
data under its schedules changes while it works, each fault followed by the shared checks of
``tests/cluster/fault_checks.py`` (scheduler alive, schedules as expected, resumed within one
slot, at most one snapshot per image per slot, nothing left open, one clear log line).

- A pool deleted while its slot drains: its schedules go with it (they lived in its omap), one
  info line says so, and the other pool's images still get that slot's snapshot.
- Images removed, renamed, demoted and mirroring-disabled while their requests wait behind the
  concurrency cap (1): each request ends quietly as the request table says; a rename keeps the
  image's pool-level and image-level schedule; the removed image's image-level schedule is
  pruned, the demoted and disabled ones' are kept (SPEC.md, decision 7).
- Our omap object removed underneath: storage is the truth, as for rbd_support, so the next
  refresh drops that pool's schedules from the listing and one warning names them; re-adding
  them resumes scheduling.
- Corrupt values written into our object: one error line per record naming its key (not one a
  refresh), the other schedules kept, ``ls`` still works, the records left in place.

One cluster for the module (booted by ``data_cluster``, torn down after), never the session
one; each test deletes its pools. ``refresh_interval`` is 10 s here, so a change made outside
the module is noticed within 10 s, and ``max_concurrent_snap_create`` is 1, so a slot drains
one image at a time. Waits for real minute slots, bounded: 6 to 6.5 minutes for the file
(boot included) on the 2-core host.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from typing import Any

import pytest

from tests.cephcluster import Cluster
from tests.cluster.fault_checks import (
    SLOT,
    Baseline,
    MgrLogs,
    active_mgr,
    check_after_fault,
    check_fault_logged,
    create_images,
    metric,
    mirror_snapshots,
    schedule_listing,
    take_baseline,
)
from tests.cluster.helpers import (
    MAX_CONCURRENT_OPTION,
    OUR_OID,
    Pools,
    in_parallel,
    omap_keys,
    pool_prefix,
    raw_list,
    sched,
    status_images,
    wait_until,
)
from tests.slots import next_minute, sleep_until

pytestmark = [pytest.mark.ceph_cluster, pytest.mark.faults]

REFRESH_OPTION = "mgr/rbd_snapsched/refresh_interval"
REFRESH = 10  # seconds between the module's full refreshes on this cluster
NOTICE = 2 * REFRESH + 10  # seconds: a change made outside the module is seen by then
LEAD = 4.0  # seconds: a fault set up closer than this to a slot waits for the next one
# Images queued before the ones changed mid-request: enough for their requests (0.5 to 1.2 s
# each here, one at a time) to outlast the changes (about 3 s), few enough to drain in a slot.
FILLERS = 24


@pytest.fixture(scope="module")
def data_cluster() -> Iterator[Cluster]:
    """This module's own cluster (host release): refresh every 10 s, one request at a time."""
    cluster = Cluster.boot()
    try:
        cluster.run("ceph", "config", "set", "mgr", REFRESH_OPTION, str(REFRESH))
        cluster.run("ceph", "config", "set", "mgr", MAX_CONCURRENT_OPTION, "1")
        yield cluster
    finally:
        cluster.teardown()


@pytest.fixture
def pools(data_cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[Pools]:
    """Pools named after the test, deleted when it ends (their schedules go with them)."""
    made = Pools(data_cluster, pool_prefix(request.module.__name__, request.node.name, 24))
    try:
        yield made
    finally:
        made.delete_all()


# -- helpers ------------------------------------------------------------------------------------


def wait_for_drain_in_progress(cluster: Cluster, slot: float) -> float:
    """Wait (at most 10 s past ``slot``) until requests wait behind the cap; how many."""
    waiting: list[float | None] = [None]

    def queued() -> bool:
        waiting[0] = metric(cluster, "requests_waiting")
        return bool(waiting[0])

    wait_until(queued, slot + 10 - time.time(), f"requests waiting behind the cap after {slot}")
    assert waiting[0] is not None
    return waiting[0]


def results(cluster: Cluster, pool: str) -> dict[tuple[str, str], float]:
    """``rbd_snapsched_snapshots_total`` of ``pool``: (result, reason) -> count."""
    with urllib.request.urlopen(cluster.metrics_url(active_mgr(cluster)), timeout=10) as answer:
        text = answer.read().decode()
    pattern = re.compile(
        r'^rbd_snapsched_snapshots_total\{pool="([^"]*)",result="([^"]*)",reason="([^"]*)"\} '
        r"(\S+)$",
        re.MULTILINE,
    )
    return {(m[2], m[3]): float(m[4]) for m in pattern.finditer(text) if m[1] == pool}


def idle(cluster: Cluster) -> bool:
    return metric(cluster, "requests_in_flight") == 0 == metric(cluster, "requests_waiting")


def image_id(cluster: Cluster, spec: str) -> str:
    found: str = json.loads(cluster.run("rbd", "info", spec, "--format", "json").stdout)["id"]
    return found


def pool_id(cluster: Cluster, pool: str) -> int:
    for entry in cluster.ceph_json("osd", "pool", "ls", "detail"):
        if entry["pool_name"] == pool:
            return int(entry["pool_id"])
    raise AssertionError(f"pool {pool} not in the OSD map")


def module_errors(logs: MgrLogs) -> list[str]:
    return logs.module_lines(r"\[rbd_snapsched ERROR ")


def rows_of(listing: Any, pool: str) -> list[dict[str, Any]]:
    return [row for row in listing if row.get("pool") == pool]


def slot_snapshots(cluster: Cluster, baseline: Baseline, start: float) -> dict[str, int]:
    """How many new primary mirror snapshots each baseline image got in the slot ``start``."""
    now = mirror_snapshots(cluster, baseline.pools)
    return {
        spec: sum(1 for s in baseline.new_primary(spec, now) if start <= s.at < start + SLOT)
        for spec in baseline.images
    }


# -- the faults ---------------------------------------------------------------------------------


def test_a_pool_deleted_while_its_slot_drains(data_cluster: Cluster, pools: Pools) -> None:
    cluster = data_cluster
    (victim,) = pools.create("victim")  # first: its images come first in the slot's queue
    (keeper,) = pools.create("keeper")
    in_parallel(
        partial(create_images, cluster, victim, 40, "v"),
        partial(create_images, cluster, keeper, 6, "k"),
    )
    for level in (("-p", victim), ("-p", victim, "--image", "v000"), ("-p", keeper)):
        sched(cluster, "add", *level, "1m")
    wait_until(lambda: len(status_images(cluster)) == 46, NOTICE, "all 46 images in status")
    wait_until(lambda: idle(cluster), SLOT, "no slot draining before the fault's")
    listing = schedule_listing(cluster)
    expected = [row for row in listing if row["pool"] != victim]
    assert len(rows_of(listing, victim)) == 2 and expected
    baseline = replace(take_baseline(cluster, [keeper]), schedules=expected)
    logs = MgrLogs(cluster)

    slot = next_minute(lead=LEAD)
    sleep_until(slot + 1.0)
    waiting = wait_for_drain_in_progress(cluster, slot)
    cluster.run("ceph", "osd", "pool", "rm", victim, victim, "--yes-i-really-really-mean-it")
    gone_at = time.time()
    print(f"[fault] pool {victim} deleted {gone_at - slot:.1f}s into its slot, {waiting:g} waiting")
    # The victim's images come first and its requests end quickly once it is gone: with 30 or
    # more waiting just before `pool rm` (about 1 s, 1-2 requests), most met the deletion.
    assert waiting >= 30, f"only {waiting:g} requests waited: the slot was not draining"

    wait_until(
        lambda: all(not image.startswith(victim + "/") for image in status_images(cluster)),
        NOTICE,
        f"{victim}'s images to leave status",
    )
    # The other pool's images still got the draining slot's snapshot, after the victim's.
    wait_until(lambda: idle(cluster), SLOT - 10, "the slot's drain to end")
    assert slot_snapshots(cluster, baseline, slot) == dict.fromkeys(baseline.images, 1)

    check_after_fault(
        cluster,
        baseline,
        recovered_at=gone_at,
        logs=logs,
        log_pattern=rf"pool {victim} \(id \d+\) no longer exists: dropped its 2 schedule "
        r"level\(s\) and 40 scheduled image\(s\)",
        log_level="INFO",
        most_log_lines=1,
    )
    # The queued requests of the deleted pool ended quietly, not one error line each.
    # At most the one request in flight at the deletion may fail at error level.
    errors = module_errors(logs)
    print(f"[fault] module errors after the deletion: {errors}")
    assert len(errors) <= 1, "\n".join(errors[:10])
    assert victim not in repr(raw_list(cluster))


def test_images_removed_renamed_demoted_and_disabled_mid_request(
    data_cluster: Cluster, pools: Pools
) -> None:
    cluster = data_cluster
    pool = pools.rbd("p")
    # Fillers first in the queue (names sort first), so the targets' requests still wait
    # behind the cap of 1 when the faults hit them, a few seconds into the slot.
    in_parallel(
        partial(create_images, cluster, pool, FILLERS, "f"),
        partial(create_images, cluster, pool, 5, "z"),
    )
    removed, renamed, renamed_own, demoted, disabled = (f"{pool}/z{i:03d}" for i in range(5))
    sched(cluster, "add", "-p", pool, "1m")
    for spec in (removed, renamed_own, demoted, disabled):  # image-level schedules too
        sched(cluster, "add", "-p", pool, "--image", spec.rpartition("/")[2], "1m")
    # No refresh between the faults and the requests reaching them (a refresh forgets the
    # changed images; their requests still run, but uncounted): refresh again after them.
    cluster.run("ceph", "config", "set", "mgr", REFRESH_OPTION, "120")
    try:
        wait_until(
            lambda: len(status_images(cluster)) == FILLERS + 5, NOTICE, "all images in status"
        )
        wait_until(lambda: idle(cluster), SLOT, "no slot draining before the fault's")
        listing = schedule_listing(cluster)
        before = take_baseline(cluster, [pool])
        logs = MgrLogs(cluster)
        counted_before = results(cluster, pool)

        slot = next_minute(lead=LEAD + 2)
        sleep_until(slot + 0.5)
        waiting = wait_for_drain_in_progress(cluster, slot)
        in_parallel(
            partial(cluster.run, "rbd", "rm", removed),
            partial(cluster.run, "rbd", "rename", renamed, renamed + "-new"),
            partial(cluster.run, "rbd", "rename", renamed_own, renamed_own + "-new"),
            partial(cluster.run, "rbd", "mirror", "image", "demote", demoted),
            partial(cluster.run, "rbd", "mirror", "image", "disable", disabled),
        )
        done_at = time.time()
        still = metric(cluster, "requests_waiting")
        print(
            f"[fault] images changed {done_at - slot:.1f}s into the slot; "
            f"{waiting:g} then {still} requests waiting"
        )
        assert still is not None and still >= 5, "the targets' requests were no longer waiting"
        wait_until(lambda: idle(cluster), SLOT - 5, "the slot's drain to end")
    finally:
        cluster.run("ceph", "config", "set", "mgr", REFRESH_OPTION, str(REFRESH))
    # Each target's request met its change mid-request and ended as the table says.
    after = results(cluster, pool)
    counted = {
        k: n - counted_before.get(k, 0) for k, n in after.items() if n > counted_before.get(k, 0)
    }
    # Disabled: Pacific 16.2.15 answers get_mode with journal mode (0) once mirroring is
    # disabled, so the request ends at GETTING_MODE as "not snapshot mode" (Reef may reach
    # GETTING_INFO and say "mirroring disabled", Tentacle answers EINVAL): a quiet skip each.
    off = ("skipped", "not_snapshot_mode")
    if off not in counted:
        off = ("skipped", "mirroring_disabled")
    assert counted == {
        ("skipped", "vanished"): 1,  # removed: ENOENT opening it
        ("skipped", "not_primary"): 1,  # demoted
        off: 1,  # mirroring disabled
        ("created", "created"): FILLERS + 2,  # the fillers and the 2 renamed images
    }, counted

    new_names = {renamed: renamed + "-new", renamed_own: renamed_own + "-new"}
    wait_until(
        lambda: (
            sorted(status_images(cluster))
            == sorted(
                new_names.get(s, s) for s in before.images if s not in (removed, demoted, disabled)
            )
        ),
        NOTICE,
        "status to show the renamed images and drop the others",
    )
    recovered_at = time.time()
    # The rename keeps the image-level schedule (keyed by image id); the removed image's is
    # pruned; the demoted and disabled images keep theirs (SPEC.md decision 7).
    expected = []
    for row in listing:
        spec = f"{row['pool']}/{row['image']}" if row["image"] else ""
        if spec == removed:
            continue
        if spec in new_names:
            row = {**row, "image": new_names[spec].rpartition("/")[2]}
        expected.append(row)
    snapshots = {
        new_names.get(spec, spec): snaps
        for spec, snaps in before.snapshots.items()
        if spec not in (removed, demoted, disabled)
    }
    baseline = Baseline(before.pools, expected, snapshots, before.at)
    # Each renamed image got exactly this slot's snapshot (its request ran by id).
    assert {s: n for s, n in slot_snapshots(cluster, baseline, slot).items() if "-new" in s} == {
        new: 1 for new in new_names.values()
    }
    check_after_fault(
        cluster,
        baseline,
        recovered_at=recovered_at,
        logs=logs,
        log_pattern=rf"image {re.escape(renamed)} renamed to {re.escape(renamed)}-new",
        log_level="INFO",
        most_log_lines=1,
    )
    gone = check_fault_logged(logs, r"scheduled image\(s\) no longer primary", "INFO")
    left = logs.module_lines(r"no longer scheduled: ")
    for spec in (removed, demoted, disabled):
        assert [line for line in left if re.search(rf"\b{re.escape(spec)}\b", line)], (spec, gone)
    check_fault_logged(logs, rf"Pruning schedule of {pool_id(cluster, pool)}//", "INFO", 1)
    assert not module_errors(logs), module_errors(logs)


def test_our_omap_object_removed_underneath(data_cluster: Cluster, pools: Pools) -> None:
    cluster = data_cluster
    pool, other = pools.create("om", "keep")
    in_parallel(
        partial(create_images, cluster, pool, 4, "i"),
        partial(create_images, cluster, other, 2, "k"),
    )
    levels = (("-p", pool), ("-p", pool, "--image", "i000"), ("-p", other))
    for level in levels:
        sched(cluster, "add", *level, "1m")
    wait_until(lambda: len(status_images(cluster)) == 6, NOTICE, "all 6 images in status")
    baseline = take_baseline(cluster, [pool, other])
    assert len(rows_of(baseline.schedules, pool)) == 2
    logs = MgrLogs(cluster)

    cluster.run("rados", "-p", pool, "rm", OUR_OID)
    removed_at = time.time()
    # Storage is the truth (as for rbd_support): the next refresh drops the pool's schedules.
    wait_until(
        lambda: not rows_of(schedule_listing(cluster), pool),
        NOTICE,
        f"the listing to drop {pool}'s schedules once their object is gone",
    )
    noticed = time.time() - removed_at
    assert rows_of(schedule_listing(cluster), other) == rows_of(baseline.schedules, other)
    assert all(not image.startswith(pool + "/") for image in status_images(cluster))
    line = check_fault_logged(
        logs,
        rf"pool {pool}: 2 schedule level\(s\) no longer in storage \({OUR_OID} removed or "
        rf"edited outside this module\?\), dropped: {pool}/, {pool}/i000",
        "WARNING",
        most=1,
    )
    print(f"[fault] object removal noticed after {noticed:.1f}s: {line.strip()}")

    # The operator puts the schedules back: scheduling resumes within one slot.
    for level in levels[:2]:
        sched(cluster, "add", *level, "1m")
    recovered_at = time.time()
    assert omap_keys(cluster, pool, OUR_OID) is not None
    check_after_fault(
        cluster,
        baseline,
        recovered_at=recovered_at,
        logs=logs,
        log_pattern=rf"pool {pool}: 2 schedule level\(s\) no longer in storage",
        log_level="WARNING",
        most_log_lines=1,
    )
    assert not module_errors(logs), module_errors(logs)


def test_corrupt_values_in_our_omap_object(data_cluster: Cluster, pools: Pools) -> None:
    cluster = data_cluster
    pool = pools.rbd("bad")
    specs = create_images(cluster, pool, 4, "i")
    sched(cluster, "add", "-p", pool, "1m")
    wait_until(lambda: len(status_images(cluster)) == 4, NOTICE, "all 4 images in status")
    baseline = take_baseline(cluster, [pool])
    logs = MgrLogs(cluster)
    prefix = f"{pool_id(cluster, pool)}//"
    corrupt = {  # image-level keys of real images: each falls back to the pool's schedule
        prefix + image_id(cluster, specs[1]): (specs[1], "not json{"),
        prefix + image_id(cluster, specs[2]): (specs[2], '{"interval": "1m"}'),
        prefix + image_id(cluster, specs[3]): (specs[3], '[{"interval": 5}]'),
    }
    for key, (_, value) in corrupt.items():
        cluster.run("rados", "-p", pool, "setomapval", OUR_OID, key, value)
    written_at = time.time()

    def each_logged() -> bool:
        return all(logs.module_lines(re.escape(repr(key))) for key in corrupt)

    wait_until(each_logged, NOTICE, "an error line for each corrupt record")
    assert schedule_listing(cluster) == baseline.schedules  # ls works, the others are kept
    assert sched(cluster, "ls", "-p", pool).stdout.strip() == "every 1m"
    assert len(status_images(cluster)) == 4

    check_after_fault(
        cluster,
        baseline,
        recovered_at=written_at,
        logs=logs,
        log_pattern=re.escape(f"Failed to decode schedule {next(iter(corrupt))!r}"),
        log_level="ERROR",
        most_log_lines=1,
    )
    # One line per record over several refreshes, naming its key and level; none deleted.
    for key, (spec, _) in corrupt.items():
        check_fault_logged(
            logs,
            re.escape(f"Failed to decode schedule {key!r} (level {spec}) in pool {pool}: "),
            "ERROR",
            most=1,
        )
    assert len(module_errors(logs)) == 3, module_errors(logs)
    keys = omap_keys(cluster, pool, OUR_OID)
    assert keys is not None and set(corrupt) <= set(keys)

    # `add` at a corrupt level writes a good record over it.
    fixed_key = next(iter(corrupt))
    sched(cluster, "add", "-p", pool, "--image", specs[1].rpartition("/")[2], "2m")
    stored = cluster.run("rados", "-p", pool, "getomapval", OUR_OID, fixed_key, "/dev/stdout")
    assert '"interval": "2m"' in stored.stdout, stored.stdout
    row = [r for r in schedule_listing(cluster) if r["image"] == specs[1].rpartition("/")[2]]
    assert row and row[0]["items"] == [{"interval": "2m", "start_time": ""}]
