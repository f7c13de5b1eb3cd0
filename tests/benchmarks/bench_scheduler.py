"""Scheduler benchmark: our Handler against upstream rbd_support, per image per cycle.

Run from the repository root with the interpreter ceph-mgr embeds::

    /usr/bin/python3 -m tests.benchmarks.bench_scheduler            # full run, a few minutes
    /usr/bin/python3 -m tests.benchmarks.bench_scheduler --quick    # smoke run, about a minute

A script, not a pytest test (pytest only collects ``test_*.py``). Standard library only, plus
our package; upstream's handler is imported from ``/usr/share/ceph/mgr/rbd_support``.

What one *cycle* is
-------------------
Every image has a ``1m`` pool-level schedule, so all N images share one minute slot. A cycle is
what the scheduler thread does for that slot: pop every due image, re-enqueue it at the next
slot, hand it to the snapshot requester. The initial *enqueue* (the first refresh putting every
image in the queue) is timed and shown separately.

Ours goes through the real ``Handler``: fake cluster I/O, the real ``ScheduleStore`` over
in-memory backends, a fake resolver, a fake clock and a driver that reports CREATED at once.
Upstream runs its real ``MirrorSnapshotScheduleHandler.run()`` loop (see ``bench_upstream``).

``status``, idle and while a slot drains
---------------------------------------
At each of ``--status-sizes`` images (default 1k, 20k and 50k, ``--quick`` too), ``status`` of
the global level (every image, the JSON text included, as the mgr command returns it) is timed
call after call on the main thread: idle, then while another thread drains slot after slot:
upstream's ``run()`` (``status_upstream``; the last slot cut short once sampled), ours back to
back (``status_ours``). Both threads share the
GIL, as the command and scheduler threads of a ceph-mgr module do. It prints p50 and p99 of each,
the ratios upstream / ours with each target (>= 1) met or not, whether the keys both show
(``schedule_time``, ``image``) are the same, and our lock's holds by a status call against a
dispatch batch's (CPU time): the drain waits behind a status call no longer than behind one of
its batches.

``list`` (``ls``, ``ls -R``)
--------------------------
At ``--list-size`` image-level schedules (default 10k), ``list`` of the global level (what
``ls -R`` asks) and of one image level, ours against upstream's ``list()``, idle.

Files
-----
The fakes and our Handler over them are ``benchmarks/fakes.py``, upstream's driver
``benchmarks/upstream.py``, the report helpers (shared by every benchmark)
``benchmarks/report.py``; this file is the benchmark itself.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import logging
import os
import pstats
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rbd_snapsched.access import every_image
from rbd_snapsched.commands import JsonText, respond
from rbd_snapsched.levels import LevelSpec
from tests.benchmarks.fakes import (
    LOG,
    NAMESPACES,
    POOL,
    Cycle,
    FakeClusterIO,
    build_ours,
    build_ours_listing,
    drain_ours,
    image_id,
    image_name,
)
from tests.benchmarks.report import fmt_n, parse_sizes, percentile, table
from tests.benchmarks.upstream import (
    FrozenDatetime,
    UpstreamResult,
    bench_upstream,
    build_upstream,
    build_upstream_listing,
    enqueue_upstream,
    fill_upstream,
    import_upstream,
)

TARGET_US_AT_1M = 5.0
TARGET_RATIO_AT_50K = 100.0
TARGET_BYTES_PER_IMAGE = 720  # retained at 1M, no status caller
PROFILE_MAX_IMAGES = 200_000


class MgrLogHandler(logging.Handler):
    """Stands for ceph-mgr's CPlusPlusHandler: drops what is below its level."""

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)


def configure_logging(mode: str) -> None:
    """``mgr``: as ceph-mgr sets it up (mgr_module.MgrModuleLoggingMixin): the loggers pass
    everything (root level NOTSET) and the handler filters at the level debug_mgr maps to,
    INFO for the default 2/5, so every debug() call still builds a LogRecord before it is
    dropped. ``quiet``: the logger itself is at WARNING, so debug() returns at once.
    """
    for handler in list(LOG.handlers):
        LOG.removeHandler(handler)
    if mode == "mgr":
        LOG.setLevel(1)
        LOG.addHandler(MgrLogHandler(logging.INFO))
    else:
        LOG.setLevel(logging.WARNING)


