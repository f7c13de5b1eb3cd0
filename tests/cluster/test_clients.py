"""The tools that drive the schedules, each through the exact calls it makes, on each release.

- go-ceph's ``rbd/admin`` (what ceph-csi uses) sends mgr commands as JSON through librados,
  every value a string, ``"format": "json"`` always. For ``add`` and ``remove`` it demands
  rc 0 with empty stdout and stderr; for ``list`` and ``status`` an empty stderr and JSON it
  can unmarshal. ceph-csi calls ``add`` for an image on every promote and never removes it.
- Rook drives the ``rbd`` CLI: on every CephBlockPool reconcile it lists the pool's
  schedules (``ls --pool P --format json``), removes each one passing back the ``interval``
  and ``start_time`` that ``ls`` printed, and adds the spec's schedules again; every 60 s it
  runs ``ls --pool P --recursive --format json`` for the CR's status, and gives up on a command
  after 15 s (its ``CephCommandsTimeout``).

Waits, bounded: the reconcile test spans two minute slots (at most 3.5 minutes); the others
need no slot.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.cephcluster import Cluster
from tests.cluster.fault_checks import mirror_snapshots as all_mirror_snapshots
from tests.cluster.fault_checks import run_python
from tests.cluster.helpers import (
    PROMPT,
    Pools,
    make_images,
    make_namespace,
    module_client_addr,
    next_slot,
    sched,
    wait_until,
)
from tests.runtime_rpc import Remote

pytestmark = pytest.mark.ceph_cluster

ENOENT, EINVAL = 2, 22  # ENOENT: the rbd CLI's exit status; EINVAL: a mgr command's -errno
MINUTE = timedelta(minutes=1)
ROOK_COMMAND_TIMEOUT = 15.0  # seconds: Rook's CephCommandsTimeout for each ceph/rbd command
RECONCILE_EVERY = 10.0  # seconds between two Rook reconciles in the test (Rook: on each event)
MANY_IMAGE_LEVELS = 2000  # image-level schedules for the recursive `ls` (ceph-csi: one per PVC)


# -- go-ceph ------------------------------------------------------------------------------------


def go_ceph(remote: Remote, verb: str, level_spec: str, **args: str) -> tuple[int, str, str]:
    """One call as go-ceph's rbd/admin makes it: a JSON map of strings, format json."""
    cmd = {
        "prefix": f"rbd mirror snapshot schedule {verb}",
        "level_spec": level_spec,
        "format": "json",
        **args,
    }
    ret, out, err = remote.call("mgr_command", json.dumps(cmd), b"")
    return int(ret), out.decode() if isinstance(out, bytes) else str(out), str(err)


def test_go_ceph_calls_get_the_outputs_it_checks(
    cluster: Cluster, pools: Pools, remote_client: Remote
) -> None:
    """go-ceph's Add/Remove get rc 0 and nothing on stdout or stderr, for every start-time form
    it passes on (none, a time of day with an offset as Rook's and Ramen's docs write it, a
    time of day, and newer ceph-csi's zoneless date-time); List and Status get JSON in the
    shapes it unmarshals and an empty stderr; errors are a negative errno with a message."""
    pool = pools.rbd("p")
    image = f"{pool}/img"
    make_images(cluster, image)
    anchor = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:00")
    calls = [
        (image, {"interval": "1d"}),
        (image, {"interval": "12h", "start_time": "14:00:00-05:00"}),
        (f"{pool}/", {"interval": "1h", "start_time": "00:30"}),
        (f"{pool}/", {"interval": "2h", "start_time": anchor}),
    ]
    for level, args in calls:
        assert go_ceph(remote_client, "add", level, **args) == (0, "", ""), (level, args)
        # ceph-csi adds the same schedule again on every promote: the same answer.
        assert go_ceph(remote_client, "add", level, **args) == (0, "", ""), (level, args)

    ret, out, err = go_ceph(remote_client, "list", image)
    assert (ret, err) == (0, "")
    listed = json.loads(out)  # go-ceph: map[level id]{name, schedule: [{interval, start_time}]}
    ((level_id, entry),) = listed.items()
    assert isinstance(level_id, str) and entry["name"] == image
    assert sorted(term["interval"] for term in entry["schedule"]) == ["12h", "1d"]
    assert all(set(term) == {"interval", "start_time"} for term in entry["schedule"])

    def status_lists_the_image() -> bool:
        ret, out, err = go_ceph(remote_client, "status", image)
        assert (ret, err) == (0, ""), (ret, err)
        rows = json.loads(out)["scheduled_images"]  # go-ceph: [{image, schedule_time}]
        return [row["image"] for row in rows] == [image] and bool(rows[0]["schedule_time"])

    wait_until(status_lists_the_image, PROMPT, f"status to list {image}")

    for level, args in calls:
        assert go_ceph(remote_client, "remove", level, **args) == (0, "", ""), (level, args)
    # Removing what is not there is a quiet no-op, as upstream's; bad input is an error.
    assert go_ceph(remote_client, "remove", image, interval="1d") == (0, "", "")
    ret, out, err = go_ceph(remote_client, "add", image, interval="1x")
    assert ret == -EINVAL and out == "" and err, (ret, out, err)
    ret, out, err = go_ceph(remote_client, "list", f"{pool}/")
    assert (ret, json.loads(out), err) == (0, {}, "")


