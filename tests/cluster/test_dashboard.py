"""The Ceph dashboard beside rbd_snapsched, on each release: what an operator gets.

A cluster of its own (``Cluster(dashboard=True)``: the stock ``dashboard`` module of the
release's ``ceph-mgr-dashboard`` package on the module path, ours loaded and enabled), the
dashboard enabled without SSL on 127.0.0.1 and a free port, an ``administrator`` user. The test
drives the dashboard's REST API as its web UI does (``tests/dashboard_api.py``): it creates an
image in a mirrored pool with snapshot mirroring and a 1m schedule (the create form,
``POST /api/block/image``), edits it with a 2m schedule (the edit form,
``PUT /api/block/image/<pool%2Fimage>``), and reads the image page
(``GET /api/block/image/<spec>``) and the images list (``GET /api/block/image?pool_name=…``,
API 2.0) at each step, printing the schedule fields they show (``-s`` shows them).

What it proves:

- The dashboard writes the schedule into rbd_support's storage (the omap object
  ``rbd_mirror_snapshot_schedule`` of the pool), not ours; the edit form *adds* its interval
  beside the first (rbd_support's ``add``), it does not replace it.
- The dashboard shows a schedule only once rbd_support has found the image (its rescan, once a
  minute), and only what rbd_support holds.
- With ``adopt_rbd_support_schedules`` off (the default), ours leaves that image to rbd_support:
  ``RBD_SNAPSCHED_RBD_SUPPORT_SCHEDULES`` names the image's level and ``status`` does not list it.
- With the option on, the schedule moves into ours (``ls`` on the image shows both intervals,
  rbd_support's storage no longer holds it), the warning clears, and the move goes through
  rbd_support's own ``remove``, so rbd_support drops the image from its queue at once: the
  dashboard's image page and list show no schedule right after the move (``schedule_info``
  absent, the dashboard reads only rbd_support).
- No minute slot ever gets two primary mirror snapshots of the image, and the first whole slot
  after the move gets exactly one. (Were rbd_support's storage emptied behind its back instead,
  its queue would keep the image until its next rescan: one more snapshot, by rbd_support, in
  the next slot, and the dashboard showing the old schedule until then.)

Bounded waits: the dashboard up after the module is enabled (the mgr respawns) 120 s; our
warning 30 s (``refresh_interval`` is set to 2 s for the test, then restored); the dashboard
showing rbd_support's schedule 90 s after the create; the move, and the warning clearing, 30 s
each; if the dashboard still shows a schedule after the move, 75 s to see how long; then the
first whole minute slot after the move and 15 s (2.5 minutes at most). About 3.5 minutes per
release.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.cephcluster import Cluster, free_port
from tests.cluster.helpers import (
    PROMPT,
    MgrLog,
    checks,
    config_restore,
    mirror_snapshots,
    omap_keys,
    sched,
    snap_time,
    status_images,
    wait_until,
)
from tests.dashboard_api import Dashboard, image_path
from tests.polling import poll
from tests.slots import ENOENT, MINUTE, next_slot, sleep_until, utcnow

pytestmark = pytest.mark.ceph_cluster

USER = "admin"
PASSWORD = "Snap-Sched-Dash-2026!"  # passes the dashboard's password policy
POOL = "dash"
IMAGE = "vm1"
SPEC = f"{POOL}/{IMAGE}"
SIZE = 16 * 1024 * 1024
UPSTREAM_OID = "rbd_mirror_snapshot_schedule"  # rbd_support's storage, in the pool
WARNING = "RBD_SNAPSCHED_RBD_SUPPORT_SCHEDULES"
OPTION = "mgr/rbd_snapsched/"
ADOPT = OPTION + "adopt_rbd_support_schedules"
REFRESH = OPTION + "refresh_interval"
FAST_REFRESH = "2"

DASHBOARD_UP = 120.0  # seconds: the mgr respawns on `mgr module enable`, then serves
WARNING_WAIT = 30.0  # our refresh (2 s) and the mgr's next report to the mons
SHOWN_WAIT = 90.0  # rbd_support discovers new images once a minute
MOVE_WAIT = 30.0  # adoption within 5 s after the refresh that finds the schedule
SLOT_MARGIN = 15.0  # seconds past a slot's end before its snapshots are counted
STALE_WAIT = 75.0  # rbd_support rescans its schedules once a minute
DIRECT = "deleted from rbd_support's storage directly"  # our fallback when its remove fails


def say(release: str, what: str, data: Any = None) -> None:
    shown = "" if data is None else " " + json.dumps(data, sort_keys=True, default=str)
    print(f"[dashboard {release}] {what}{shown}", flush=True)


@pytest.fixture(scope="module")
def dash_cluster(release: str) -> Iterator[Cluster]:
    cluster = Cluster.boot(release=release, dashboard=True)
    try:
        yield cluster
    finally:
        cluster.teardown()


def enable_dashboard(cluster: Cluster) -> str:
    """Enable the dashboard (no SSL, 127.0.0.1, a free port) and make the admin user; its URL."""
    port = free_port()
    for key, value in (("ssl", "false"), ("server_addr", "127.0.0.1"), ("server_port", str(port))):
        cluster.run("ceph", "config", "set", "mgr", f"mgr/dashboard/{key}", value, "--force")
    cluster.run("ceph", "mgr", "module", "enable", "dashboard")
    url = ""

    def serving() -> bool:
        nonlocal url
        proc = cluster.run("ceph", "mgr", "services", "--format", "json", check=False)
        url = json.loads(proc.stdout or "{}").get("dashboard", "") if proc.returncode == 0 else ""
        return bool(url)

    wait_until(serving, DASHBOARD_UP, "the dashboard in `ceph mgr services`", interval=1)
    # The mgr respawned to load it: our module answers again before the test goes on.
    wait_until(cluster.module_answers, DASHBOARD_UP, "rbd_snapsched answering", interval=1)
    password = cluster.root / "dashboard-password"
    password.write_text(PASSWORD)
    cluster.run("ceph", "dashboard", "ac-user-create", USER, "-i", str(password), "administrator")
    assert url == f"http://127.0.0.1:{port}/", url
    return url


def schedule_fields(image: dict[str, Any]) -> dict[str, Any]:
    """What the image page and the list show about mirroring and its schedule."""
    keys = ("name", "mirror_mode", "primary", "schedule_info")
    return {key: image[key] for key in keys if key in image}


def listed(api: Dashboard) -> dict[str, Any]:
    rows = [row for row in api.images(POOL) if row["name"] == IMAGE]
    assert len(rows) == 1, rows
    return rows[0]


def upstream_held(cluster: Cluster) -> dict[str, list[str]]:
    """rbd_support's storage in the pool: each level key and the intervals it holds."""
    held: dict[str, list[str]] = {}
    out = cluster.root / "omap-value"
    for key in omap_keys(cluster, POOL, UPSTREAM_OID) or []:
        cluster.run("rados", "-p", POOL, "getomapval", UPSTREAM_OID, key, str(out))
        held[key] = sorted(item["interval"] for item in json.loads(out.read_text()))
    return held