@dataclass
class OursResult:
    n: int
    enqueue_us: float  # refresh() per image, fake discovery included
    discover_us: float  # the fake discovery alone, per image
    cycles_us: list[float]  # dequeue + re-enqueue + driver, per image, one per cycle
    calls: int  # most _dispatch_due calls in one cycle
    max_hold_ms: float  # longest lock hold by one _dispatch_due call, any cycle
    kept_cycles_us: list[float] | None = None  # the same, status rows kept (a call came)
    peak_bytes: int | None = None
    retained_bytes: int | None = None
    status_retained_bytes: int | None = None  # retained after a status call and a cycle

    @property
    def cycle_us(self) -> float:
        return statistics.median(self.cycles_us)


def bench_ours(
    n: int, cycles: int, memory: bool, inline: bool = False, stagger: bool = False
) -> OursResult:
    gc.collect()
    began = time.perf_counter()
    FakeClusterIO(n).discover(POOL, lambda level: True)
    discover = time.perf_counter() - began
    setup, refresh = build_ours(n, inline, stagger)
    runs: list[Cycle] = []
    for _ in range(cycles):
        gc.collect()  # start every cycle from the same collector state
        runs.append(drain_ours(setup))
    result = OursResult(
        n,
        enqueue_us=refresh / n * 1e6,
        discover_us=discover / n * 1e6,
        cycles_us=[c.seconds / n * 1e6 for c in runs],
        calls=max(c.calls for c in runs),
        max_hold_ms=max(c.max_hold for c in runs) * 1e3,
    )
    # One status call: from now on the writers mark the rows they change (status_rows.py)
    setup.handler.status_text(setup.handler.resolve(""), every_image)
    kept = []
    for _ in range(cycles):
        gc.collect()
        kept.append(drain_ours(setup).seconds / n * 1e6)
    result.kept_cycles_us = kept
    del setup
    if memory:
        result.peak_bytes, result.retained_bytes, result.status_retained_bytes = (
            measure_ours_memory(n)
        )
    return result


def measure_ours_memory(n: int) -> tuple[int, int, int]:
    """tracemalloc over building the handler, refresh and one cycle: (peak, retained) bytes;
    and retained after a status call and another cycle (the status rows kept, all marked).

    Retained is what the handler holds afterwards (images, names, states, index, queue,
    throttle, catalog); peak adds transients: the discovery result, wait lists, batches.
    """
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        setup, _ = build_ours(n)
        drain_ours(setup)
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
        setup.handler.status_text(setup.handler.resolve(""), every_image)
        drain_ours(setup)
        gc.collect()
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del setup
    return peak - base, current - base, kept - base


def profile_ours(n: int, top: int) -> str:
    """cProfile of one cycle at ``n`` images (the handler built beforehand, unprofiled)."""
    setup, _ = build_ours(n)
    gc.collect()
    profiler = cProfile.Profile()
    profiler.enable()
    drain_ours(setup)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    by_file: dict[str, float] = {}
    for (filename, _, _), row in stats.stats.items():  # type: ignore[attr-defined]
        where = filename if filename.startswith("~") else os.path.basename(filename)
        by_file[where] = by_file.get(where, 0.0) + row[2]
    total = sum(by_file.values()) or 1.0
    out.write("  own time by file (~: built-ins)\n")
    for where, seconds in sorted(by_file.items(), key=lambda e: -e[1])[:10]:
        out.write(f"  {100 * seconds / total:5.1f}%  {where}\n")
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue().rstrip() + "\n"


# --- status, idle and while a slot drains --------------------------------------------------------

STATUS_SIZES = [1_000, 20_000, 50_000]


class GcClock:
    """Each thread's CPU time in garbage collections so far (``gc.callbacks``): a collection
    runs on the thread whose allocation set it off, and stops every thread meanwhile."""

    def __init__(self) -> None:
        self.spent: dict[int, float] = {}  # thread ident -> seconds
        self._began: dict[int, float] = {}

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        ident, now = threading.get_ident(), time.thread_time()
        if phase == "start":
            self._began[ident] = now
        else:
            began = self._began.pop(ident, now)
            self.spent[ident] = self.spent.get(ident, 0.0) + now - began

    def of_this_thread(self) -> float:
        return self.spent.get(threading.get_ident(), 0.0)


GC_CLOCK = GcClock()
gc.callbacks.append(GC_CLOCK)