def test_ceph_csi_promote_adds_are_idempotent_and_write_nothing(
    cluster: Cluster, pools: Pools, remote_client: Remote
) -> None:
    """ceph-csi adds the image's schedule on every promote and never removes one: the same
    `add` twenty times stores it once, writes storage once (the object's mtime stays) and asks
    for no snapshot. A changed interval adds a second one (upstream's rule: both are kept and
    the sooner slot wins), which `status` shows."""
    pool = pools.rbd("p")
    image = f"{pool}/vol"
    make_images(cluster, image)
    before = {spec: len(snaps) for spec, snaps in all_mirror_snapshots(cluster, [pool]).items()}
    assert go_ceph(remote_client, "add", image, interval="1h") == (0, "", "")

    def object_mtime() -> str:
        out = cluster.run("rados", "-p", pool, "stat", "rbd_snapsched_mirror_snapshot_schedule")
        return out.stdout.split(" mtime ")[1].split(",")[0]

    stored = object_mtime()
    time.sleep(1.1)  # mtimes are to the second: a write after this one would show
    for _ in range(20):
        assert go_ceph(remote_client, "add", image, interval="1h") == (0, "", "")
    assert object_mtime() == stored
    assert go_ceph(remote_client, "list", image)[0] == 0
    out = go_ceph(remote_client, "list", image)[1]
    assert [t["interval"] for t in next(iter(json.loads(out).values()))["schedule"]] == ["1h"]

    assert go_ceph(remote_client, "add", image, interval="30m") == (0, "", "")
    out = go_ceph(remote_client, "list", image)[1]
    terms = next(iter(json.loads(out).values()))["schedule"]
    assert sorted(t["interval"] for t in terms) == ["1h", "30m"]
    now = datetime.now(timezone.utc)

    def sooner_slot_wins() -> bool:
        out = go_ceph(remote_client, "status", image)[1]
        rows = json.loads(out)["scheduled_images"]
        if not rows:
            return False
        due = datetime.strptime(rows[0]["schedule_time"], "%Y-%m-%d %H:%M:%S")
        return due.minute in (0, 30) and due.replace(tzinfo=timezone.utc) - now <= 30 * MINUTE

    wait_until(sooner_slot_wins, PROMPT, "status to show the 30m schedule's next slot")
    after = {spec: len(snaps) for spec, snaps in all_mirror_snapshots(cluster, [pool]).items()}
    assert after == before  # no catch-up: the image's first mirror snapshot is fresh


# -- Rook ---------------------------------------------------------------------------------------


def rook_ls(cluster: Cluster, where: list[str], *extra: str) -> list[dict[str, Any]]:
    """``ls --format json`` as Rook reads it. A level without a schedule is ENOENT from the rbd
    CLI (upstream's too): Rook logs that and goes on to add the spec's, as if it were empty."""
    listed = sched(cluster, "ls", *where, *extra, "--format", "json", check=False)
    if listed.returncode == ENOENT and not extra:
        return []
    assert listed.returncode == 0, listed.stderr
    rows: list[dict[str, Any]] = json.loads(listed.stdout) if listed.stdout.strip() else []
    return rows


