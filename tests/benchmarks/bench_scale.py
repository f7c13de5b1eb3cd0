"""Scale, side by side: rbd_snapsched and stock rbd_support on two real clusters of N images.

Not a test. Boots two throwaway clusters of the host's release at once: *ours* (rbd_snapsched
linked and enabled, so it answers the schedule commands) and *stock* (booted without our module
on the mgr module path, so the always-on ``rbd_support`` answers them; a module that is on the
path but disabled would make them fail with EOPNOTSUPP instead). Each gets one pool in image
mirror mode with a tx peer that never syncs, and ``--images`` snapshot-mirrored 1 MiB images,
made in parallel through librbd (timed). Then, per cluster and in its own thread:

- ``add <pool>/ <P>m <start>``, ``--lead`` seconds before its first slot. Ours runs on the slots
  of a P-minute grid, stock half a period later, so one cluster's slot drains while the other
  idles. Measured: add to every image in ``status``; add to the first scheduled snapshot and to
  every image's first one.
- One slot per cap in ``--caps`` (``max_concurrent_snap_create``, ours and rbd_support's option
  of the same name, set before the slot): slot to its last snapshot, snapshots per second. Snapshot
  times are librbd's mirror snapshot timestamps (whole seconds), read per image after the drain
  (a drain is over once the pool's ``snap_seq`` has not moved for a few seconds). A slot that
  took no snapshot (stock before its first refresh after the add) is retried once, same cap.

From the add to the end of the first cap's slot, a probe per cluster sends ``status`` and ``list``
(global level, JSON) to the mgr in turn through librados every ``--probe-every`` seconds: their
latencies while a slot drains are those that start between the slot and its last snapshot. The
other caps' slots run unprobed: the mgr's CPU per 1000 snapshots is taken there (above its idle
rate). /proc is sampled every 0.1 s for the mgr's CPU (utime + stime) and RSS.

Last, a refresh window: both schedules are moved to ``1d`` (no slot for hours), then
``--refresh-window`` s without probes, then as long with probes every ``--refresh-probe-every`` s
(each half of 60 s holds at most one refresh of each, almost always one: both refresh 60 s
after the previous one ended).
Refreshes: ours from its metrics (end and duration of each full refresh); rbd_support's starts
from its mgr log (each refresh logs ``MirrorSnapshotScheduleHandler: load_schedules`` at INFO; it
has no trigger and no metric), their ends where the mgr's CPU falls back to its idle rate in the
quiet half (the same wall time is assumed in the probed half). CPU per refresh, quiet half: mgr
CPU during [start - 0.5 s, end + 2 s] minus the idle rate over the rest of the half.

    /usr/bin/python3 -m tests.benchmarks.bench_scale                      # N=1000, ~18-23 min
    /usr/bin/python3 -m tests.benchmarks.bench_scale --images 50 --interval 2 --caps 10,50

Both clusters are torn down at the end, also on failure or Ctrl-C (``--keep`` keeps them).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import rados
import rbd

from tests.benchmarks.report import markdown_table, percentile
from tests.cephcluster import Cluster
from tests.slots import sleep_until, utcnow

POOL = "scale"
OURS, STOCK = "ours", "stock"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
SCHED = "rbd mirror snapshot schedule"
STOCK_REFRESH_LINE = re.compile(
    r"^(\S+) \S+\s+\d+ \[rbd_support INFO root\] MirrorSnapshotScheduleHandler: load_schedules"
)
PROC_EVERY = 0.1


def say(msg: str) -> None:
    print(f"[{utcnow():%H:%M:%S}] {msg}", flush=True)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


# -- one cluster under test ------------------------------------------------------------------------


@dataclass
class Probe:
    kind: str  # "status" or "list"
    began: datetime
    seconds: float
    ok: bool
    rows: int  # status: scheduled images listed


@dataclass
class ProcSample:
    at: datetime
    cpu: float  # seconds, utime + stime of every thread
    rss: int  # bytes


@dataclass
class SlotResult:
    cap: int
    slot: datetime
    snapshots: int
    first: float | None  # seconds from the slot to its first / last snapshot
    last: float | None
    complete: bool  # every image got a snapshot in this slot

    @property
    def rate(self) -> float:
        if not self.snapshots or not self.last:
            return math.nan
        return self.snapshots / self.last


@dataclass
class Side:
    label: str
    cluster: Cluster
    offset: int  # minutes into the schedule period
    conn: rados.Rados  # setup, snapshot passes, pool polls
    probe_conn: rados.Rados  # the latency probe's own connection
    images: list[str] = field(default_factory=list)
    setup_seconds: float = 0.0
    added: datetime | None = None
    in_status: datetime | None = None
    first_snapshot: datetime | None = None
    all_first_snapshots: datetime | None = None
    slots: list[SlotResult] = field(default_factory=list)
    missed: list[datetime] = field(default_factory=list)  # slots that took no snapshot
    probes: list[Probe] = field(default_factory=list)
    proc: list[ProcSample] = field(default_factory=list)
    refreshes: dict[float, float] = field(default_factory=dict)  # ours: end epoch -> seconds
    probe_every: float | None = 0.2  # None: paused
    rss_after_setup: int = 0
    error: BaseException | None = None

    @property
    def module(self) -> str:
        return "rbd_snapsched" if self.label == OURS else "rbd_support"

    def mgr_pid(self) -> int:
        return int((self.cluster.run_dir / "mgr.x.daemon-pid").read_text())

    def command(self, prefix: str, **args: str) -> tuple[int, bytes, str]:
        cmd = json.dumps({"prefix": f"{SCHED} {prefix}", "format": "json", **args})
        return self.conn.mgr_command(cmd, b"")

    def command_ok(self, prefix: str, **args: str) -> bytes:
        ret, out, err = self.command(prefix, **args)
        if ret != 0:
            raise RuntimeError(f"{self.label}: {prefix} {args} failed ({ret}): {err}")
        return out

    def set_cap(self, cap: int) -> None:
        option = f"mgr/{self.module}/max_concurrent_snap_create"
        self.cluster.run("ceph", "config", "set", "mgr", option, str(cap))

    def snap_seq(self) -> int:
        cmd = json.dumps({"prefix": "osd pool ls", "detail": "detail", "format": "json"})
        ret, out, err = self.conn.mon_command(cmd, b"")
        if ret != 0:
            raise RuntimeError(f"{self.label}: osd pool ls failed: {err}")
        pools: list[dict[str, Any]] = json.loads(out)
        return next(int(p["snap_seq"]) for p in pools if p["pool_name"] == POOL)

    def slot_after(self, when: datetime, period: timedelta) -> datetime:
        anchor = EPOCH + timedelta(minutes=self.offset)
        return anchor + ((when - anchor) // period + 1) * period


def connect(cluster: Cluster) -> rados.Rados:
    handle = rados.Rados(conffile=str(cluster.conf))
    handle.connect()
    return handle


def make_images(side: Side, n: int, workers: int) -> None:
    """``n`` 1 MiB images in snapshot mirror mode, made by ``workers`` threads over librbd."""
    ioctx = side.conn.open_ioctx(POOL)
    names = [f"img{i:05d}" for i in range(n)]

    def make(name: str) -> None:
        rbd.RBD().create(ioctx, name, 1 << 20)
        with rbd.Image(ioctx, name) as image:
            image.mirror_image_enable(rbd.RBD_MIRROR_IMAGE_MODE_SNAPSHOT)

    began = time.monotonic()
    try:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(make, names))
    finally:
        ioctx.close()
    side.setup_seconds = time.monotonic() - began
    side.images = names


def mirror_snapshot_times(side: Side, workers: int = 8) -> list[list[datetime]]:
    """Every image's mirror snapshot timestamps (librbd's, whole seconds, UTC)."""
    ioctx = side.conn.open_ioctx(POOL)

    def times(name: str) -> list[datetime]:
        with rbd.Image(ioctx, name, read_only=True) as image:
            return [
                image.get_snap_timestamp(s["id"]).replace(tzinfo=timezone.utc)
                for s in image.list_snaps()
                if s["namespace"] == rbd.RBD_SNAP_NAMESPACE_TYPE_MIRROR
            ]

    try:
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(times, side.images))
    finally:
        ioctx.close()


# -- background samplers ---------------------------------------------------------------------------


def read_proc(pid: int) -> tuple[float, int]:
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15)
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    return cpu, rss


def sample_proc(sides: Sequence[Side], stop: threading.Event) -> None:
    pids = {s.label: s.mgr_pid() for s in sides}
    while not stop.is_set():
        at = utcnow()
        for side in sides:
            try:
                cpu, rss = read_proc(pids[side.label])
            except (OSError, IndexError, ValueError):
                continue
            side.proc.append(ProcSample(at, cpu, rss))
        stop.wait(max(0.0, PROC_EVERY - (utcnow() - at).total_seconds()))


def probe(side: Side, stop: threading.Event) -> None:
    """``status`` and ``list`` in turn, one at a time, every ``side.probe_every`` seconds."""
    kinds = ("status", "list")
    k = 0
    while not stop.is_set():
        every = side.probe_every
        if every is None:
            stop.wait(0.1)
            continue
        kind = kinds[k % 2]
        k += 1
        began = utcnow()
        t0 = time.perf_counter()
        cmd = json.dumps({"prefix": f"{SCHED} {kind}", "level_spec": "", "format": "json"})
        ret, out, _ = side.probe_conn.mgr_command(cmd, b"")
        seconds = time.perf_counter() - t0
        rows = 0
        if ret == 0 and kind == "status":
            rows = len(json.loads(out)["scheduled_images"])
        side.probes.append(Probe(kind, began, seconds, ret == 0, rows))
        stop.wait(max(0.0, every - seconds))


def scrape_refresh(side: Side) -> None:
    """Ours: the last full refresh (end, seconds) from its metrics endpoint, which shows only
    the last one. Scraped once at the end of each half of the refresh window (a half is as long
    as the refresh interval), never while probes time ``status``: a scrape renders 1,000
    images' series in our mgr, a load the stock side does not carry (it skewed our ``status``
    figures until 2026-12-07)."""
    url = side.cluster.metrics_url()
    for _ in range(3):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            time.sleep(0.5)
            continue
        values = {}
        for line in text.splitlines():
            if line.startswith(("rbd_snapsched_last_refresh", "rbd_snapsched_refresh_duration")):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        end = values.get("rbd_snapsched_last_refresh_timestamp_seconds")
        duration = values.get("rbd_snapsched_refresh_duration_seconds")
        if end is not None and duration is not None:
            side.refreshes[end] = duration
        return


def stock_refresh_starts(side: Side) -> list[datetime]:
    starts = []
    log = side.cluster.log_dir / "mgr.x.log"
    for line in log.read_text(errors="replace").splitlines():
        match = STOCK_REFRESH_LINE.match(line)
        if match:
            starts.append(datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S.%f%z"))
    return starts


# -- one cluster's slots ---------------------------------------------------------------------------


def wait_drained(side: Side, slot: datetime, deadline: datetime, quiet: float = 6.0) -> None:
    """Until the pool's snap_seq, read before ``slot``, has moved and then stood still
    ``quiet`` s, or ``deadline``; with nothing moved 60 s after the slot, the slot is missed."""
    start = last = side.snap_seq()
    changed = utcnow()
    sleep_until(slot + timedelta(seconds=2))
    while utcnow() < deadline:
        seq = side.snap_seq()
        now = utcnow()
        if seq != last:
            last, changed = seq, now
        elif last != start and (now - changed).total_seconds() >= quiet:
            return  # drained
        elif last == start and now - slot > timedelta(seconds=60):
            return  # missed
        time.sleep(1.0)


def run_side(side: Side, first_slot: datetime, args: argparse.Namespace) -> None:
    try:
        _run_side(side, first_slot, args)
    except BaseException as e:
        side.error = e
        say(f"{side.label}: FAILED: {e!r}")


def _run_side(side: Side, first_slot: datetime, args: argparse.Namespace) -> None:
    period = timedelta(minutes=args.interval)
    caps: list[int] = list(args.caps)
    side.set_cap(caps[0])
    sleep_until(first_slot - timedelta(seconds=args.lead))
    side.added = utcnow()
    side.command_ok(
        "add",
        level_spec=f"{POOL}/",
        interval=f"{args.interval}m",
        start_time=f"00:{side.offset:02d}",
    )
    say(f"{side.label}: added `{args.interval}m 00:{side.offset:02d}`, slot {first_slot:%H:%M}")
    slot = first_slot
    first_seen = False
    retried = False
    k = 0
    while k < len(caps):
        cap = caps[k]
        if slot - utcnow() < timedelta(seconds=3):
            slot = side.slot_after(utcnow() + timedelta(seconds=3), period)
        side.set_cap(cap)
        # probed: the first cap's slots (latency while draining; ``--caps 10,10`` pools two
        # drains, about 1,000 probes of each kind: a p99 of 500 rests on its 5 slowest); the
        # other caps unprobed, for the mgr's own CPU per snapshot
        side.probe_every = args.probe_every if cap == caps[0] else None
        say(f"{side.label}: cap {cap}, slot {slot:%H:%M}")
        wait_drained(side, slot, slot + period - timedelta(seconds=15))
        passed = time.monotonic()
        times = mirror_snapshot_times(side)
        passed = time.monotonic() - passed
        window = [[t for t in ts if slot <= t < slot + period] for ts in times]
        mine = [t for ts in window for t in ts]
        result = SlotResult(
            cap=cap,
            slot=slot,
            snapshots=len(mine),
            first=(min(mine) - slot).total_seconds() if mine else None,
            last=(max(mine) - slot).total_seconds() if mine else None,
            complete=all(window),
        )
        if not first_seen and side.added is not None:
            scheduled = [[t for t in ts if t >= side.added.replace(microsecond=0)] for ts in times]
            firsts = [min(ts) for ts in scheduled if ts]
            if firsts:
                first_seen = True
                side.first_snapshot = min(firsts)
                if len(firsts) == len(side.images):
                    side.all_first_snapshots = max(firsts)
        say(
            f"{side.label}: slot {slot:%H:%M} cap {cap}: {result.snapshots} snapshots, "
            f"last +{result.last} s, {result.rate:.1f}/s; snapshots read in {passed:.1f} s"
            f" ({load()})"
        )
        slot += period
        if result.snapshots == 0 and not retried:
            retried = True  # missed (stock: no refresh since the add yet): same cap again
            side.missed.append(result.slot)
            continue
        side.slots.append(result)
        k += 1


# -- the refresh window ----------------------------------------------------------------------------


@dataclass
class RefreshStats:
    quiet: list[tuple[datetime, datetime]]  # each refresh in the quiet half: start, end
    probed: list[tuple[datetime, datetime]]  # and in the probed half
    cpu_per_refresh: float
    idle_rate: float  # CPU seconds per second outside refreshes, quiet half
    status: list[float]
    list_: list[float]
    idle_status: list[float]


@dataclass
class Window:
    quiet: tuple[datetime, datetime]  # no probes: CPU per refresh
    probed: tuple[datetime, datetime]  # probes every --refresh-probe-every s: latency


def cpu_between(samples: Sequence[ProcSample], a: datetime, b: datetime) -> float:
    inside = [s for s in samples if a <= s.at <= b]
    if len(inside) < 2:
        return 0.0
    return inside[-1].cpu - inside[0].cpu


def burst_end(samples: Sequence[ProcSample], start: datetime, idle_rate: float) -> datetime:
    """Where the mgr's CPU rate after ``start`` falls back near its idle rate for 0.5 s."""
    after = [s for s in samples if s.at >= start]
    calm = 0
    for a, b in zip(after, after[1:]):
        if (b.at - start).total_seconds() > 15:
            return b.at
        rate = (b.cpu - a.cpu) / max((b.at - a.at).total_seconds(), 1e-3)
        calm = calm + 1 if rate <= idle_rate + 0.15 else 0
        if calm >= 5 and (b.at - start).total_seconds() >= 0.7:
            return b.at - timedelta(seconds=PROC_EVERY * 5)
    return after[-1].at if after else start