class LockTimer:
    """The handler's lock, timed: each thread's longest hold. Put in place of the Handler's
    ``threading.Lock`` (and under its Condition) by ``time_lock``, for the status benchmark
    only: what a status call makes the drain wait is its longest hold of the lock.

    A hold is the holder's CPU time (``time.thread_time``): the work done under the lock. Its
    wall time also counts the GIL's switch interval (5 ms) whenever the other thread runs
    Python meanwhile, which says nothing about the lock. A garbage collection set off inside
    a hold is left out of it (it stops the drain whichever lock is held, and lands in status
    and dispatch holds alike): ``collected`` counts those holds, ``collecting`` their time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since = 0.0
        self._gc_since = 0.0
        self._batch = False
        self.next_is_batch = False  # the next hold is a dispatch batch's (set by time_lock)
        self.holds: dict[str, list[float]] = {}  # thread name -> each hold, seconds
        self.batches: list[float] = []  # each dispatch batch's hold
        self.collected = 0
        self.collecting = 0.0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = self._lock.acquire(blocking, timeout)
        if got:
            self._since = time.thread_time()
            self._gc_since = GC_CLOCK.of_this_thread()
            self._batch, self.next_is_batch = self.next_is_batch, False
        return got

    def release(self) -> None:
        collecting = GC_CLOCK.of_this_thread() - self._gc_since
        held = time.thread_time() - self._since - collecting
        if collecting:
            self.collected += 1
            self.collecting += collecting
        self.holds.setdefault(threading.current_thread().name, []).append(held)
        if self._batch:
            self.batches.append(held)
        self._lock.release()

    def clear(self) -> None:
        self.holds.clear()
        self.batches.clear()
        self.collected, self.collecting = 0, 0.0

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _is_owned(self) -> bool:  # what threading.Condition asks before notify
        return self._lock.locked()


def _named(owner: object) -> list[tuple[str, object]]:
    """An object's attributes, from its ``__dict__`` and its ``__slots__``."""
    found = list(getattr(owner, "__dict__", {}).items())
    for cls in type(owner).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(owner, name):
                found.append((name, getattr(owner, name)))
    return found


def _attributes(owner: object) -> list[object]:
    return [value for _, value in _named(owner)]


def time_lock(handler: Any) -> LockTimer:
    """Time the handler's one lock: the same lock everywhere, replaced before any thread runs:
    in the Handler and in each of its rooms that holds it (the dispatcher, the status view),
    the lock itself and the Condition over it. Any other reference left is an error (a room
    holding the old lock would not exclude the others, and its holds would go untimed)."""
    timer = LockTimer()
    cond = threading.Condition(timer)  # type: ignore[arg-type]
    old_lock, old_cond = handler._lock, handler._cond
    replaced = 0
    for owner in [handler, *vars(handler).values()]:
        names = getattr(owner, "__dict__", None)
        if names is None:
            continue
        for name, value in list(names.items()):
            if value is old_lock:
                setattr(owner, name, timer)
                replaced += 1
            elif value is old_cond:
                setattr(owner, name, cond)
                replaced += 1
    left = [
        f"{type(owner).__name__}.{name}"
        for room in [handler, *vars(handler).values()]
        for owner in [room, *_attributes(room)]
        for name, value in _named(owner)
        if value is old_lock or value is old_cond
    ]
    if replaced < 4 or left:
        raise SystemExit(f"time_lock: {replaced} replaced; the old lock still in {left}")
    dispatch = handler._dispatch_due

    def dispatch_due() -> bool:  # its first hold is the batch (pop, re-queue, admit)
        timer.next_is_batch = True
        return bool(dispatch())

    handler._dispatch_due = dispatch_due
    return timer


@dataclass
class StatusResult:
    n: int
    idle: list[float]  # seconds per status, nothing draining
    draining: list[float]  # seconds per status started while a slot drained
    cycles: int  # slots drained meanwhile (upstream: its last one cut short once sampled)
    rows: list[tuple[str, str]]  # the keys both share, every row: (schedule_time, image)
    first_s: float | None = None  # ours: rendering every row after the refresh (the thread's)
    status_holds: list[float] | None = None  # ours: each hold of the lock by a status call
    batch_holds: list[float] | None = None  # ours: each dispatch batch's hold meanwhile
    collected: tuple[int, float] = (0, 0.0)  # ours: holds a garbage collection fell in; its time

    @property
    def p50(self) -> float:
        return percentile(self.draining, 0.5)

    @property
    def p99(self) -> float:
        return percentile(self.draining, 0.99)

    @property
    def idle_p50(self) -> float:
        return percentile(self.idle, 0.5)

    @property
    def idle_p99(self) -> float:
        return percentile(self.idle, 0.99)


def status_calls(n: int, quick: bool) -> int:
    """Status calls timed per handler, size and state: a p99 by nearest rank is the largest
    call of fewer than 100 (the 2nd largest of 100, the 3rd of 200). Calls at 1k take
    milliseconds: 200 of them."""
    if quick:
        return 20
    return 200 if n <= 1000 else 100


