"""The checks every fault test runs once its fault is over (``tests/cluster/test_faults_*.py``).

A fault test makes images under a ``1m`` schedule, takes a ``Baseline`` (and marks the mgr
logs with ``MgrLogs``) before the fault, injects the fault, notes when the cluster recovered,
then calls ``check_after_fault``, which runs each check below in turn:

- ``check_scheduler_alive``: the module answers a schedule command and the scheduler thread
  passed after the recovery (its heartbeat gauge advanced past it);
- ``check_schedules_intact``: ``rbd mirror snapshot schedule ls -R`` says what it said before;
- ``check_resumed``: every image got a new primary mirror snapshot in the first full slot
  after the recovery (a bounded wait: that slot's end plus ``GRACE``);
- ``check_one_snapshot_per_slot``: no image got two new mirror snapshots in one slot;
- ``check_nothing_left_open``: once no request is in flight, the driver holds no image handle
  and no ioctx (the metrics gauges ``open_images`` and ``open_ioctxs`` are 0);
- ``check_fault_logged``: the module logged a line naming the fault in a mgr log.

Each is a plain function and usable alone. Images are made and their snapshots read in one
``python3`` process in the cluster's runtime (librbd), not one CLI call per image: 200 images
take about 12 s to make and 2 s to read on the 2-core host.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tests.cephcluster import Cluster, ClusterError

SLOT = 60.0  # seconds: a `1m` schedule's slot, starting at each UTC minute boundary
GRACE = 20.0  # seconds past a slot's end allowed for its snapshots (a drain, a slow host)
ALIVE_TIMEOUT = SLOT + GRACE  # the thread passes at least once a minute (its heartbeat)
SNAPSHOT_FMT = "%H:%M:%S"
LOG_WAIT = (
    60.0  # seconds a logged line may take to reach the mgr's log file (see check_fault_logged)
)

# Run by the cluster's own python3 (librados and librbd of its release). argv: pool, prefix,
# count, workers. Images of 1 MiB, default features, mirroring enabled in snapshot mode
# (which takes each image's first mirror snapshot).
CREATE_SCRIPT = r"""
import sys
from concurrent.futures import ThreadPoolExecutor
import rados, rbd
pool, prefix, count, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
client = rados.Rados(conffile="")
client.connect()
ioctx = client.open_ioctx(pool)
def make(i):
    name = "%s%03d" % (prefix, i)
    rbd.RBD().create(ioctx, name, 1 << 20)
    with rbd.Image(ioctx, name) as image:
        image.mirror_image_enable(rbd.RBD_MIRROR_IMAGE_MODE_SNAPSHOT)
    return name
with ThreadPoolExecutor(workers) as executor:
    names = list(executor.map(make, range(count)))
ioctx.close()
client.shutdown()
print("\n".join(names))
"""

# argv: pools. Prints {"pool/image": [[snap id, primary?, created (epoch s)], ...]} for every
# image of the pools' default namespaces, mirror snapshots only, oldest first.
SNAPSHOTS_SCRIPT = r"""
import calendar, json, sys
import rados, rbd
client = rados.Rados(conffile="")
client.connect()
found = {}
for pool in sys.argv[1:]:
    ioctx = client.open_ioctx(pool)
    for name in rbd.RBD().list(ioctx):
        try:
            with rbd.Image(ioctx, name, read_only=True) as image:
                snaps = []
                for snap in image.list_snaps():
                    if snap.get("namespace") != rbd.RBD_SNAP_NAMESPACE_TYPE_MIRROR:
                        continue
                    primary = snap["mirror"]["state"] in (
                        rbd.RBD_SNAP_MIRROR_STATE_PRIMARY,
                        rbd.RBD_SNAP_MIRROR_STATE_PRIMARY_DEMOTED,
                    )
                    created = image.get_snap_timestamp(snap["id"])
                    snaps.append([snap["id"], primary, calendar.timegm(created.timetuple())])
        except rbd.ImageNotFound:
            continue
        found["%s/%s" % (pool, name)] = sorted(snaps)
    ioctx.close()