def refresh_spans(
    side: Side, began: datetime, ended: datetime, samples: Sequence[ProcSample], idle: float
) -> list[tuple[datetime, datetime]]:
    """Each refresh in [began, ended]: ours from its metrics, stock from its log and CPU."""
    spans: list[tuple[datetime, datetime]] = []
    if side.label == OURS:
        for end_epoch, duration in sorted(side.refreshes.items()):
            end = datetime.fromtimestamp(end_epoch, timezone.utc)
            if began <= end - timedelta(seconds=duration) and end <= ended:
                spans.append((end - timedelta(seconds=duration), end))
    else:
        for start in stock_refresh_starts(side):
            if began <= start and start + timedelta(seconds=2) <= ended:
                spans.append((start, burst_end(samples, start, idle)))
    return spans


def refresh_stats(side: Side, window: Window) -> RefreshStats:
    began, ended = window.quiet
    samples = [s for s in side.proc if began <= s.at <= ended]
    # the median 1 s rate is about the idle rate: refreshes take a small share of the window
    rates = []
    t = began
    while t + timedelta(seconds=1) <= ended:
        rates.append(cpu_between(samples, t, t + timedelta(seconds=1)))
        t += timedelta(seconds=1)
    median_rate = statistics.median(rates) if rates else 0.0
    quiet = refresh_spans(side, began, ended, samples, median_rate)
    pads = [(a - timedelta(seconds=0.5), b + timedelta(seconds=2)) for a, b in quiet]
    in_pads = sum(cpu_between(samples, a, b) for a, b in pads)
    pad_seconds = sum((b - a).total_seconds() for a, b in pads)
    total = cpu_between(samples, began, ended)
    idle_rate = (total - in_pads) / max((ended - began).total_seconds() - pad_seconds, 1e-3)
    per_refresh = (in_pads - idle_rate * pad_seconds) / len(quiet) if quiet else math.nan

    began, ended = window.probed
    probed = refresh_spans(side, began, ended, side.proc, idle_rate)
    if side.label == STOCK and quiet:
        # under the probes' load the CPU burst blurs: stock's refreshes last as in the quiet half
        wall = statistics.mean((b - a).total_seconds() for a, b in quiet)
        probed = [(a, a + timedelta(seconds=wall)) for a, _ in probed]

    def during(p: Probe) -> bool:
        end = p.began + timedelta(seconds=p.seconds)
        return any(p.began < b and end > a for a, b in probed)

    probes = [p for p in side.probes if began <= p.began <= ended and p.ok]
    return RefreshStats(
        quiet=quiet,
        probed=probed,
        cpu_per_refresh=per_refresh,
        idle_rate=idle_rate,
        status=[p.seconds for p in probes if p.kind == "status" and during(p)],
        list_=[p.seconds for p in probes if p.kind == "list" and during(p)],
        idle_status=[p.seconds for p in probes if p.kind == "status" and not during(p)],
    )