def shared_keys(text: str) -> list[tuple[str, str]]:
    return [(r["schedule_time"], r["image"]) for r in json.loads(text)["scheduled_images"]]


def everything(level: Any) -> bool:
    """``list``'s visibility for unrestricted caps (``status`` takes ``access.every_image``, what
    the module passes for them: its reply may then take the kept sheet)."""
    return True


def status_ours(n: int, samples: int, idle_samples: int) -> StatusResult:
    """``status`` of every image, as the module answers it (``respond`` of the handler's
    text), on this thread: ``idle_samples`` calls idle, then ``samples`` while another thread
    drains slot after slot of ``n`` images (each cycle as ``drain_ours``; ours drains a slot
    faster than the calls come, so every timed call starts while one drains).

    Every row is rendered first, as the first status call does (timed apart: ``first_s``);
    each later call renders the rows changed since the one before."""
    setup, _ = build_ours(n)
    handler = setup.handler
    timer = time_lock(handler)
    level = handler.resolve("")

    def one() -> float:
        began = time.perf_counter()
        respond(JsonText(handler.status_text(level, every_image)))
        return time.perf_counter() - began

    began = time.perf_counter()
    while handler._status.render_some():
        pass
    first = time.perf_counter() - began
    rows = shared_keys(handler.status_text(level, every_image))
    gc.collect()
    idle = [one() for _ in range(idle_samples)]
    stop = threading.Event()
    running = threading.Event()
    cycles = 0

    failed: list[BaseException] = []

    def drain() -> None:
        nonlocal cycles
        running.set()
        try:
            while not stop.is_set():
                drain_ours(setup)
                cycles += 1
        except BaseException as e:  # the figures would be idle ones: void
            failed.append(e)

    thread = threading.Thread(target=drain, name="drain")
    timer.clear()
    thread.start()
    try:
        running.wait()
        draining = [one() for _ in range(samples) if thread.is_alive()]
    finally:
        stop.set()
        thread.join()
    if failed or not cycles:
        raise SystemExit(f"ours at {fmt_n(n)}: the drain thread failed ({failed!r}): void")
    return StatusResult(
        n,
        idle,
        draining,
        cycles,
        rows,
        first,
        timer.holds.get(threading.current_thread().name, [0.0]),
        list(timer.batches),
        (timer.collected, timer.collecting),
    )


def status_upstream(mss: Any, n: int, samples: int, idle_samples: int) -> StatusResult:
    """``status`` of every image (upstream's ``status()``, its JSON included) on this thread:
    ``idle_samples`` calls idle, then ``samples`` while its real ``run()`` drains slots of
    ``n`` images on another (as ``bench_upstream`` drives it), slot after slot until they are
    in; the last slot is cut short then (at 50k one would take minutes, stretched by the calls
    holding its lock)."""
    setup = build_upstream(mss, n)
    handler = setup.handler
    schedule_mod: Any = sys.modules["rbd_support.schedule"]
    level = schedule_mod.LevelSpec("", "", None, None)  # the global level, as from_name("")

    def one() -> float:
        began = time.perf_counter()
        handler.status(level)
        return time.perf_counter() - began

    saved_datetime = mss.datetime
    mss.datetime = FrozenDatetime
    try:
        FrozenDatetime.frozen = setup.start
        fill_upstream(setup)
        if n <= 2_000:  # the queue filled directly is the one enqueue() builds
            check = build_upstream(mss, n)
            enqueue_upstream(mss, check)
            logging.getLogger(f"{LOG.name}.upstream").removeHandler(check.errors)
            if check.handler.queue != handler.queue:
                raise SystemExit("upstream: fill_upstream differs from enqueue()")
        rows = shared_keys(handler.status(level)[1])
        gc.collect()
        idle = [one() for _ in range(idle_samples)]
        draining: list[float] = []
        slots = 0
        while len(draining) < samples:  # a slot at a time (at 1k one drains in a few calls)
            FrozenDatetime.frozen = setup.slot + timedelta(minutes=slots)
            handler.last_refresh_images = FrozenDatetime.frozen
            setup.counter.count = 0
            handler.stop_thread = False
            thread = threading.Thread(target=handler.run, name="upstream-run")
            thread.start()
            while thread.is_alive() and len(draining) < samples:
                draining.append(one())
            handler.stop_thread = True
            thread.join()
            slots += 1
    finally:
        mss.datetime = saved_datetime
        logging.getLogger(f"{LOG.name}.upstream").removeHandler(setup.errors)
    if setup.errors.records:
        raise SystemExit(f"upstream logged an error: {setup.errors.records[0].getMessage()}")
    return StatusResult(n, idle, draining, slots, rows)