client.shutdown()
print(json.dumps(found))
"""


def run_python(cluster: Cluster, script: str, *args: str, timeout: float) -> str:
    """Run ``script`` with the cluster's release's python3 (its rados and rbd bindings)."""
    cmd = cluster.argv("/usr/bin/python3", "-c", script, *args, env={"TZ": "UTC"})
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise ClusterError(f"librbd script {args} timed out after {timeout:g}s") from e
    if proc.returncode != 0:
        raise ClusterError(f"librbd script {args} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def create_images(
    cluster: Cluster, pool: str, count: int, prefix: str = "img", workers: int = 16
) -> list[str]:
    """``count`` mirrored images ``pool/<prefix>000``...; their specs. About 16 per second."""
    out = run_python(cluster, CREATE_SCRIPT, pool, prefix, str(count), str(workers), timeout=300)
    return [f"{pool}/{name}" for name in out.split()]


@dataclass(frozen=True)
class Snap:
    """One mirror snapshot: its id, whether it is a primary one, when it was made (epoch s,
    to the second as librbd keeps it)."""

    id: int
    primary: bool
    at: float

    def __str__(self) -> str:
        when = datetime.fromtimestamp(self.at, timezone.utc).strftime(SNAPSHOT_FMT)
        return f"#{self.id}@{when}"


def mirror_snapshots(
    cluster: Cluster, pools: Sequence[str], timeout: float = 120
) -> dict[str, list[Snap]]:
    """Every image's mirror snapshots in ``pools``, oldest first, keyed by ``pool/image``."""
    found = json.loads(run_python(cluster, SNAPSHOTS_SCRIPT, *pools, timeout=timeout))
    return {
        spec: [Snap(int(i), bool(p), float(at)) for i, p, at in rows]
        for spec, rows in found.items()
    }


def schedule_listing(cluster: Cluster) -> Any:
    """``rbd mirror snapshot schedule ls -R --format json``, parsed."""
    out = cluster.run("rbd", "mirror", "snapshot", "schedule", "ls", "-R", "--format", "json")
    return json.loads(out.stdout)


@dataclass(frozen=True)
class Baseline:
    """What the checks compare with: taken before the fault."""

    pools: tuple[str, ...]
    schedules: Any  # schedule_listing()
    snapshots: dict[str, list[Snap]]  # every image's mirror snapshots
    at: float = field(default_factory=time.time)

    @property
    def images(self) -> list[str]:
        return sorted(self.snapshots)

    def last_id(self, spec: str) -> int:
        return max((s.id for s in self.snapshots.get(spec, [])), default=-1)

    def new_primary(self, spec: str, now: dict[str, list[Snap]]) -> list[Snap]:
        """``spec``'s primary mirror snapshots in ``now`` made after this baseline."""
        last = self.last_id(spec)
        return [s for s in now.get(spec, []) if s.primary and s.id > last]


def take_baseline(cluster: Cluster, pools: Sequence[str]) -> Baseline:
    snapshots = mirror_snapshots(cluster, pools)
    if not snapshots:
        raise AssertionError(f"no images in {list(pools)}: nothing to check the fault against")
    return Baseline(tuple(pools), schedule_listing(cluster), snapshots)


# -- the module's metrics ----------------------------------------------------------------------


def active_mgr(cluster: Cluster) -> str:
    name: str = cluster.ceph_json("mgr", "dump")["active_name"]
    return name


def read_metrics(url: str) -> dict[str, float] | None:
    """The endpoint's unlabelled samples (``name value``); None unless it answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            text = answer.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or "{" in line:
            continue
        name, _, value = line.partition(" ")
        if value:
            samples[name] = float(value)
    return samples


def metric(cluster: Cluster, name: str) -> float | None:
    """One unlabelled sample of the active mgr's endpoint (``rbd_snapsched_`` + ``name``)."""
    try:
        url = cluster.metrics_url(active_mgr(cluster))
    except (ClusterError, KeyError, OSError, ValueError):
        return None
    samples = read_metrics(url)
    return None if samples is None else samples.get("rbd_snapsched_" + name)