def refresh_window(sides: Sequence[Side], args: argparse.Namespace) -> Window:
    """Move both schedules to ``1d`` (no slot for hours); watch ``--refresh-window`` s with the
    probes paused, then as long again with them every ``--refresh-probe-every`` s."""
    anchor = (utcnow() + timedelta(hours=12)).strftime("%H:%M")
    for side in sides:
        side.command_ok("add", level_spec=f"{POOL}/", interval="1d", start_time=anchor)
        side.command_ok(
            "remove",
            level_spec=f"{POOL}/",
            interval=f"{args.interval}m",
            start_time=f"00:{side.offset:02d}",
        )
        side.probe_every = None
    length = timedelta(seconds=args.refresh_window)
    quiet = (utcnow() + timedelta(seconds=2), utcnow() + timedelta(seconds=2) + length)
    say(f"refresh window, quiet {quiet[0]:%H:%M:%S}-{quiet[1]:%H:%M:%S}")
    sleep_until(quiet[1])
    for side in sides:
        if side.label == OURS:
            scrape_refresh(side)  # the quiet half's last refresh (its metrics keep only that)
        side.probe_every = args.refresh_probe_every
    probed = (utcnow() + timedelta(seconds=1), utcnow() + timedelta(seconds=1) + length)
    say(f"refresh window, probed {probed[0]:%H:%M:%S}-{probed[1]:%H:%M:%S}")
    sleep_until(probed[1] + timedelta(seconds=1))
    for side in sides:
        side.probe_every = None
        if side.label == OURS:
            scrape_refresh(side)  # the probed half's refresh, the probes stopped
    return Window(quiet, probed)