def our_intervals(cluster: Cluster) -> list[str]:
    """``rbd mirror snapshot schedule ls`` on the image (ours: first in name order); the rbd
    CLI exits 2 (ENOENT), printing nothing, when the level has no schedule."""
    proc = sched(cluster, "ls", "--pool", POOL, "--image", IMAGE, "--format", "json", check=False)
    if proc.returncode == ENOENT and not proc.stdout.strip():
        return []
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows: list[dict[str, Any]] = json.loads(proc.stdout or "[]")
    return sorted(str(row["interval"]) for row in rows)


def warning_lines(cluster: Cluster) -> list[str] | None:
    check = checks(cluster).get(WARNING)
    return None if check is None else [d["message"] for d in check.get("detail", [])]


def adoption_lines(lines: list[str]) -> list[str]:
    """Our module's ``adopt_rbd_support_schedules`` log lines, each with the lines it continues
    on (a traceback it quotes)."""
    found: list[str] = []
    for line in lines:
        if "adopt_rbd_support_schedules:" in line:
            found.append(line)
        elif found and line and not line[:4].isdigit():  # no timestamp: a continuation
            found[-1] += "\n" + line
    return found


def primary_times(cluster: Cluster, after_id: int) -> list[datetime]:
    return [
        snap_time(snap)
        for snap in mirror_snapshots(cluster, SPEC)
        if int(snap["id"]) > after_id and snap["namespace"]["state"] == "primary"
    ]


def test_dashboard_schedule_goes_to_rbd_support_and_is_adopted(
    dash_cluster: Cluster, release: str
) -> None:
    c = dash_cluster
    c.run("ceph", "config", "set", "mgr", REFRESH, FAST_REFRESH)
    try:
        check_dashboard(c, release)
    finally:
        config_restore(c, ADOPT, "false")
        config_restore(c, REFRESH, "60")