def ratio_cell(upstream: float, ours: float) -> tuple[str, bool]:
    ratio = upstream / ours
    return f"{ratio:.2f}x {'PASS' if ratio >= 1 else 'FAIL'}", ratio >= 1


def print_status(ours: list[StatusResult], upstream: list[StatusResult]) -> list[str]:
    """The status tables; returns the verdicts (each target: upstream / ours >= 1)."""
    print("STATUS: every image's status, its JSON text included, idle and while a slot drains")
    rows: list[tuple[str, ...]] = []
    for r in sorted([*ours, *upstream], key=lambda r: (r.n, r.first_s is None)):
        rows.append(
            (
                fmt_n(r.n),
                "ours" if r.first_s is not None else "upstream",
                f"{r.idle_p50 * 1e3:.1f}",
                f"{r.idle_p99 * 1e3:.1f}",
                f"{r.p50 * 1e3:.1f}",
                f"{r.p99 * 1e3:.1f}",
                f"{max(r.draining) * 1e3:.1f}",
                f"{len(r.idle)}+{len(r.draining)}",
                str(r.cycles),
            )
        )
    headers: tuple[str, ...] = (
        "images",
        "handler",
        "idle p50 ms",
        "idle p99 ms",
        "drain p50 ms",
        "drain p99 ms",
        "max ms",
        "calls",
        "slots drained",
    )
    for line in table(headers, rows):
        print("  " + line)
    print("  both drain slot after slot meanwhile (upstream's last one cut short once sampled)")
    print()
    verdicts: list[str] = []
    theirs = {r.n: r for r in upstream}
    if theirs:
        print("RATIO upstream / ours (target >= 1: ours at least as fast)")
        rows = []
        met = total = 0
        for r in sorted(ours, key=lambda r: r.n):
            u = theirs.get(r.n)
            if u is None:
                continue
            cells = [
                ratio_cell(u.idle_p50, r.idle_p50),
                ratio_cell(u.idle_p99, r.idle_p99),
                ratio_cell(u.p50, r.p50),
                ratio_cell(u.p99, r.p99),
            ]
            met += sum(ok for _, ok in cells)
            total += len(cells)
            same = "yes" if u.rows == r.rows else "NO"
            rows.append((fmt_n(r.n), *(text for text, _ in cells), same))
        headers = ("images", "idle p50", "idle p99", "drain p50", "drain p99", "shared keys same")
        for line in table(headers, rows):
            print("  " + line)
        print()
        verdicts.append(f"status targets met {met}/{total} (upstream / ours >= 1)")
        if any(row[-1] != "yes" for row in rows):
            verdicts.append("status: the keys both show DIFFER from upstream's")
    print("LOCK: ours, holds of the handler's lock while a slot drains (CPU time, ms)")
    rows = []
    held_ok = True
    for r in sorted(ours, key=lambda r: r.n):
        status = r.status_holds or [0.0]
        batches = r.batch_holds or [0.0]
        ok = max(status) <= max(batches)
        held_ok &= ok
        rows.append(
            (
                fmt_n(r.n),
                f"{(r.first_s or 0.0) * 1e3:.0f}",
                *(f"{percentile(status, q) * 1e3:.2f}" for q in (0.5, 0.99, 1.0)),
                *(f"{percentile(batches, q) * 1e3:.2f}" for q in (0.5, 0.99, 1.0)),
                f"{r.collected[0]} / {r.collected[1] * 1e3:.1f}",
                "PASS" if ok else "FAIL",
            )
        )
    headers = (
        "images",
        "render all rows",
        "status p50",
        "p99",
        "max",
        "batch p50",
        "p99",
        "max",
        "gc holds / ms",
        "status max <= batch max",
    )
    for line in table(headers, rows):
        print("  " + line)
    print(
        "  render all rows = what the first status call does (every row, a batch per hold);"
        " status = each hold by a status call (the inputs of a batch of changed rows, and the"
        " copy of the queue); batch = one _dispatch_due's (pop, re-queue, admit 256 images)."
        " A hold's CPU time leaves out a garbage collection set off in it (it stops the drain"
        " whichever lock is held, and lands in either): gc holds = how many holds had one,"
        " and those collections' time"
    )
    print()
    verdicts.append(
        f"status's longest lock hold within a dispatch batch's: {'PASS' if held_ok else 'FAIL'}"
    )
    return verdicts


# --- list (ls, ls -R) ---------------------------------------------------------------------------


def list_times(call: Any, samples: int) -> list[float]:
    times = []
    for _ in range(samples):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return times