# -- report ----------------------------------------------------------------------------------------


def ms(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{percentile(values, 0.5) * 1e3:.1f} / {percentile(values, 0.99) * 1e3:.1f} ms"


def median_of(values: Sequence[float]) -> float:
    return percentile(values, 0.5)


def p99(values: Sequence[float]) -> float:
    return percentile(values, 0.99)


def ratio(ours: float, stock: float, lower_is_better: bool = True) -> str:
    if any(math.isnan(v) or v <= 0 for v in (ours, stock)):
        return "-"
    if lower_is_better:
        return f"stock/ours {stock / ours:.2f}x"
    return f"ours/stock {ours / stock:.2f}x"


def secs(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.1f} s"


def drain_probes(side: Side, cap: int, kind: str) -> list[float]:
    out = []
    for slot in side.slots:
        if slot.cap != cap or slot.last is None:
            continue
        end = slot.slot + timedelta(seconds=slot.last + 1)
        out += [
            p.seconds
            for p in side.probes
            if p.kind == kind and p.ok and slot.slot <= p.began <= end
        ]
    return out


def drain_cpu(side: Side, cap: int, idle_rate: float) -> float:
    """mgr CPU seconds per 1000 snapshots in this cap's slot, above the idle rate."""
    for slot in side.slots:
        if slot.cap == cap and slot.last and slot.snapshots:
            end = slot.slot + timedelta(seconds=slot.last + 1)
            cpu = cpu_between(side.proc, slot.slot, end)
            return (cpu - idle_rate * (slot.last + 1)) / slot.snapshots * 1000
    return math.nan


def targets(cases: dict[str, tuple[Sequence[float], Sequence[float]]]) -> list[str]:
    """Issue 21's targets on real clusters: ours no slower than stock at p50 and at p99 (ratio
    stock / ours >= 1), each printed met or not."""
    lines = ["TARGETS (ours no slower than stock rbd_support: stock/ours >= 1):"]
    met = total = 0
    for label, (a_v, b_v) in cases.items():
        for name, pick in (("p50", median_of), ("p99", p99)):
            a, b = pick(a_v), pick(b_v)
            ok = not (math.isnan(a) or math.isnan(b)) and a <= b
            met, total = met + ok, total + 1
            lines.append(
                f"  {label} {name}: {a * 1000:.1f} vs {b * 1000:.1f} ms, "
                f"{ratio(a, b)}: {'met' if ok else 'NOT met'}"
            )
    lines.append(f"  {met}/{total} met")
    return lines


def report(
    sides: dict[str, Side], stats: dict[str, RefreshStats], args: argparse.Namespace, loads: str
) -> None:
    o, s = sides[OURS], sides[STOCK]
    so, ss = stats[OURS], stats[STOCK]
    n = len(o.images)
    caps: list[int] = list(args.caps)

    def since_add(side: Side, when: datetime | None) -> float:
        if when is None or side.added is None:
            return math.nan
        return (when - side.added).total_seconds()

    def slot_of(side: Side, cap: int) -> SlotResult | None:
        return next((r for r in side.slots if r.cap == cap), None)

    def best(side: Side) -> tuple[float, int]:
        rated = [(r.rate, r.cap) for r in side.slots if not math.isnan(r.rate)]
        return max(rated) if rated else (math.nan, 0)

    rows: list[list[str]] = [["figure", "ours (rbd_snapsched)", "stock rbd_support", "ratio"]]
    rows.append(
        [
            "setup: images made (s, images/s)",
            f"{o.setup_seconds:.0f} s, {n / o.setup_seconds:.1f}/s",
            f"{s.setup_seconds:.0f} s, {n / s.setup_seconds:.1f}/s",
            "",
        ]
    )
    since: list[tuple[str, Callable[[Side], float]]] = [
        ("add → every image in `status`", lambda x: since_add(x, x.in_status)),
        ("add → first snapshot", lambda x: since_add(x, x.first_snapshot)),
        ("add → every image's first snapshot", lambda x: since_add(x, x.all_first_snapshots)),
    ]
    for label, get in since:
        a, b = get(o), get(s)
        rows.append([label, secs(a), secs(b), ratio(a, b)])
    for cap in caps:
        a_slot, b_slot = slot_of(o, cap), slot_of(s, cap)
        a = a_slot.last if a_slot and a_slot.last is not None else math.nan
        b = b_slot.last if b_slot and b_slot.last is not None else math.nan
        note = ""
        for label, r in ((OURS, a_slot), (STOCK, b_slot)):
            if r is not None and not r.complete:
                note += f" ({label}: {r.snapshots}/{n} in the slot)"
        rows.append([f"slot → last snapshot, cap {cap}{note}", secs(a), secs(b), ratio(a, b)])
    for cap in caps:
        a_slot, b_slot = slot_of(o, cap), slot_of(s, cap)
        a = a_slot.rate if a_slot else math.nan
        b = b_slot.rate if b_slot else math.nan
        rows.append(
            [f"snapshots/s, cap {cap}", f"{a:.1f}", f"{b:.1f}", ratio(a, b, lower_is_better=False)]
        )
    (a, ca), (b, cb) = best(o), best(s)
    rows.append(
        [
            f"snapshots/s at the best cap of {','.join(map(str, caps))}",
            f"{a:.1f} (cap {ca})",
            f"{b:.1f} (cap {cb})",
            ratio(a, b, lower_is_better=False),
        ]
    )
    for kind in ("status", "list"):
        a_v, b_v = drain_probes(o, caps[0], kind), drain_probes(s, caps[0], kind)
        rows.append(
            [
                f"`{kind}` p50 / p99 while a slot drains (cap {caps[0]}; n {len(a_v)}/{len(b_v)})",
                ms(a_v),
                ms(b_v),
                "p99 " + ratio(p99(a_v), p99(b_v)),
            ]
        )
    for kind, a_v, b_v in (("status", so.status, ss.status), ("list", so.list_, ss.list_)):
        rows.append(
            [
                f"`{kind}` p50 / p99 while a refresh runs (n {len(a_v)}/{len(b_v)})",
                ms(a_v),
                ms(b_v),
                "p99 " + ratio(p99(a_v), p99(b_v)),
            ]
        )
    rows.append(
        [
            "`status` p50 / p99 idle (refresh window, outside refreshes)",
            ms(so.idle_status),
            ms(ss.idle_status),
            "p99 " + ratio(p99(so.idle_status), p99(ss.idle_status)),
        ]
    )

    def wall(st: RefreshStats) -> float:
        if not st.quiet:
            return math.nan
        return statistics.mean((b - a).total_seconds() for a, b in st.quiet)

    rows.append(
        [
            "refresh wall time (ours: metrics; stock: CPU burst)",
            secs(wall(so)),
            secs(wall(ss)),
            ratio(wall(so), wall(ss)),
        ]
    )
    rows.append(
        [
            f"mgr CPU s per refresh (refreshes {len(so.quiet)}/{len(ss.quiet)})",
            f"{so.cpu_per_refresh:.3f}",
            f"{ss.cpu_per_refresh:.3f}",
            ratio(so.cpu_per_refresh, ss.cpu_per_refresh),
        ]
    )
    rows.append(
        [
            "mgr idle CPU (s per s, quiet half of the refresh window)",
            f"{so.idle_rate:.3f}",
            f"{ss.idle_rate:.3f}",
            ratio(so.idle_rate, ss.idle_rate),
        ]
    )
    for cap in caps[1:]:
        a, b = drain_cpu(o, cap, so.idle_rate), drain_cpu(s, cap, ss.idle_rate)
        rows.append(
            [f"mgr CPU s per 1000 snapshots (cap {cap})", f"{a:.2f}", f"{b:.2f}", ratio(a, b)]
        )

    def mib(v: float) -> str:
        return f"{v / 2**20:.0f} MiB"

    rss: list[tuple[str, Callable[[Side], float]]] = [
        ("mgr RSS after setup", lambda x: float(x.rss_after_setup)),
        ("mgr RSS peak", lambda x: float(max((p.rss for p in x.proc), default=0))),
        ("mgr RSS at the end", lambda x: float(x.proc[-1].rss) if x.proc else math.nan),
    ]
    for label, get_rss in rss:
        a, b = get_rss(o), get_rss(s)
        rows.append([label, mib(a), mib(b), ratio(a, b)])

    print()
    print(
        f"{o.cluster.release}: {n} images per cluster, one pool, `{args.interval}m` schedule "
        f"(ours on the slots of the grid, stock {args.interval // 2} min later), caps "
        f"{','.join(map(str, caps))}, add {args.lead} s before the first slot; {loads}"
    )
    for line in markdown_table(rows):
        print(line)
    print()
    for line in targets(
        {
            "`status` idle": (so.idle_status, ss.idle_status),
            f"`status` while a slot drains (cap {caps[0]})": (
                drain_probes(o, caps[0], "status"),
                drain_probes(s, caps[0], "status"),
            ),
            f"`list` while a slot drains (cap {caps[0]})": (
                drain_probes(o, caps[0], "list"),
                drain_probes(s, caps[0], "list"),
            ),
        }
    ):
        print(line)
    print()
    print("per slot:")
    for side in (o, s):
        for missed in side.missed:
            print(f"  {side.label:5} {missed:%H:%M}: missed, no snapshot (retried at the next)")
        for r in side.slots:
            print(
                f"  {side.label:5} {r.slot:%H:%M} cap {r.cap:3}: {r.snapshots} snapshots, "
                f"first +{secs(r.first)}, last +{secs(r.last)}, {r.rate:.1f}/s"
                f"{'' if r.complete else ' (incomplete)'}"
            )
    for side, st in ((o, so), (s, ss)):
        for half, spans in (("quiet", st.quiet), ("probed", st.probed)):
            text = ", ".join(
                f"{a:%H:%M:%S.%f}"[:-3] + f" {(b - a).total_seconds():.2f} s" for a, b in spans
            )
            print(f"  {side.label:5} refreshes, {half} half: {text or 'none'}")
        probes = side.probes
        bad = sum(1 for p in probes if not p.ok)
        print(f"  {side.label:5} probes: {len(probes)} ({bad} failed)")


# -- main ------------------------------------------------------------------------------------------


def parse_caps(text: str) -> list[int]:
    caps = [int(part) for part in text.split(",") if part.strip()]
    if not caps or min(caps) < 1:
        raise argparse.ArgumentTypeError("caps must be integers >= 1")
    return caps


def boot(label: str, with_module: bool, release: str | None) -> Cluster:
    began = time.monotonic()
    cluster = Cluster.boot(with_module=with_module, release=release)
    say(f"{label}: cluster {cluster.root} booted in {time.monotonic() - began:.0f} s")
    return cluster


def check_routing(sides: dict[str, Side]) -> None:
    """Ours answers in its cluster, rbd_support in the stock one (and ours is not there)."""
    for side in sides.values():
        modules = side.cluster.ceph_json("mgr", "module", "ls")
        known = set(modules.get("enabled_modules", [])) | {
            m["name"] for m in modules.get("disabled_modules", [])
        }
        ours_there = "rbd_snapsched" in known
        if ours_there != (side.label == OURS):
            raise SystemExit(f"{side.label}: rbd_snapsched on the module path: {ours_there}")
        rows = json.loads(side.command_ok("status", level_spec=""))["scheduled_images"]
        keys = set().union(*(set(r) for r in rows)) if rows else set()
        stock_keys = {"image", "schedule_time"}
        if rows and (keys == stock_keys) != (side.label == STOCK):
            raise SystemExit(f"{side.label}: status rows carry {sorted(keys)}")
        say(
            f"{side.label}: rbd_snapsched on the mgr module path: {ours_there}; "
            f"status row keys: {sorted(keys)}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    # each snapshot took about 1 s on Pacific here whatever the cap (the mon's 1 s paxos
    # proposal interval, likely), so the throughput grows with the cap past 50
    parser.add_argument("--caps", type=parse_caps, default=[10, 50, 200])
    parser.add_argument("--interval", type=int, default=4, help="minutes, even")
    parser.add_argument("--lead", type=int, default=30, help="seconds from add to the first slot")
    parser.add_argument("--workers", type=int, default=16, help="threads making images")
    parser.add_argument("--probe-every", type=float, default=0.2)
    parser.add_argument(
        "--refresh-window",
        type=float,
        default=60.0,
        help="seconds, each half (quiet, probed): at most one refresh of each per 60 s",
    )
    parser.add_argument("--refresh-probe-every", type=float, default=0.02)
    parser.add_argument("--release", help="pacific, reef or tentacle (default: the host's)")
    parser.add_argument("--keep", action="store_true", help="leave both clusters running")
    args = parser.parse_args(argv)
    if args.interval < 2 or args.interval % 2:
        parser.error("--interval must be an even number of minutes >= 2")
    began = time.monotonic()
    loads = [f"start {load()}"]
    say(f"bench_scale: {args.images} images, caps {args.caps}; {load()}")

    clusters: dict[str, Cluster] = {}
    sides: dict[str, Side] = {}
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        with ThreadPoolExecutor(2) as pool:
            futures = {
                OURS: pool.submit(boot, OURS, True, args.release),
                STOCK: pool.submit(boot, STOCK, False, args.release),
            }
            for label, future in futures.items():
                clusters[label] = future.result()
        for label, offset in ((OURS, 0), (STOCK, args.interval // 2)):
            cluster = clusters[label]
            cluster.create_rbd_pool(POOL)
            sides[label] = Side(
                label,
                cluster,
                offset,
                connect(cluster),
                connect(cluster),
                probe_every=args.probe_every,
            )
        t0 = time.monotonic()
        with ThreadPoolExecutor(2) as pool:
            made = [pool.submit(make_images, s, args.images, args.workers) for s in sides.values()]
            for done in made:
                done.result()
        for side in sides.values():
            say(
                f"{side.label}: {args.images} images in {side.setup_seconds:.0f} s "
                f"({args.images / side.setup_seconds:.1f}/s)"
            )
        say(f"setup of both (in parallel) {time.monotonic() - t0:.0f} s; {load()}")
        loads.append(f"after setup {load()}")
        check_routing(sides)
        for side in sides.values():
            side.rss_after_setup = read_proc(side.mgr_pid())[1]

        workers: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
            (sample_proc, (list(sides.values()), stop)),
            *((probe, (side, stop)) for side in sides.values()),
        ]
        for target, targs in workers:
            thread = threading.Thread(target=target, args=targs, daemon=True)
            thread.start()
            threads.append(thread)

        period = timedelta(minutes=args.interval)
        soonest = utcnow() + timedelta(seconds=args.lead + 5)
        runners = []
        for side in sides.values():
            slot = side.slot_after(soonest, period)  # each its own first slot: either may lead
            runner = threading.Thread(target=run_side, args=(side, slot, args))
            runner.start()
            runners.append(runner)
        # add -> every image in status, from the probes, while the runners go on
        for runner in runners:
            runner.join()
        for side in sides.values():
            if side.error is not None:
                raise SystemExit(f"{side.label} failed: {side.error!r}")
            if side.added is not None:
                listed = [
                    p
                    for p in side.probes
                    if p.kind == "status" and p.began >= side.added and p.rows == args.images
                ]
                side.in_status = (
                    listed[0].began + timedelta(seconds=listed[0].seconds) if listed else None
                )
        loads.append(f"after the slots {load()}")
        check_routing(sides)

        window = refresh_window(list(sides.values()), args)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        stats = {label: refresh_stats(side, window) for label, side in sides.items()}
        loads.append(f"end {load()}")
        report(sides, stats, args, "; ".join(loads))
    finally:
        stop.set()
        for side in sides.values():
            side.conn.shutdown()
            side.probe_conn.shutdown()
        for cluster in clusters.values():
            if args.keep:
                say(f"kept {cluster.root}")
            else:
                cluster.teardown()
    print(f"total {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