def check_dashboard(c: Cluster, release: str) -> None:
    url = enable_dashboard(c)
    c.create_rbd_pool(POOL)
    api = Dashboard(url)
    login = api.login(USER, PASSWORD)
    say(release, f"POST /api/auth as {USER}: token and permissions", sorted(login["permissions"]))

    # -- the create form: snapshot mirroring, a 1m schedule ---------------------------------
    features = api.default_features()
    create: dict[str, Any] = {
        "pool_name": POOL,
        "namespace": None,
        "name": IMAGE,
        "schedule_interval": "1m",
        "size": SIZE,
        "mirror_mode": "snapshot",
        "obj_size": 4 * 1024 * 1024,
        "features": features,
        "stripe_unit": None,
        "stripe_count": None,
        "data_pool": None,
        "configuration": {},
    }
    created_at = time.monotonic()
    answer = api.task("POST", "/api/block/image", create)
    say(release, f"POST /api/block/image -> {answer.status}", create)
    snaps = mirror_snapshots(c, SPEC)
    assert snaps, "mirroring enabled in snapshot mode makes a first mirror snapshot"
    baseline = max(int(snap["id"]) for snap in snaps)  # the mirror-enable snapshot
    say(release, "image page after create", schedule_fields(api.image(SPEC)))

    # rbd_support holds it; ours leaves the image to rbd_support and says so.
    held = upstream_held(c)
    say(release, f"rados -p {POOL} omap {UPSTREAM_OID} after create", held)
    assert list(held.values()) == [["1m"]], held
    line = f"rbd_support schedule at level {SPEC}"
    took = wait_until(
        lambda: line in (warning_lines(c) or []), WARNING_WAIT, f"{WARNING} naming {SPEC}"
    )
    say(release, f"ceph health detail {WARNING} after {took:.1f}s", checks(c)[WARNING])
    assert SPEC not in status_images(c, "--pool", POOL)
    assert our_intervals(c) == []

    # -- the edit form: another interval ----------------------------------------------------
    shown = api.image(SPEC)
    edit: dict[str, Any] = {
        "name": IMAGE,
        "schedule_interval": "2m",
        "size": shown["size"],
        "features": shown["features_name"],
        "enable_mirror": True,
        "mirror_mode": "snapshot",
        "configuration": {},
    }
    if release == "tentacle":  # its edit form also sends the image's current mode
        edit["image_mirror_mode"] = "snapshot"
    answer = api.task("PUT", image_path(SPEC), edit)
    say(release, f"PUT {image_path(SPEC)} -> {answer.status}", edit)
    held = upstream_held(c)
    say(release, f"rados -p {POOL} omap {UPSTREAM_OID} after edit", held)
    assert list(held.values()) == [["1m", "2m"]], held  # added beside 1m, not replacing it
    assert SPEC not in status_images(c, "--pool", POOL)

    # What the dashboard shows once rbd_support has found the image (within a minute).
    left = SHOWN_WAIT - (time.monotonic() - created_at)
    wait_until(
        lambda: "schedule_info" in api.image(SPEC), left, "the image page showing a schedule"
    )
    say(
        release,
        f"image page with rbd_support's schedule ({time.monotonic() - created_at:.0f}s "
        "after create)",
        schedule_fields(api.image(SPEC)),
    )
    say(release, "images list row", schedule_fields(listed(api)))
    assert "schedule_info" in listed(api)

    # -- adoption: the schedule moves into ours ---------------------------------------------
    log = MgrLog(c)
    c.run("ceph", "config", "set", "mgr", ADOPT, "true")
    start = time.monotonic()
    wait_until(lambda: our_intervals(c) == ["1m", "2m"], MOVE_WAIT, "ours holding 1m and 2m")
    moved = time.monotonic() - start
    wait_until(lambda: not upstream_held(c), MOVE_WAIT, "rbd_support's storage emptied")
    gone = time.monotonic() - start
    wait_until(lambda: warning_lines(c) is None, MOVE_WAIT, f"{WARNING} to clear")
    cleared = time.monotonic() - start
    say(
        release,
        f"adopted: ours holds it after {moved:.1f}s, rbd_support's storage empty after "
        f"{gone:.1f}s, warning cleared after {cleared:.1f}s; ls on the image",
        our_intervals(c),
    )
    # The first whole minute slot after the move: exactly one snapshot there (checked below).
    now = utcnow()
    slot = next_slot(now)
    if slot - now < timedelta(seconds=5):
        slot += MINUTE
    adopted = adoption_lines(log.new_lines())
    say(release, "mgr log", adopted)
    wait_until(lambda: SPEC in status_images(c, "--pool", POOL), PROMPT, f"{SPEC} in status")
    after = api.image(SPEC)
    row = listed(api)
    say(release, "image page after adoption", schedule_fields(after))
    say(release, "images list row after adoption", schedule_fields(row))
    stale = ""
    if "schedule_info" in after:  # rbd_support still queues it: for how long?
        cleared_in = poll(lambda: "schedule_info" not in api.image(SPEC), STALE_WAIT, interval=1)
        stale = f"over {STALE_WAIT:.0f}s" if cleared_in is None else f"{cleared_in:.0f}s"
        say(release, f"image page kept showing rbd_support's schedule for {stale} more")

    # -- one snapshot per slot --------------------------------------------------------------
    sleep_until(slot + MINUTE + timedelta(seconds=SLOT_MARGIN))
    per_slot: dict[str, int] = {}
    for when in primary_times(c, baseline):
        key = when.strftime("%H:%M")
        per_slot[key] = per_slot.get(key, 0) + 1
    say(release, "primary mirror snapshots per minute slot since the create", per_slot)

    problems = []
    doubled = {key: count for key, count in per_slot.items() if count > 1}
    if doubled:
        problems.append(f"minute slots with two primary mirror snapshots: {doubled}")
    if per_slot.get(slot.strftime("%H:%M")) != 1:
        problems.append(f"slot {slot:%H:%M} after the move: not exactly one snapshot")
    if stale:
        problems.append(
            "the dashboard still showed rbd_support's schedule after the move (rbd_support "
            f"still queued the image) for {stale}"
        )
    if any(DIRECT in line for line in adopted):
        problems.append(f"rbd_support's own remove was not used: {adopted}")
    assert not problems, problems