def rook_reconcile(cluster: Cluster, where: list[str], spec: list[tuple[str, str]]) -> None:
    """Rook's EnableSnapshotSchedules on ``where`` (``--pool P``, or a namespace): remove each
    listed schedule (its interval, then the start_time `ls` printed, if any), then add each of
    the spec's."""
    for item in rook_ls(cluster, where):
        start = [item["start_time"]] if item["start_time"] else []
        sched(cluster, "remove", *where, item["interval"], *start)
    for interval, start_time in spec:
        sched(cluster, "add", *where, interval, *([start_time] if start_time else []))


def namespace_args(cluster: Cluster, pool: str, namespace: str) -> list[str]:
    """A rados namespace as Rook names it to the rbd CLI: ``--pool pool/ns`` on Ceph 20 (as
    Rook does there); ``--pool pool --namespace ns`` before (their CLI takes only that)."""
    if cluster.release == "tentacle":
        return ["--pool", f"{pool}/{namespace}"]
    return ["--pool", pool, "--namespace", namespace]


def test_rook_ls_then_remove_round_trips_every_form_ls_prints(
    cluster: Cluster, pools: Pools
) -> None:
    """Whatever ``ls --format json`` prints as ``start_time`` (none, a time of day with an
    offset as Rook's docs write it, a time of day, a date-time anchor), Rook passes back to
    ``remove`` and it matches, at pool level and in a rados namespace."""
    pool = pools.rbd("p")
    make_namespace(cluster, pool, "ns")
    spec = [("1h", ""), ("1d", "14:00:00-05:00"), ("2h", "2100-01-01T19:00Z"), ("30m", "00:15")]
    for where in (["--pool", pool], namespace_args(cluster, pool, "ns")):
        rook_reconcile(cluster, where, spec)
        printed = rook_ls(cluster, where)
        assert sorted(item["interval"] for item in printed) == sorted(i for i, _ in spec)
        assert "" in {item["start_time"] for item in printed}
        rook_reconcile(cluster, where, spec)  # a second reconcile: the same schedules
        assert rook_ls(cluster, where) == printed, where
        rook_reconcile(cluster, where, [])  # every printed form removes its schedule
        assert rook_ls(cluster, where) == [], where
    assert rook_ls(cluster, ["--pool", pool], "--recursive") == []


def _snapshot_times(cluster: Cluster, pool: str) -> dict[str, list[datetime]]:
    return {
        spec: [datetime.fromtimestamp(s.at, timezone.utc) for s in snaps if s.primary]
        for spec, snaps in all_mirror_snapshots(cluster, [pool]).items()
    }


@pytest.fixture
def reconciling() -> Iterator[threading.Event]:
    stop = threading.Event()
    try:
        yield stop
    finally:
        stop.set()


