"""The soak's cluster side: boot, set up, run the script, observe, and hand over to the judge.

Per cluster (a ``Side``), in threads of their own: the script's two lanes (faults, operations),
a snapshot poller (every image's mirror snapshots, read in one python3 process of the cluster's
runtime, as ``tests/cluster/fault_checks.py`` does), a ``status`` prober, a mgr watcher (the mgr
map, /proc of the active mgr each minute, mgr processes that died unasked, which it restarts as a
supervisor would), the schedule listing against the model, and (ours) the open-handle gauges
once a pass is idle. Everything judged comes from the cluster's own data; the module's word is
used only for its gauges of what it holds open.

Both clusters run the script at the same offsets from one start; each event is printed when it
runs, with its time and outcome.
"""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from tests.cephcluster import MGR_START_TIMEOUT, Cluster, ClusterError, _alive
from tests.cluster.fault_checks import (
    keep_osd_data_across_restart,
    read_metrics,
    run_python,
    stop_osd,
)
from tests.cluster.helpers import in_parallel, make_namespace
from tests.soak.accounting import (
    Answer,
    Fault,
    Observations,
    ProcSample,
    Snap,
    account,
    hms,
    latency,
    lives,
    recoveries,
    slope,
)
from tests.soak.model import ClusterModel, initial_model
from tests.soak.report import Bounds, ClusterResult
from tests.soak.script import Event, Layout, Level

OURS, STOCK = "ours", "rbd_support"
SCHED = ("rbd", "mirror", "snapshot", "schedule")
RAW = ("ceph", "rbd", "mirror", "snapshot", "schedule")
BEACON_GRACE = 10  # seconds: a killed active mgr is failed over after this (default 30)
WARMUP = 120.0  # seconds of each active mgr's samples left out of the slopes
SUPERVISOR_DELAY = 10.0  # seconds before a mgr that died unasked is started again
COMMAND_TIMEOUT = 60.0
AMBIGUOUS_ERRNOS = (errno.ENOENT, errno.EAGAIN, errno.EIO, errno.ESHUTDOWN, errno.ETIMEDOUT)

# argv: JSON [[pool, namespace, name], ...]. 1 MiB images, snapshot mirroring enabled (which
# takes each one's first mirror snapshot); prints {"pool/namespace/name": image id}.
CREATE_SCRIPT = r"""
import json, sys
from concurrent.futures import ThreadPoolExecutor
import rados, rbd
wanted = json.loads(sys.argv[1])
client = rados.Rados(conffile="")
client.connect()
def make(entry):
    pool, ns, name = entry
    ioctx = client.open_ioctx(pool)
    ioctx.set_namespace(ns)
    try:
        rbd.RBD().create(ioctx, name, 1 << 20)
        with rbd.Image(ioctx, name) as image:
            image.mirror_image_enable(rbd.RBD_MIRROR_IMAGE_MODE_SNAPSHOT)
            return "%s/%s/%s" % (pool, ns, name), image.id()
    finally:
        ioctx.close()
with ThreadPoolExecutor(16) as executor:
    made = dict(executor.map(make, wanted))
client.shutdown()
print(json.dumps(made))
"""

# argv: pools. Prints {"pools": {name: id}, "images": [{pool, namespace, name, id, snaps:
# [[snap id, state, created epoch s], ...]}]} for every image of every namespace, mirror
# snapshots only; state "primary", "demoted" or "non_primary".
POLL_SCRIPT = r"""
import calendar, json, sys
import rados, rbd
client = rados.Rados(conffile="")
client.connect()
states = {
    rbd.RBD_SNAP_MIRROR_STATE_PRIMARY: "primary",
    rbd.RBD_SNAP_MIRROR_STATE_PRIMARY_DEMOTED: "demoted",
}
found = {"pools": {}, "images": []}
for pool in sys.argv[1:]:
    ioctx = client.open_ioctx(pool)
    found["pools"][pool] = ioctx.get_pool_id()
    for ns in [""] + sorted(rbd.RBD().namespace_list(ioctx)):
        ioctx.set_namespace(ns)
        for name in rbd.RBD().list(ioctx):
            try:
                with rbd.Image(ioctx, name, read_only=True) as image:
                    snaps = []
                    for snap in image.list_snaps():
                        if snap.get("namespace") != rbd.RBD_SNAP_NAMESPACE_TYPE_MIRROR:
                            continue
                        state = states.get(snap["mirror"]["state"], "non_primary")
                        created = image.get_snap_timestamp(snap["id"])
                        snaps.append([snap["id"], state, calendar.timegm(created.timetuple())])
                    found["images"].append(
                        {"pool": pool, "namespace": ns, "name": name, "id": image.id(),
                         "snaps": snaps})
            except rbd.ImageNotFound:
                continue
    ioctx.close()
client.shutdown()
print(json.dumps(found))
"""