def _wait(pred: Any, timeout: float, interval: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


# -- the checks -----------------------------------------------------------------------------


def check_scheduler_alive(cluster: Cluster, since: float, timeout: float = ALIVE_TIMEOUT) -> float:
    """The module answers, and its scheduler thread passed after ``since`` (epoch s): its
    heartbeat gauge advanced past it within ``timeout`` s. Returns that heartbeat."""
    if not _wait(cluster.module_answers, timeout):
        raise AssertionError(
            f"rbd_snapsched did not answer `schedule list` within {timeout:g}s of the fault"
        )
    seen: list[float | None] = [None]

    def passed() -> bool:
        seen[0] = metric(cluster, "scheduler_heartbeat_timestamp_seconds")
        return seen[0] is not None and seen[0] > since

    if not _wait(passed, timeout):
        raise AssertionError(
            f"the scheduler thread's heartbeat did not pass {since:.0f} within {timeout:g}s "
            f"(last seen: {seen[0]}): the thread is stuck or dead"
        )
    assert seen[0] is not None
    return seen[0]


def check_schedules_intact(cluster: Cluster, baseline: Baseline) -> None:
    """``rbd mirror snapshot schedule ls -R`` lists exactly what it listed before the fault."""
    now = schedule_listing(cluster)
    assert now == baseline.schedules, (
        f"schedules changed across the fault:\nbefore {baseline.schedules}\nafter  {now}"
    )


def slot_of(at: float, slot: float = SLOT) -> float:
    """The start of the slot ``at`` falls in."""
    return math.floor(at / slot) * slot


def _hms(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime(SNAPSHOT_FMT)


def check_one_snapshot_per_slot(
    cluster: Cluster, baseline: Baseline, now: dict[str, list[Snap]] | None = None
) -> dict[str, list[Snap]]:
    """No image got more than one new primary mirror snapshot in any slot since the
    baseline; every image of the baseline still exists. Returns the snapshots read."""
    if now is None:
        now = mirror_snapshots(cluster, baseline.pools)
    missing = [spec for spec in baseline.images if spec not in now]
    assert not missing, f"images gone after the fault: {missing[:10]} ({len(missing)})"
    doubled: dict[str, list[str]] = {}
    for spec in baseline.images:
        per_slot: dict[float, list[Snap]] = {}
        for snap in baseline.new_primary(spec, now):
            per_slot.setdefault(slot_of(snap.at), []).append(snap)
        for start, snaps in sorted(per_slot.items()):
            if len(snaps) > 1:
                doubled.setdefault(spec, []).append(
                    f"slot {_hms(start)}: {', '.join(map(str, snaps))}"
                )
    assert not doubled, (
        f"{len(doubled)} image(s) got more than one mirror snapshot in a slot: "
        + "; ".join(f"{spec}: {slots}" for spec, slots in list(doubled.items())[:5])
    )
    return now


def check_resumed(
    cluster: Cluster, baseline: Baseline, recovered_at: float, grace: float = GRACE
) -> float:
    """Every image got a new primary mirror snapshot in the first full slot after
    ``recovered_at`` (epoch s). Waits until that slot's end plus ``grace`` at most. Returns
    the seconds from the recovery to the last of those snapshots."""
    first = math.ceil(recovered_at / SLOT) * SLOT
    end = first + SLOT
    lacking: list[str] = baseline.images
    newest = first

    def all_have_one() -> bool:
        nonlocal lacking, newest
        now = mirror_snapshots(cluster, baseline.pools)
        lacking = []
        for spec in baseline.images:
            inside = [s.at for s in baseline.new_primary(spec, now) if first <= s.at < end]
            if inside:
                newest = max(newest, min(inside))
            else:
                lacking.append(spec)
        return not lacking

    if not _wait(all_have_one, end + grace - time.time(), interval=3.0):
        raise AssertionError(
            f"scheduling did not resume within one slot of the recovery at {_hms(recovered_at)}:"
            f" waited until {_hms(end + grace)} (the slot {_hms(first)}-{_hms(end)} plus "
            f"{grace:g}s) and {len(lacking)} of {len(baseline.images)} image(s) have no mirror "
            f"snapshot from that slot: {lacking[:10]}"
        )
    return newest - recovered_at


def check_nothing_left_open(cluster: Cluster, timeout: float = 60) -> dict[str, float]:
    """Once no snapshot request is in flight, the driver holds no image handle and no ioctx:
    ``open_images`` and ``open_ioctxs`` are 0 in a scrape with ``requests_in_flight`` 0.
    Waits up to ``timeout`` s for such a scrape. Returns it."""
    last: dict[str, float] | None = None
    keys = ("requests_in_flight", "open_images", "open_ioctxs")

    def idle_and_closed() -> bool:
        nonlocal last
        try:
            samples = read_metrics(cluster.metrics_url(active_mgr(cluster)))
        except ClusterError:
            return False
        if samples is None:
            return False
        last = {k: samples.get("rbd_snapsched_" + k, math.nan) for k in keys}
        return last["requests_in_flight"] == 0 and last["open_images"] == 0 == last["open_ioctxs"]

    if not _wait(idle_and_closed, timeout):
        raise AssertionError(
            f"no scrape within {timeout:g}s showed nothing in flight with no image or ioctx "
            f"open: last {last}"
        )
    assert last is not None
    return last


class MgrLogs:
    """Every mgr's log from now on (a failover moves the module to another mgr's log)."""

    def __init__(self, cluster: Cluster) -> None:
        self.offsets: dict[Path, int] = {}
        for mgr_id in cluster.mgr_ids:
            path = cluster.log_dir / f"mgr.{mgr_id}.log"
            self.offsets[path] = path.stat().st_size if path.exists() else 0

    def new_lines(self) -> list[str]:
        lines: list[str] = []
        for path, offset in self.offsets.items():
            if not path.exists():
                continue
            with path.open("rb") as f:
                f.seek(offset)
                lines.extend(f.read().decode(errors="replace").splitlines())
        return lines

    def tails(self, most: int = 20) -> str:
        """The last ``most`` new lines of each mgr's log, every subsystem (what a mgr did)."""
        parts = []
        for path, offset in self.offsets.items():
            if path.exists():
                with path.open("rb") as f:
                    f.seek(offset)
                    lines = f.read().decode(errors="replace").splitlines()[-most:]
                parts.append(
                    f"--- {path.name} (last {len(lines)} new lines) ---\n" + "\n".join(lines)
                )
        return "\n".join(parts)

    def module_lines(self, pattern: str) -> list[str]:
        """Our module's new lines matching the regular expression ``pattern``."""
        regex = re.compile(pattern)
        return [
            line for line in self.new_lines() if "[rbd_snapsched " in line and regex.search(line)
        ]


def check_fault_logged(
    logs: MgrLogs, pattern: str, level: str | None = None, most: int | None = None
) -> str:
    """The module logged a line matching ``pattern`` (at ``level``: INFO, WARNING, ERROR...)
    since ``logs`` was made; at most ``most`` such lines, if given. Returns the first.

    Waits up to LOG_WAIT for it: a Ceph daemon writes its log from a thread of its own, so a
    line can reach the file after the check starts. (A line that never came, twice, was not
    that: Ceph's standby module removed the new active module's log handler; see
    ``StandbyModule._unconfigure_logging``.) A failure shows every mgr's new lines."""

    def matching() -> list[str]:
        lines = logs.module_lines(pattern)
        if level is not None:
            lines = [line for line in lines if f"[rbd_snapsched {level} " in line]
        return lines

    _wait(lambda: bool(matching()), LOG_WAIT)
    lines = matching()
    ours = logs.module_lines(".")
    assert lines, (
        f"no rbd_snapsched {level or 'any-level'} line matching {pattern!r} in the mgr logs "
        f"within {LOG_WAIT:.0f} s; the module logged meanwhile ({len(ours)} lines, last 15):\n"
        + "\n".join(ours[-15:])
        + "\n"
        + logs.tails()
    )
    if most is not None:
        assert len(lines) <= most, f"{len(lines)} lines match {pattern!r} (at most {most}):\n" + (
            "\n".join(lines[:20])
        )
    return lines[0]


@dataclass(frozen=True)
class FaultReport:
    """What ``check_after_fault`` observed, for the test's output and the README's figures."""

    log_line: str
    resumed_after: float  # seconds from the recovery to the last image's first new snapshot
    heartbeat: float
    metrics: dict[str, float]

    def __str__(self) -> str:
        return (
            f"resumed {self.resumed_after:.1f}s after recovery; nothing left open "
            f"{self.metrics}; logged: {self.log_line.strip()}"
        )


def check_after_fault(
    cluster: Cluster,
    baseline: Baseline,
    *,
    recovered_at: float,
    logs: MgrLogs,
    log_pattern: str,
    log_level: str | None = None,
    most_log_lines: int | None = None,
) -> FaultReport:
    """Every check, in turn, after a fault the cluster recovered from at ``recovered_at``
    (epoch s): alive, schedules intact, resumed within one slot, at most one snapshot per
    image per slot, nothing left open, the fault logged. Takes up to about two slots."""
    heartbeat = check_scheduler_alive(cluster, recovered_at)
    check_schedules_intact(cluster, baseline)
    resumed = check_resumed(cluster, baseline, recovered_at)
    check_one_snapshot_per_slot(cluster, baseline)
    opened = check_nothing_left_open(cluster)
    line = check_fault_logged(logs, log_pattern, log_level, most_log_lines)
    report = FaultReport(line, resumed, heartbeat, opened)
    print(f"[fault] {report}")
    return report


# -- fault helpers ----------------------------------------------------------------------------


def keep_osd_data_across_restart(cluster: Cluster) -> None:
    """Make a stopped OSD keep its data: a memstore OSD saves its store only when it shuts down
    cleanly, and by default (``osd_fast_shutdown``) it does not: restarted, it comes back
    empty, every PG stale and every client op hung (measured on Pacific 16.2.15)."""
    cluster.run("ceph", "config", "set", "osd", "osd_fast_shutdown", "false")


def stop_osd(cluster: Cluster) -> None:
    """Stop ``osd.0`` (SIGTERM; with ``keep_osd_data_across_restart`` it saves its store)."""
    cluster._stop("osd.0")


def start_osd(cluster: Cluster, timeout: float = 60) -> None:
    """Start ``osd.0`` again and wait until its PGs are active (HEALTH_OK)."""
    cluster._spawn("osd.0", "ceph-osd", "-i", "0")
    cluster.wait_healthy(timeout)