def test_rook_reconcile_every_10s_across_two_slots_gives_one_snapshot_per_slot(
    cluster: Cluster, pools: Pools, reconciling: threading.Event
) -> None:
    """Rook resets the pool's schedules (remove each, add the spec's) on every reconcile; here
    every 10 s across two minute slots, so a reset gap may straddle a slot. Each image gets
    exactly one primary mirror snapshot per slot, none between slots (no catch-up burst), and
    no slot is lost. Bounded: about 2.5 minutes."""
    pool = pools.rbd("p")
    images = [f"{pool}/img{n}" for n in range(3)]
    make_images(cluster, *images)
    spec = [("1m", "")]
    where = ["--pool", pool]
    rook_reconcile(cluster, where, spec)
    errors: list[BaseException] = []
    resets = [0]
    one_at_a_time = threading.Lock()  # Rook reconciles one pool at a time

    def reconcile_loop() -> None:
        while not reconciling.wait(RECONCILE_EVERY):
            try:
                with one_at_a_time:
                    rook_reconcile(cluster, where, spec)
                resets[0] += 1
            except BaseException as e:  # the test fails on it below
                errors.append(e)
                return

    def sleep_until(when: datetime) -> None:
        time.sleep(max(0.0, (when - datetime.now(timezone.utc)).total_seconds()))

    first = next_slot(datetime.now(timezone.utc) + timedelta(seconds=5), MINUTE)
    before = _snapshot_times(cluster, pool)
    thread = threading.Thread(target=reconcile_loop, name="rook-reconcile", daemon=True)
    thread.start()
    try:
        # One reset of each slot straddles it for certain (a slow reconcile, as under load):
        # its schedules removed 2 s before the slot and back 2 s after it.
        for slot in (first, first + MINUTE):
            sleep_until(slot - timedelta(seconds=2))
            with one_at_a_time:
                rook_reconcile(cluster, where, [])
                sleep_until(slot + timedelta(seconds=2))
                rook_reconcile(cluster, where, spec)
        sleep_until(first + 2 * MINUTE + timedelta(seconds=2))
    finally:
        reconciling.set()
        thread.join(60)
    assert errors == []
    assert resets[0] >= 6, resets  # it reset the schedules all along

    def both_slots_served() -> bool:
        now = _snapshot_times(cluster, pool)
        return all(sum(first <= t < first + 2 * MINUTE for t in now[name]) >= 2 for name in images)

    wait_until(both_slots_served, 30, "each image's snapshots for both slots")
    after = _snapshot_times(cluster, pool)
    for image in images:
        new = sorted(t for t in after[image] if t not in before[image] and t >= first)
        in_first = [t for t in new if first <= t < first + MINUTE]
        in_second = [t for t in new if first + MINUTE <= t < first + 2 * MINUTE]
        assert len(in_first) == 1 and len(in_second) == 1, (image, new, first)
        assert all(t.second < 20 for t in in_first + in_second), (image, new)


def test_rook_recursive_ls_with_thousands_of_image_levels_stays_within_its_timeout(
    cluster: Cluster, pools: Pools
) -> None:
    """Rook runs ``ls --pool P --recursive --format json`` every 60 s per mirrored pool, and
    ceph-csi leaves one image-level schedule per volume: with MANY_IMAGE_LEVELS of them it
    lists every one, well within Rook's 15 s command timeout (the time is printed)."""
    pool = pools.rbd("p")
    # Paused: 2,000 newly scheduled images would each get a catch-up request (their daily
    # slot is far); a pause holds those, and `ls` is the same.
    cluster.run("ceph", "rbd", "mirror", "snapshot", "schedule", "pause", f"{pool}/")
    began = time.monotonic()
    out = run_python(cluster, MANY_LEVELS_SCRIPT, pool, str(MANY_IMAGE_LEVELS), timeout=900)
    made = out.split()
    setup = time.monotonic() - began
    print(f"{len(made)} mirrored images, each with an image-level schedule, in {setup:.0f} s")
    assert len(made) == MANY_IMAGE_LEVELS
    started = time.monotonic()
    rows = rook_ls(cluster, ["--pool", pool], "--recursive")
    took = time.monotonic() - started
    print(f"ls --recursive of {len(rows)} image levels: {took:.2f} s")
    assert sorted(f"{row['pool']}/{row['image']}" for row in rows) == sorted(made)
    assert all(row["items"] == [{"interval": "1d", "start_time": ""}] for row in rows)
    assert took < ROOK_COMMAND_TIMEOUT, took