def trim_and_measure(pid: int) -> int | None:
    """``pid``'s RSS (KiB) right after glibc's ``malloc_trim(0)`` in it, through gdb (None if
    that failed). ceph-mgr uses glibc's malloc: memory its threads freed stays in per-thread
    arenas, so the raw RSS climbs for minutes after a start or a change of load (a higher cap:
    more requests at once) and then levels, though nothing leaks. Trimmed, it counts what is
    in use (and what cannot be returned), which is what a leak grows. The libraries are read
    from the process's own root (a release's chroot)."""
    argv = ["gdb", "-batch", "-nx", "-ex", f"set sysroot /proc/{pid}/root"]
    argv += ["-ex", f"attach {pid}", "-ex", "call (int)malloc_trim(0)", "-ex", "detach"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        # gdb's status is its last command's (detach): the call's own result line says it ran
        if done.returncode != 0 or not any(
            line.startswith("$1 = ") for line in done.stdout.splitlines()
        ):
            return None
        return int(proc_status(pid)["VmRSS"].split()[0])
    except (OSError, subprocess.TimeoutExpired, KeyError, ValueError, IndexError):
        return None


def proc_status(pid: int) -> dict[str, str]:
    """``/proc/<pid>/status`` as field -> value (OSError if the process is gone)."""
    fields: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def say(msg: str) -> None:
    print(f"[{hms(time.time())}] {msg}", flush=True)


@dataclass(frozen=True)
class Settings:
    minutes: float
    release: str | None = None
    upstream: bool = True  # also boot the stock rbd_support cluster
    bounds: Bounds = field(default_factory=Bounds)
    poll_every: float = 20.0
    status_every: float = 10.0
    listing_every: float = 120.0
    keep: bool = False
    # RSS judged after malloc_trim(0) in the active mgr (gdb, about 0.5 s of pause a minute)
    trim: bool = False


class Side:
    """One cluster under the soak: its model, what was recorded, and its threads."""

    def __init__(self, label: str, cluster: Cluster, layout: Layout, settings: Settings) -> None:
        self.label = label
        self.cluster = cluster
        self.layout = layout
        self.settings = settings
        self.ours = label == OURS
        self.module = "rbd_snapsched" if self.ours else "rbd_support"
        self.bound = settings.bounds.slot
        self.lock = threading.Lock()  # the records below
        self.ops_lock = threading.Lock()  # a command and its model update; a listing check
        self.model: ClusterModel = initial_model(layout, self.bound, time.time())
        self.seen = Observations()
        self.faults: list[Fault] = []
        self.answers: list[Answer] = []
        self.proc: list[ProcSample] = []
        self.run_id = 0
        self.active: tuple[str, int | None] | None = None
        self.active_changes = 0
        self.restarts_caused = 0
        self.crashes: list[str] = []
        self.expect_dead: set[str] = set()
        self.died: dict[str, float] = {}  # mgr id -> when it was seen dead unasked
        self.listing_checks = 0
        self.listing_problems: list[str] = []
        self.open_checks: int | None = 0 if self.ours else None
        self.open_problems: list[str] = []
        self.refused: Counter[str] = Counter()
        self.notes: list[str] = []
        self.refresh_interval = 60.0  # ours: the option's value in force
        # While a fault lasts (and 10 s after), a command that fails may have been applied
        # all the same (sent again to a new active mgr, which then refuses the repeat): its
        # outcome is unknown, not failed.
        self.faulting = False
        self.calm_after = 0.0
        self.crash_dir = cluster.root / "crash"
        self.crashes_before = self._crash_entries()

    # -- commands ---------------------------------------------------------------------------

    def cli(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> tuple[str, str]:
        """Run a CLI: ("ok" | "failed" | "unknown", last line of its error output)."""
        try:
            proc = self.cluster.run(*args, check=False, timeout=timeout)
        except ClusterError as e:
            return "unknown", str(e).splitlines()[0][-160:]
        if proc.returncode == 0:
            return "ok", ""
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return "failed", f"rc {proc.returncode}: {lines[-1][-160:] if lines else ''}"

    def answers_commands(self) -> bool:
        proc = self.cluster.run(*RAW, "list", check=False, timeout=30)
        return proc.returncode == 0

    def active_mgr(self) -> tuple[str, int | None] | None:
        try:
            dump = self.cluster.ceph_json("mgr", "dump", timeout=30)
        except (ClusterError, ValueError):
            return None
        name = str(dump.get("active_name") or "")
        if not name or not dump.get("available"):
            return None
        return name, self.cluster._pid(f"mgr.{name}")

    def client_addr(self) -> str | None:
        """The module's librados client as the mgr map lists it (helpers.module_client_addr,
        for either module)."""
        dump = self.cluster.ceph_json("mgr", "dump", timeout=30)
        for client in dump.get("active_clients", []):
            if client.get("name") == self.module:
                addr = client["addrvec"][0]
                return f"{addr['addr']}/{addr['nonce']}"
        return None

    def option(self, name: str) -> str:
        return f"mgr/{self.module}/{name}"

    def _crash_entries(self) -> set[str]:
        return {p.name for p in self.crash_dir.glob("*")} if self.crash_dir.is_dir() else set()

    # -- set-up -----------------------------------------------------------------------------

    def setup(self) -> None:
        c = self.cluster
        c.run("ceph", "config", "set", "mon", "mon_mgr_beacon_grace", str(BEACON_GRACE))
        keep_osd_data_across_restart(c)
        in_parallel(*(partial(c.create_rbd_pool, pool) for pool in self.layout.pools))
        in_parallel(
            *(
                partial(make_namespace, c, pool, ns)
                for pool in self.layout.pools
                for ns in self.layout.namespaces
            )
        )
        wanted = [[s.pool, s.namespace, s.handle] for s in self.layout.images]
        began = time.time()
        ids = json.loads(run_python(c, CREATE_SCRIPT, json.dumps(wanted), timeout=600))
        made = time.time()
        for spot in self.layout.images:
            self.model.images[spot.handle].image_id = ids[
                f"{spot.pool}/{spot.namespace}/{spot.handle}"
            ]
            self.seen.made_by_events.setdefault(spot.handle, []).append((began, made))
        for entry in c.ceph_json("osd", "pool", "ls", "detail"):
            self.model.pool_ids[str(entry["pool_name"])] = int(entry["pool_id"])
        for level, minutes in self.layout.schedules:
            outcome, why = self.cli(*RAW, "add", self.model.spec(level), f"{minutes}m")
            if outcome != "ok":
                raise ClusterError(f"{self.label}: add {level} {minutes}m: {outcome} {why}")
        eligible = sum(1 for h in self.model.images if self.model.eligible(h))
        deadline = time.monotonic() + 180
        listed = -1
        while time.monotonic() < deadline:
            listed = self.status_count()
            if listed == eligible:
                break
            time.sleep(2)
        say(f"{self.label}: set up, {listed} of {eligible} eligible images in `status`")
        self.poll()

    def status_count(self) -> int:
        proc = self.cluster.run(*RAW, "status", check=False, timeout=60)
        if proc.returncode != 0:
            return -1
        return len(json.loads(proc.stdout).get("scheduled_images", []))

    # -- observation --------------------------------------------------------------------------

    def poll(self) -> None:
        began = time.time()
        try:
            found = json.loads(
                run_python(self.cluster, POLL_SCRIPT, *self.layout.pools, timeout=120)
            )
        except (ClusterError, ValueError) as e:
            say(f"{self.label}: snapshot poll failed: {str(e).splitlines()[0]}")
            return
        with self.lock:
            for image in found["images"]:
                handle = self.model.handle_of(
                    image["pool"], image["namespace"], image["name"], image["id"]
                )
                if handle is None:
                    continue
                if self.model.images[handle].image_id is None:
                    self.model.images[handle].image_id = image["id"]
                snaps = [Snap(int(i), float(at), str(state)) for i, state, at in image["snaps"]]
                self.seen.add(handle, began, snaps)

    def probe_status(self, what: str, *args: str) -> None:
        began = time.time()
        try:
            proc = self.cluster.run(*args, check=False, timeout=COMMAND_TIMEOUT)
            ok = proc.returncode == 0
        except ClusterError:
            ok = False
        with self.lock:
            self.answers.append(Answer(began, time.time() - began, ok, what))

    def watch_mgrs(self) -> None:
        """The active mgr (a change starts a new run of samples), mgr processes that died
        without the script killing them (a crash; started again after a delay), crash dumps."""
        now = time.time()
        active = self.active_mgr()
        with self.lock:
            if active is not None and active != self.active:
                if self.active is not None:
                    self.active_changes += 1
                self.active = active
                self.run_id += 1
        for mgr_id in self.cluster.mgr_ids:
            with self.lock:
                expected = mgr_id not in self.expect_dead
                seen_dead = self.died.get(mgr_id)
            if not expected:
                continue
            pid = self.cluster._pid(f"mgr.{mgr_id}")
            if pid is not None and _alive(pid):  # _alive reaps a dead child of ours
                continue
            if seen_dead is None:
                with self.lock:
                    if mgr_id in self.expect_dead:  # killed by the script meanwhile
                        continue
                    self.died[mgr_id] = now
                    self.crashes.append(f"mgr.{mgr_id} died at {hms(now)} unasked")
                say(f"{self.label}: CRASH? mgr.{mgr_id} is gone and the script did not kill it")
            elif now - seen_dead >= SUPERVISOR_DELAY:
                say(f"{self.label}: restarting mgr.{mgr_id} (supervisor)")
                self.cluster._start_mgr(mgr_id)
                with self.lock:
                    self.died.pop(mgr_id, None)

    @property
    def rss_value(self) -> str:
        """The RSS the slope is judged on: after malloc_trim when trimming."""
        return "trimmed_kib" if self.settings.trim else "rss_kib"

    def sample_proc(self) -> None:
        with self.lock:
            active, run = self.active, self.run_id
        if active is None or active[1] is None:
            return
        try:
            fields = proc_status(active[1])
            sample = ProcSample(
                time.time(),
                run,
                int(fields["VmRSS"].split()[0]),
                int(fields["Threads"]),
                trim_and_measure(active[1]) if self.settings.trim else None,
            )
        except (OSError, KeyError, ValueError, IndexError):
            return
        with self.lock:
            self.proc.append(sample)

    def check_open(self) -> None:
        """Ours: once no request is in flight (or timed out in librbd), no image handle or
        ioctx is open (``fault_checks.check_nothing_left_open``, one scrape at a time)."""
        with self.lock:
            active = self.active
        if active is None:
            return
        for _ in range(6):
            try:
                samples = read_metrics(self.cluster.metrics_url(active[0]))
            except (OSError, ValueError):
                samples = None
            if samples is not None:
                got = {
                    k: samples.get("rbd_snapsched_" + k, -1.0)
                    for k in (
                        "requests_in_flight",
                        "requests_waiting",
                        "requests_timed_out_in_flight",
                        "open_images",
                        "open_ioctxs",
                    )
                }
                if got["requests_in_flight"] == got["requests_waiting"] == 0 and (
                    got["requests_timed_out_in_flight"] <= 0
                ):
                    with self.lock:
                        assert self.open_checks is not None
                        self.open_checks += 1
                        if got["open_images"] != 0 or got["open_ioctxs"] != 0:
                            problem = f"at {hms(time.time())} on mgr {active[0]}: {got}"
                            self.open_problems.append(problem)
                            say(f"{self.label}: LEFT OPEN {problem}")
                    return
            time.sleep(2)

    def check_listing(self) -> None:
        with self.ops_lock:
            out = self.cluster.run(
                *SCHED, "ls", "-R", "--format", "json", check=False, timeout=COMMAND_TIMEOUT
            )
            if out.returncode != 0:
                return
            try:
                rows = json.loads(out.stdout or "[]")
            except ValueError:
                return
            with self.lock:
                problems = self.model.check_listing(rows, time.time())
                self.listing_checks += 1
                if problems:
                    self.listing_problems.append(f"at {hms(time.time())}: {'; '.join(problems)}")
        for problem in problems:
            say(f"{self.label}: SCHEDULES DIFFER {problem}")

    # -- the script's events ----------------------------------------------------------------

    def settle(self, gained: bool) -> float:
        """Seconds after a change before its images' slots are due again: ours acts on
        schedule commands at once and finds new, promoted and re-enabled images at its next
        refresh; rbd_support refreshes every 60 s."""
        if not self.ours:
            return 75.0
        return self.refresh_interval + 15.0 if gained else 10.0

    def do(self, event: Event) -> str:
        """Run one event; what happened, for the log."""
        handler: Callable[[Event], str] = getattr(self, f"_{event.kind}")
        return handler(event)

    def outcome_of(self, outcome: str, why: str, began: float) -> str:
        """``failed`` is ``unknown`` during a fault (see ``faulting``) when its errno is one
        a repeat or a module still starting gives (ENOENT: removed already; EAGAIN; EIO;
        ESHUTDOWN; ETIMEDOUT); any other refusal does not depend on what came before."""
        with self.lock:
            faulty = self.faulting or began < self.calm_after
        repeatable = why.split(":")[0] in {f"rc {e}" for e in AMBIGUOUS_ERRNOS}
        return "unknown" if outcome == "failed" and faulty and repeatable else outcome

    def _fault(self, kind: str, began: float, ended: float | None, note: str = "") -> str:
        settle = 5.0 if self.ours else 75.0
        with self.lock:
            self.faulting = False
            self.calm_after = (ended or math.inf) + 10.0
            self.faults.append(Fault(kind, began, ended, note))
            self.model.disturb(
                began - self.bound, (ended or began + 600.0) + settle, f"fault:{kind}"
            )
        if ended is None:
            return f"NOT recovered {note}".rstrip()
        return f"recovered after {ended - began:.1f}s {note}".rstrip()

    def _begin_fault(self) -> float:
        with self.lock:
            self.faulting = True
        return time.time()

    def _wait(self, check: Callable[[], bool], timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if check():
                    return time.time()
            except (ClusterError, ValueError, KeyError):
                pass
            time.sleep(0.5)
        return None

    def _takeover(self, old: str) -> float | None:
        def taken() -> bool:
            now = self.active_mgr()
            return now is not None and now[0] != old and self.answers_commands()

        return self._wait(taken, MGR_START_TIMEOUT)

    def _mgr_failover(self, event: Event) -> str:
        began = self._begin_fault()
        active = self.active_mgr()
        if active is None:
            return self._fault(event.kind, began, None, "(no active mgr to fail)")
        self.cli("ceph", "mgr", "fail", active[0])
        with self.lock:
            self.restarts_caused += 1
        return self._fault(event.kind, began, self._takeover(active[0]), f"(mgr.{active[0]})")

    def _mgr_kill(self, event: Event) -> str:
        began = self._begin_fault()
        active = self.active_mgr()
        pid = None if active is None else active[1]
        if active is None or pid is None:
            return self._fault(event.kind, began, None, "(no active mgr to kill)")
        name = active[0]
        with self.lock:
            self.expect_dead.add(name)
            self.restarts_caused += 1
        os.kill(pid, signal.SIGKILL)
        self._wait(lambda: not _alive(pid), 30)  # reaped, if it is a child of ours
        ended = self._takeover(name)
        time.sleep(max(0.0, began + event.duration - time.time()))
        self.cluster._start_mgr(name)
        with self.lock:
            self.expect_dead.discard(name)
        return self._fault(event.kind, began, ended, f"(mgr.{name}, restarted)")

    def _blocklist(self, event: Event) -> str:
        began = self._begin_fault()
        ended: float | None = began
        done = 0
        for _ in range(max(1, event.count)):
            old = self.client_addr()
            if old is None:
                break
            self.cli("ceph", "osd", "blocklist", "add", old)
            done += 1

            def replaced(old: str | None = old) -> bool:
                return self.client_addr() not in (old, None)

            ended = self._wait(replaced, 60)
            if ended is None:
                break
        note = f"({done} blocklisting(s) of the {self.module} client)"
        if not done:
            note = f"(no {self.module} client in the mgr map)"
        return self._fault(event.kind, began, ended, note)

    def _osd_restart(self, event: Event) -> str:
        began = self._begin_fault()
        stop_osd(self.cluster)
        time.sleep(max(0.0, began + event.duration - time.time()))
        self.cluster._spawn("osd.0", "ceph-osd", "-i", "0")
        return self._fault(event.kind, began, self._wait(self._pgs_active, 180))

    def _pgs_active(self) -> bool:
        pgmap = self.cluster.ceph_json("status", timeout=30)["pgmap"]
        states = {s["state_name"]: int(s["count"]) for s in pgmap.get("pgs_by_state", [])}
        return bool(states.get("active+clean", 0) == int(pgmap["num_pgs"]) > 0)

    def _mon_restart(self, event: Event) -> str:
        began = self._begin_fault()
        self.cluster._stop("mon.a")
        time.sleep(max(0.0, began + event.duration - time.time()))
        self.cluster._spawn("mon.a", "ceph-mon", "-i", "a")
        return self._fault(event.kind, began, self._wait(self.cluster._has_quorum, 120))

    def _schedule(self, event: Event, add: bool) -> str:
        assert event.level is not None
        level, interval = event.level, event.interval
        with self.ops_lock:
            every = [f"{interval}m"] if interval else []
            if event.cli == "rbd":
                verb = "add" if add else "rm"
                args = [*SCHED, verb, *self.model.rbd_args(level), *every]
            else:
                args = [*RAW, "add" if add else "remove", self.model.spec(level), *every]
            began = time.time()
            outcome, why = self.cli(*args)
            outcome = self.outcome_of(outcome, why, began)
            with self.lock:
                self.model.schedule_change(
                    began, level, interval, add=add, outcome=outcome, settle=self.settle(False)
                )
        if outcome != "ok":
            self.refused[f"{event.kind} ({outcome})"] += 1
        return f"{outcome} {why}".rstrip()

    def _schedule_add(self, event: Event) -> str:
        return self._schedule(event, True)

    def _schedule_remove(self, event: Event) -> str:
        return self._schedule(event, False)

    def _image(
        self, event: Event, *args: str, change: Callable[[float], None], gained: bool,
        made_snapshot: bool,
    ) -> str:  # fmt: skip
        """Run an image command; on success apply ``change`` to the model and disturb the
        image's slots around it."""
        assert event.image is not None
        with self.ops_lock:
            began = time.time()
            outcome, why = self.cli(*args)
            outcome = self.outcome_of(outcome, why, began)
            ended = time.time()
            if outcome == "ok":
                with self.lock:
                    change(ended)
                    if made_snapshot:
                        self.seen.made_by_events.setdefault(event.image, []).append((began, ended))
                    start = ended if gained else began - self.bound
                    self.model.disturb(
                        start, ended + self.settle(gained), f"image:{event.kind}", [event.image]
                    )
            elif outcome == "unknown":
                with self.lock:
                    names = {self.model.name_of(event.image), event.new_name or ""}
                    self.model.image_unsure(began, event.image, event.kind, names - {""})
        if outcome != "ok":
            self.refused[f"{event.kind} ({outcome})"] += 1
        return f"{outcome} {why}".rstrip()

    def _spec(self, handle: str) -> str:
        spot = self.model.images[handle].spot
        return Level(spot.pool, spot.namespace or None, handle).spec(self.model.name_of(handle))

    def _image_create(self, event: Event) -> str:
        spot = event.spot
        assert spot is not None
        spec = Level(spot.pool, spot.namespace or None, spot.handle).spec()
        with self.ops_lock:
            began = time.time()
            outcome, why = self.cli("rbd", "create", "--size", "1M", spec)
            if outcome == "ok":
                outcome, why = self.cli("rbd", "mirror", "image", "enable", spec, "snapshot")
                mirrored = outcome == "ok"
                info = self.cluster.run("rbd", "info", "--format", "json", spec, check=False)
                image_id = json.loads(info.stdout)["id"] if info.returncode == 0 else None
                ended = time.time()
                with self.lock:
                    self.model.image_created(ended, spot, image_id)
                    self.model.image_mirrored(ended, spot.handle, mirrored)
                    self.seen.made_by_events.setdefault(spot.handle, []).append((began, ended))
                    self.model.disturb(
                        ended, ended + self.settle(True), "image:image_create", [spot.handle]
                    )
        if outcome != "ok":
            self.refused[f"{event.kind} ({outcome})"] += 1
        return f"{outcome} {why}".rstrip()

    def _image_delete(self, event: Event) -> str:
        assert event.image is not None
        handle = event.image
        prune = 90.0 if not self.ours else self.refresh_interval + 30.0
        return self._image(
            event, "rbd", "rm", self._spec(handle),
            change=lambda at: self.model.image_deleted(at, handle, prune),
            gained=False, made_snapshot=False,
        )  # fmt: skip

    def _image_rename(self, event: Event) -> str:
        assert event.image is not None and event.new_name is not None
        handle, name = event.image, event.new_name
        spot = self.model.images[handle].spot
        target = Level(spot.pool, spot.namespace or None, handle).spec(name)
        learned = 90.0 if not self.ours else self.refresh_interval + 30.0  # the next refresh
        return self._image(
            event, "rbd", "rename", self._spec(handle), target,
            change=lambda at: self.model.image_renamed(at, handle, name, learned),
            gained=not self.ours, made_snapshot=False,
        )  # fmt: skip

    def _image_demote(self, event: Event) -> str:
        assert event.image is not None
        handle = event.image
        return self._image(
            event, "rbd", "mirror", "image", "demote", self._spec(handle),
            change=lambda at: self.model.image_primary(at, handle, False),
            gained=False, made_snapshot=False,
        )  # fmt: skip

    def _image_promote(self, event: Event) -> str:
        assert event.image is not None
        handle = event.image
        return self._image(
            event, "rbd", "mirror", "image", "promote", self._spec(handle),
            change=lambda at: self.model.image_primary(at, handle, True),
            gained=True, made_snapshot=True,
        )  # fmt: skip

    def _mirror_disable(self, event: Event) -> str:
        assert event.image is not None
        handle = event.image
        return self._image(
            event, "rbd", "mirror", "image", "disable", self._spec(handle),
            change=lambda at: self.model.image_mirrored(at, handle, False),
            gained=False, made_snapshot=False,
        )  # fmt: skip

    def _mirror_enable(self, event: Event) -> str:
        assert event.image is not None
        handle = event.image
        return self._image(
            event, "rbd", "mirror", "image", "enable", self._spec(handle), "snapshot",
            change=lambda at: self.model.image_mirrored(at, handle, True),
            gained=True, made_snapshot=True,
        )  # fmt: skip

    def _pause(self, event: Event) -> str:
        return self._pausing(event, True)

    def _resume(self, event: Event) -> str:
        return self._pausing(event, False)

    def _pausing(self, event: Event, paused: bool) -> str:
        assert event.level is not None
        level = event.level
        with self.ops_lock:
            began = time.time()
            outcome, why = self.cli(*RAW, event.kind, self.model.spec(level))
            if outcome == "ok":
                with self.lock:
                    self.model.pause(time.time(), level, paused)
                    start = began - self.bound if paused else began
                    self.model.disturb(
                        start,
                        time.time() + 10.0,
                        f"{event.kind} {level}",
                        self.model.covered(level),
                    )
            elif self.outcome_of(outcome, why, began) == "unknown":
                outcome = "unknown"
                with self.lock:
                    cause = f"unknown outcome: {event.kind} {level}"
                    self.model.disturb(
                        began - self.bound, math.inf, cause, self.model.covered(level)
                    )
        if outcome != "ok":
            self.refused[f"{event.kind} ({outcome})"] += 1
        return f"{outcome} {why}".rstrip()

    def _option(self, event: Event) -> str:
        assert event.option is not None and event.value is not None
        if not self.ours and event.option != "max_concurrent_snap_create":
            self.refused[f"option {event.option} (none in rbd_support)"] += 1
            return "n/a: rbd_support has no such option"
        began = time.time()
        outcome, why = self.cli(
            "ceph", "config", "set", "mgr", self.option(event.option), event.value
        )
        value: str | None = event.value
        if outcome != "ok":
            self.refused[f"{event.kind} ({outcome})"] += 1
            value = self._option_value(event.option)  # it may have been set all the same
        if value is not None:
            with self.lock:
                if event.option == "refresh_interval":
                    self.refresh_interval = float(value)
                elif event.option == "stagger" and self.model.stagger != (value == "true"):
                    self.model.set_stagger(time.time(), value == "true")
                    self.model.disturb(began - self.bound, time.time() + 10.0, "option stagger")
        return f"{outcome} {why}".rstrip()

    def _option_value(self, option: str) -> str | None:
        """The option's value as the mon holds it, asked for up to two minutes."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                proc = self.cluster.run(
                    "ceph", "config", "get", "mgr", self.option(option), check=False, timeout=30
                )
            except ClusterError:
                continue
            if proc.returncode == 0:
                return proc.stdout.strip()
            time.sleep(5)
        return None

    def _clients(self, event: Event) -> str:
        calls = [
            ("status (ceph)", (*RAW, "status")),
            ("ls -R (rbd)", (*SCHED, "ls", "-R", "--format", "json")),
            ("status (rbd)", (*SCHED, "status", "--format", "json")),
            ("list (ceph)", (*RAW, "list")),
        ]
        chosen = [calls[i % len(calls)] for i in range(event.count)]
        with ThreadPoolExecutor(len(chosen)) as pool:
            list(pool.map(lambda c: self.probe_status(f"client {c[0]}", *c[1]), chosen))
        with self.lock:
            took = [a.seconds for a in self.answers[-len(chosen) :]]
            failed = sum(1 for a in self.answers[-len(chosen) :] if not a.ok)
        return f"{len(chosen)} answered in {max(took):.1f}s at most, {failed} failed"

    def interim(self, start: float) -> None:
        """A provisional judgement of the slots seen so far, printed, so that a long run shows
        trouble when it starts (``result`` gives the final one: commands whose outcome is
        still unknown may explain a miss by then)."""
        with self.lock:
            if not self.seen.last_seen:
                return
            upto = max(self.seen.last_seen.values()) - self.bound
            if upto < start:
                return
            tally = account(
                self.model.timeline,
                self.seen,
                self.model.disturbances,
                start=start,
                end=upto,
                bound=self.bound,
            )
        say(
            f"{self.label}: so far (provisional, slots to {hms(upto)}): {tally.due} judged, "
            f"{tally.met} met, late {dict(tally.late)}, missed {dict(tally.missed)}, "
            f"{len(tally.doubled)} doubled"
        )
        for violation in tally.violations[-5:]:
            say(f"{self.label}:   e.g. {violation}")

    # -- results ----------------------------------------------------------------------------

    def result(self, start: float, end: float) -> ClusterResult:
        with self.lock:
            self.model.finish(time.time())
            tally = account(
                self.model.timeline,
                self.seen,
                self.model.disturbances,
                start=start,
                end=end,
                bound=self.bound,
            )
            spans = [d for d in self.model.disturbances if d.cause.startswith("fault:")]
            crashes = list(self.crashes) + [
                f"crash dump {name}" for name in sorted(self._crash_entries() - self.crashes_before)
            ]
            notes = list(self.notes)
            if not self.ours:
                notes.append(
                    "pause/resume and the options refresh_interval and stagger do not exist in "
                    "rbd_support: those events were refused or skipped there (commands refused)"
                )
                notes.append("rbd_support has no open-handle gauges: nothing-left-open not checked")
            return ClusterResult(
                name=self.label,
                tally=tally,
                recoveries=recoveries(self.faults, tally),
                rss=slope(self.proc, self.rss_value, warmup=WARMUP),
                rss_raw=slope(self.proc, "rss_kib", warmup=WARMUP),
                rss_trimmed=self.settings.trim,
                threads=slope(self.proc, "threads", warmup=WARMUP),
                lives=lives(self.proc, warmup=WARMUP, value=self.rss_value),
                status=latency(self.answers, self.settings.bounds.status, spans),
                restarts_caused=self.restarts_caused,
                active_changes=self.active_changes,
                crashes=crashes,
                listing_checks=self.listing_checks,
                listing_problems=list(self.listing_problems),
                open_checks=self.open_checks,
                open_problems=list(self.open_problems),
                refused=Counter(self.refused),
                notes=notes,
            )


def _every(stop: threading.Event, seconds: float, step: Callable[[], None], label: str) -> None:
    """Run ``step`` every ``seconds`` until ``stop``; a step's error is printed, not fatal."""
    while not stop.is_set():
        began = time.monotonic()
        try:
            step()
        except Exception as e:  # an observer must outlive any one failure
            say(f"{label}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        stop.wait(max(0.0, seconds - (time.monotonic() - began)))


def _lane(side: Side, events: Sequence[Event], start: float, stop: threading.Event) -> None:
    for event in events:
        if stop.wait(max(0.0, start + event.at - time.time())):
            return
        began = time.time()
        try:
            outcome = side.do(event)
        except Exception as e:  # the run goes on; the event is reported
            outcome = f"ERROR {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            with side.lock:
                side.notes.append(f"+{event.at:.0f}s {event.kind}: {outcome}")
        say(
            f"+{began - start:6.1f}s {side.label}: {event.describe()} -> {outcome} "
            f"({time.time() - began:.1f}s)"
        )


def boot(label: str, settings: Settings) -> Cluster:
    began = time.monotonic()
    cluster = Cluster.boot(with_module=label == OURS, standby_mgrs=2, release=settings.release)
    took = time.monotonic() - began
    say(f"{label}: {cluster.release} cluster in {cluster.root} booted in {took:.0f}s")
    return cluster


def run(layout: Layout, events: Sequence[Event], settings: Settings) -> list[ClusterResult]:
    """Boot the clusters, set them up as ``layout``, run ``events`` on both, judge; the
    clusters are torn down at the end (unless ``settings.keep``)."""
    labels = [OURS, STOCK] if settings.upstream else [OURS]
    clusters: dict[str, Cluster] = {}
    try:
        with ThreadPoolExecutor(len(labels)) as pool:
            futures = {label: pool.submit(boot, label, settings) for label in labels}
            try:
                wait(futures.values())
            finally:  # failed or interrupted: every cluster that booted is torn down below
                pool.shutdown(wait=True)
                for label, future in futures.items():
                    if future.exception() is None:
                        clusters[label] = future.result()
        for future in futures.values():
            if (error := future.exception()) is not None:
                raise error
        sides = [Side(label, clusters[label], layout, settings) for label in labels]
        with ThreadPoolExecutor(len(sides)) as pool:
            list(pool.map(Side.setup, sides))
        return _run(sides, events, settings)
    finally:
        for label, cluster in clusters.items():
            if settings.keep:
                say(f"{label}: kept: {cluster.shell_hint()}")
            else:
                cluster.teardown()


def _run(sides: Sequence[Side], events: Sequence[Event], settings: Settings) -> list[ClusterResult]:
    stop = threading.Event()
    start = time.time() + 5.0
    end = start + settings.minutes * 60.0
    say(f"script starts at {hms(start)}, ends at {hms(end)}")
    threads: list[threading.Thread] = []
    lanes: list[threading.Thread] = []
    for side in sides:
        for lane in ("fault", "ops"):
            mine = [e for e in events if e.lane == lane]
            lanes.append(threading.Thread(target=_lane, args=(side, mine, start, stop)))
        observers: list[tuple[float, Callable[[], None]]] = [
            (settings.poll_every, side.poll),
            (settings.status_every, partial(side.probe_status, "status", *RAW, "status")),
            (5.0, side.watch_mgrs),
            (60.0, side.sample_proc),
            (settings.listing_every, side.check_listing),
        ]
        if side.ours:
            observers.append((60.0, side.check_open))
        observers.append((300.0, partial(side.interim, start)))
        for seconds, step in observers:
            threads.append(
                threading.Thread(target=_every, args=(stop, seconds, step, side.label), daemon=True)
            )
    try:
        for thread in [*lanes, *threads]:
            thread.start()
        for thread in lanes:
            thread.join()
        # Every slot up to the end is judged: wait until its bound has passed, then look again.
        time.sleep(max(0.0, end + settings.bounds.slot + 5.0 - time.time()))
    finally:  # interrupted too: the lanes stop before the clusters are torn down
        stop.set()
    for thread in threads:
        thread.join(timeout=COMMAND_TIMEOUT + 30)
    for side in sides:
        side.poll()
        side.check_listing()
        side.watch_mgrs()
    return [side.result(start, end) for side in sides]