def print_list(mss: Any, n: int, samples: int) -> str:
    """``list`` at ``n`` image-level schedules, ours (``respond`` of the handler's text, as the
    module replies) and upstream's ``list()`` (its JSON included): of the global level
    (what ``rbd mirror snapshot schedule ls -R`` asks) and of one image level (``ls
    --image``), each timed ``samples`` times idle."""
    ours = build_ours_listing(n)
    level = ours.resolve("")
    image = LevelSpec(
        POOL.id, NAMESPACES[1], image_id(1), f"{POOL.name}/{NAMESPACES[1]}/{image_name(1)}"
    )
    theirs = build_upstream_listing(mss, n)
    schedule_mod: Any = sys.modules["rbd_support.schedule"]
    their_global = schedule_mod.LevelSpec.make_global()
    their_image = theirs.schedules.level_specs[f"{POOL.id}/{NAMESPACES[1]}/{image_id(1)}"]
    if (
        json.loads(respond(JsonText(ours.list_text(level, everything)))).keys()
        != json.loads(theirs.list(their_global)[1]).keys()
    ):
        raise SystemExit("list: ours and upstream's list different levels")
    cases = [
        (
            "global (ls -R)",
            lambda: respond(JsonText(ours.list_text(level, everything))),
            lambda: theirs.list(their_global),
        ),
        (
            "one image (ls --image)",
            lambda: respond(JsonText(ours.list_text(image, everything))),
            lambda: theirs.list(their_image),
        ),
    ]
    print(f"LIST: {fmt_n(n)} image-level schedules, idle, {samples} calls each")
    rows = []
    met = 0
    for label, our_call, their_call in cases:
        gc.collect()
        o = list_times(our_call, samples)
        u = list_times(their_call, samples)
        p50, ok50 = ratio_cell(percentile(u, 0.5), percentile(o, 0.5))
        p99, ok99 = ratio_cell(percentile(u, 0.99), percentile(o, 0.99))
        met += ok50 + ok99
        rows.append(
            (
                label,
                f"{percentile(o, 0.5) * 1e3:.1f}",
                f"{percentile(o, 0.99) * 1e3:.1f}",
                f"{percentile(u, 0.5) * 1e3:.1f}",
                f"{percentile(u, 0.99) * 1e3:.1f}",
                p50,
                p99,
            )
        )
    headers = (
        "level",
        "ours p50 ms",
        "ours p99 ms",
        "upstream p50 ms",
        "upstream p99 ms",
        "upstream/ours p50",
        "p99",
    )
    for line in table(headers, rows):
        print("  " + line)
    print()
    return f"list targets met {met}/{2 * len(cases)} at {fmt_n(n)} schedules"


# --- report ---------------------------------------------------------------------------------