# argv: pool, count. Creates `count` images in snapshot mirror mode (an image-level schedule
# needs one) and adds a `1d` image-level schedule to each through the mgr command, as go-ceph
# does on each promote.
MANY_LEVELS_SCRIPT = r"""
import json, sys
from concurrent.futures import ThreadPoolExecutor
import rados, rbd
pool, count = sys.argv[1], int(sys.argv[2])
client = rados.Rados(conffile="")
client.connect()
ioctx = client.open_ioctx(pool)
names = ["vol%05d" % i for i in range(count)]
def create(name):
    rbd.RBD().create(ioctx, name, 1 << 20)
def enable(name):
    with rbd.Image(ioctx, name) as image:
        image.mirror_image_enable(rbd.RBD_MIRROR_IMAGE_MODE_SNAPSHOT)
# Each enable waits on round trips, not CPU: 128 at a time took 1,000 in 8 s where 16 took 32 s
# for 500 (Reef, 2 cores). The mgr serializes the adds; more than 8 clients gain nothing there.
for step in (create, enable):
    with ThreadPoolExecutor(128) as executor:
        list(executor.map(step, names))
def add(name):
    cmd = {"prefix": "rbd mirror snapshot schedule add", "level_spec": pool + "/" + name,
           "interval": "1d", "format": "json"}
    ret, out, err = client.mgr_command(json.dumps(cmd), b"")
    if ret != 0:
        raise SystemExit("add %s: %s %s" % (name, ret, err))
with ThreadPoolExecutor(8) as executor:
    list(executor.map(add, names))
ioctx.close()
client.shutdown()
print("\n".join(pool + "/" + n for n in names))
"""


# -- what any client gets while the module starts or recovers ------------------------------------

NOT_READY_START = "rbd_snapsched module is"  # … not ready / recovering …, try again
EAGAIN = 11
BACK_OFF_BOUND = 60.0  # seconds of EAGAIN after a mgr restart or a blocklisting, at most


def poll_answers(remote: Remote, level: str, stop: threading.Event) -> list[tuple[float, int, str]]:
    """go-ceph's Status, as fast as it is answered, until ``stop``: (time, rc, stderr)."""
    seen: list[tuple[float, int, str]] = []
    while not stop.is_set():
        ret, _, err = go_ceph(remote, "status", level)
        seen.append((time.monotonic(), ret, err))
        time.sleep(0.05)
    return seen


def test_while_starting_or_recovering_a_client_gets_eagain_to_back_off_on(
    cluster: Cluster, pools: Pools
) -> None:
    """Across a mgr restart and a blocklisting of the module's client, go-ceph's Status gets
    rc 0 or EAGAIN with the text to back off on, nothing else (no EOPNOTSUPP, no EIO); and
    EAGAIN lasts only while the module loads its schedules (the time is printed)."""
    pool = pools.rbd("p")
    make_images(cluster, f"{pool}/img")
    sched(cluster, "add", "-p", pool, "1d")
    for event in ("mgr restart", "blocklisting"):
        seen = answers_across(cluster, f"{pool}/", event)
        codes = {ret for _, ret, _ in seen}
        assert codes <= {0, -EAGAIN}, (event, sorted(codes), seen[-5:])
        texts = {err.strip() for _, ret, err in seen if ret == -EAGAIN}
        assert all(text.startswith(NOT_READY_START) for text in texts), (event, texts)
        busy = [at for at, ret, _ in seen if ret == -EAGAIN]
        span = busy[-1] - busy[0] if busy else 0.0
        print(f"{cluster.release} {event}: {len(seen)} answers, {len(busy)} EAGAIN, {span:.1f} s")
        assert span < BACK_OFF_BOUND, (event, span)
        assert seen[-1][1] == 0, (event, seen[-5:])


def answers_across(cluster: Cluster, level: str, event: str) -> list[tuple[float, int, str]]:
    """go-ceph's Status polled from another client while ``event`` happens, and after it
    until the module answers again (bounded)."""
    stop = threading.Event()
    answers: list[list[tuple[float, int, str]]] = []
    with Remote(cluster) as remote:

        def poll() -> None:
            answers.append(poll_answers(remote, level, stop))

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            time.sleep(1)
            if event == "mgr restart":
                cluster.restart_mgr()
            else:
                blocked = module_client_addr(cluster)
                assert blocked is not None, "rbd_snapsched registered no rados client"
                cluster.run("ceph", "osd", "blocklist", "add", blocked)
                try:
                    wait_until(
                        lambda: module_client_addr(cluster) not in (blocked, None),
                        BACK_OFF_BOUND,
                        "the module's new client",
                    )
                finally:
                    cluster.run("ceph", "osd", "blocklist", "rm", blocked, check=False)
            time.sleep(2)
        finally:
            stop.set()
            poller.join(BACK_OFF_BOUND)
    (seen,) = answers
    return seen