def print_upstream(ours: dict[int, OursResult], upstream: dict[int, UpstreamResult]) -> None:
    print("UPSTREAM: rbd_support MirrorSnapshotScheduleHandler (Pacific 16.2.15), its run() loop")
    rows = [
        (
            fmt_n(n),
            f"{r.enqueue_s:.2f}",
            f"{r.enqueue_us:.1f}",
            f"{r.cycle_s:.2f}",
            f"{r.cycle_us:.1f}",
        )
        for n, r in sorted(upstream.items())
    ]
    for line in table(("images", "enqueue s", "enqueue us/img", "cycle s", "cycle us/img"), rows):
        print("  " + line)
    print()

    print("RATIO upstream / ours, per image")
    rows = [
        (
            fmt_n(n),
            f"{upstream[n].cycle_us:.1f}",
            f"{ours[n].cycle_us:.2f}",
            f"{upstream[n].cycle_us / ours[n].cycle_us:.0f}x",
            f"{upstream[n].enqueue_us / ours[n].enqueue_us:.0f}x",
        )
        for n in sorted(upstream)
    ]
    for line in table(
        ("images", "upstream cycle us", "ours cycle us", "cycle ratio", "enqueue ratio"), rows
    ):
        print("  " + line)
    print()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m tests.benchmarks.bench_scheduler", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 10k/20k ours, 20k upstream; status at 1k/20k/50k, fewer calls",
    )
    parser.add_argument("--sizes", type=parse_sizes, help="our sizes, e.g. 10k,100k,1M")
    parser.add_argument("--upstream-sizes", type=parse_sizes, help="upstream's, e.g. 20k,50k")
    parser.add_argument("--cycles", type=int, help="cycles per size for ours (median reported)")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    parser.add_argument("--no-upstream", action="store_true", help="measure ours only")
    parser.add_argument(
        "--log",
        choices=("mgr", "quiet"),
        default="mgr",
        help="mgr: debug records built then dropped by the handler, as in ceph-mgr (default);"
        " quiet: logger at WARNING",
    )
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="cProfile one cycle at the largest size (auto: when above the 1M target)",
    )
    parser.add_argument(
        "--inline",
        action="store_true",
        help="fake driver completes re-entrantly (nested), reproducing the recursion limit",
    )
    parser.add_argument(
        "--stagger", action="store_true", help="ours with the stagger option on (its hot path)"
    )
    parser.add_argument(
        "--status-sizes",
        type=parse_sizes,
        help="images for the status comparison (default 1k,20k,50k, --quick too)",
    )
    parser.add_argument(
        "--status-samples",
        type=int,
        help="status calls timed while draining, each handler and size (default 200 at 1k and"
        " below, 100 above; --quick 20)",
    )
    parser.add_argument(
        "--idle-samples",
        type=int,
        help="status calls timed idle, each handler and size (default as --status-samples)",
    )
    parser.add_argument("--no-status", action="store_true", help="skip the status comparison")
    parser.add_argument(
        "--list-size",
        type=parse_sizes,
        help="image-level schedules for the list comparison (default 10k)",
    )
    parser.add_argument("--no-list", action="store_true", help="skip the list comparison")
    args = parser.parse_args(argv)
    sizes: list[int] = args.sizes or (
        [10_000, 20_000] if args.quick else [10_000, 20_000, 50_000, 100_000, 1_000_000]
    )
    upstream_sizes: list[int] = args.upstream_sizes or (
        [20_000] if args.quick else [20_000, 50_000]
    )
    if args.no_upstream:
        upstream_sizes = []
    cycles: int = args.cycles or (3 if args.quick else 11)
    if cycles < 1:
        parser.error("--cycles must be >= 1")

    print(
        f"rbd_snapsched scheduler benchmark  python {sys.version.split()[0]}"
        f"  pid {os.getpid()}  {os.cpu_count()} CPUs"
    )
    print(
        f"{len(NAMESPACES)} namespaces, 1m pool-level schedule, max_concurrent_snap_create=10;"
        f" logging: {args.log}; times are wall clock, gc enabled"
    )
    print()

    configure_logging(args.log)
    began_all = time.perf_counter()
    ours: dict[int, OursResult] = {}
    for n in sorted(set(sizes) | set(upstream_sizes)):
        # ours at every size upstream is measured at, for the ratio
        k = cycles if n < 1_000_000 else max(1, min(cycles, 3))
        ours[n] = bench_ours(n, k, not args.no_memory and n in sizes, args.inline, args.stagger)
        print(f"  ours {fmt_n(n):>5}: {ours[n].cycle_us:.2f} us/image/cycle", flush=True)

    mss = import_upstream() if upstream_sizes else None
    upstream: dict[int, UpstreamResult] = {}
    for n in sorted(upstream_sizes):
        upstream[n] = bench_upstream(mss, n)
        print(f"  upstream {fmt_n(n):>5}: {upstream[n].cycle_s:.2f} s/cycle", flush=True)
    print()

    status: tuple[list[StatusResult], list[StatusResult]] | None = None
    if not args.no_status:
        ours_status: list[StatusResult] = []
        upstream_status: list[StatusResult] = []
        for n in args.status_sizes or STATUS_SIZES:
            samples = args.status_samples or status_calls(n, args.quick)
            idle_samples = args.idle_samples or status_calls(n, args.quick)
            mine = status_ours(n, samples, idle_samples)
            ours_status.append(mine)
            print(
                f"  ours {fmt_n(n):>5}: status p50 {mine.idle_p50 * 1e3:.1f} ms idle,"
                f" p99 {mine.p99 * 1e3:.1f} ms while draining",
                flush=True,
            )
            if not args.no_upstream:
                mss = mss or import_upstream()
                theirs = status_upstream(mss, n, samples, idle_samples)
                upstream_status.append(theirs)
                print(
                    f"  upstream {fmt_n(n):>5}: status p50 {theirs.idle_p50 * 1e3:.1f} ms idle,"
                    f" p99 {theirs.p99 * 1e3:.1f} ms while draining",
                    flush=True,
                )
        status = (ours_status, upstream_status)
        print()

    print("OURS: rbd_snapsched Handler (refresh, then repeated _dispatch_due per slot)")
    rows = []
    for n in sorted(ours):
        r = ours[n]
        mem = (
            ("-", "-", "-", "-")
            if r.peak_bytes is None or r.retained_bytes is None
            else (
                f"{r.peak_bytes / 2**20:.1f}",
                f"{r.retained_bytes / 2**20:.1f}",
                f"{r.retained_bytes / n:.0f} / {r.peak_bytes / n:.0f}",
                "-" if r.status_retained_bytes is None else f"{r.status_retained_bytes / n:.0f}",
            )
        )
        rows.append(
            (
                fmt_n(n),
                f"{r.enqueue_us:.2f}",
                f"{r.discover_us:.2f}",
                f"{r.cycle_us:.2f}",
                f"{min(r.cycles_us):.2f}-{max(r.cycles_us):.2f}",
                "-" if not r.kept_cycles_us else f"{statistics.median(r.kept_cycles_us):.2f}",
                str(len(r.cycles_us)),
                f"{r.cycle_us * n / 1e6:.3f}",
                str(r.calls),
                f"{r.max_hold_ms:.1f}",
                *mem,
            )
        )
    headers = (
        "images",
        "enqueue us/img",
        "(fake discover)",
        "cycle us/img",
        "range",
        "rows kept",
        "cycles",
        "cycle s",
        "calls",
        "max hold ms",
        "peak MB",
        "retained MB",
        "B/img ret/peak",
        "B/img kept",
    )
    for line in table(headers, rows):
        print("  " + line)
    print("  enqueue = handler.refresh() with the fake discovery included (its share in brackets);")
    print("  cycle = pop + re-enqueue + throttle + driver + completion, median over cycles;")
    print("  calls = _dispatch_due calls per cycle; max hold = longest lock hold of one call")
    print("  (what a command can wait behind); memory = tracemalloc over build + refresh + one")
    print("  cycle, retained = the handler's state afterwards, peak = with transients;")
    print("  rows kept = cycle us/img once a status call came (the writers mark what they change);")
    print("  B/img kept = retained after a status call and one more cycle (every row kept)")
    print()

    if upstream:
        print_upstream(ours, upstream)

    status_verdicts = print_status(*status) if status is not None else []
    if not args.no_list and not args.no_upstream:
        mss = mss or import_upstream()
        list_n = (args.list_size or [10_000])[0]
        status_verdicts.append(print_list(mss, list_n, 20 if args.quick else 50))

    largest = max(ours)
    verdicts: list[str] = []
    if 1_000_000 in ours:
        at_1m = ours[1_000_000].cycle_us
        ok = "PASS" if at_1m <= TARGET_US_AT_1M else "FAIL"
        verdicts.append(
            f"ours {at_1m:.2f} us/image/cycle at 1M (target <= {TARGET_US_AT_1M}: {ok})"
        )
    else:
        verdicts.append(f"ours {ours[largest].cycle_us:.2f} us/image/cycle at {fmt_n(largest)}")
    retained = ours[largest].retained_bytes
    if retained is not None:
        per_image = retained / largest
        judged = f"target <= {TARGET_BYTES_PER_IMAGE}: " + (
            ("PASS" if per_image <= TARGET_BYTES_PER_IMAGE else "FAIL")
            if largest == 1_000_000
            else "judged at 1M"
        )
        verdicts.append(f"ours {per_image:.0f} B/image retained at {fmt_n(largest)} ({judged})")
    if upstream:
        ratio_n = 50_000 if 50_000 in upstream else max(upstream)
        ratio = upstream[ratio_n].cycle_us / ours[ratio_n].cycle_us
        if ratio_n == 50_000:
            ok = "PASS" if ratio >= TARGET_RATIO_AT_50K else "FAIL"
            verdicts.append(
                f"upstream/ours {ratio:.0f}x at 50k (target >= {TARGET_RATIO_AT_50K:.0f}x: {ok})"
            )
        else:
            verdicts.append(f"upstream/ours {ratio:.0f}x at {fmt_n(ratio_n)}")
    verdicts.append(
        f"longest lock hold {ours[largest].max_hold_ms:.1f} ms at {fmt_n(largest)}"
        f" ({ours[largest].calls} _dispatch_due call(s) per cycle)"
    )

    verdicts.extend(status_verdicts)

    slow = 1_000_000 in ours and ours[1_000_000].cycle_us > TARGET_US_AT_1M
    if args.profile == "always" or (args.profile == "auto" and slow):
        # cProfile triples the time; 200k images show the same split as 1M in a quarter of it
        size = min(largest, PROFILE_MAX_IMAGES)
        print(f"PROFILE: one cycle of ours at {fmt_n(size)} images (cProfile, by own time)")
        print(profile_ours(size, 25))
    print(f"SUMMARY: {'; '.join(verdicts)}; total {time.perf_counter() - began_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
