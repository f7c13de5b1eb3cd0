"""Scheduler benchmark: our Handler against upstream rbd_support, per image per cycle.

Run from the repository root with the interpreter ceph-mgr embeds::

    /usr/bin/python3 -m tests.benchmarks.bench_scheduler            # full run, a few minutes
    /usr/bin/python3 -m tests.benchmarks.bench_scheduler --quick    # smoke run, seconds

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

``status`` while a slot drains
------------------------------
At ``--status-size`` images (default 50k), ``status`` of the global level (every image, the
JSON text included, as the mgr command returns it) is timed call after call on the main thread
while another thread drains: upstream's ``run()`` one slot (``status_upstream``), ours slot after
slot back to back (``status_ours``: one of our slots drains faster than one status call). Both
threads share the GIL, as the command and scheduler threads of a ceph-mgr module do.

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
from typing import Any

from tests.benchmarks.fakes import (
    LOG,
    NAMESPACES,
    POOL,
    Cycle,
    FakeClusterIO,
    build_ours,
    drain_ours,
)
from tests.benchmarks.report import fmt_n, parse_sizes, percentile, table
from tests.benchmarks.upstream import (
    FrozenDatetime,
    UpstreamResult,
    bench_upstream,
    build_upstream,
    check_upstream,
    enqueue_upstream,
    import_upstream,
)

TARGET_US_AT_1M = 5.0
TARGET_RATIO_AT_50K = 100.0
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
    peak_bytes: int | None = None
    retained_bytes: int | None = None

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
    del setup
    if memory:
        result.peak_bytes, result.retained_bytes = measure_ours_memory(n)
    return result


def measure_ours_memory(n: int) -> tuple[int, int]:
    """tracemalloc over building the handler, refresh and one cycle: (peak, retained) bytes.

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
    finally:
        tracemalloc.stop()
    del setup
    return peak - base, current - base


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


# --- status while a slot drains ---------------------------------------------------------------


@dataclass
class StatusResult:
    n: int
    idle: list[float]  # seconds per status, nothing draining
    draining: list[float]  # seconds per status started while a slot drained
    cycles: int  # slots drained meanwhile

    @property
    def p50(self) -> float:
        return percentile(self.draining, 0.5)

    @property
    def p99(self) -> float:
        return percentile(self.draining, 0.99)


def status_ours(n: int, samples: int, idle_samples: int = 5) -> StatusResult:
    """``status`` of every image (the handler call and the module's JSON) on this thread while
    another drains slot after slot of ``n`` images (each cycle as ``drain_ours``), until
    ``samples`` calls are timed. Ours drains a slot far faster than one status at this size,
    so the slots run back to back; every timed call starts while one drains."""
    setup, _ = build_ours(n)
    handler = setup.handler
    level = handler.resolve("")

    def one() -> float:
        began = time.perf_counter()
        json.dumps(handler.status(level, lambda image: True), indent=4, sort_keys=True)
        return time.perf_counter() - began

    gc.collect()
    idle = [one() for _ in range(idle_samples)]
    stop = threading.Event()
    running = threading.Event()
    cycles = 0

    def drain() -> None:
        nonlocal cycles
        running.set()
        while not stop.is_set():
            drain_ours(setup)
            cycles += 1

    thread = threading.Thread(target=drain, name="drain")
    thread.start()
    try:
        running.wait()
        draining = [one() for _ in range(samples) if thread.is_alive()]
    finally:
        stop.set()
        thread.join()
    return StatusResult(n, idle, draining, cycles)


def status_upstream(mss: Any, n: int, idle_samples: int = 5) -> StatusResult:
    """``status`` of every image (upstream's ``status()``, its JSON included) on this thread
    while its real ``run()`` drains one slot of ``n`` images on another (as ``bench_upstream``
    drives it), timed call after call until the slot is drained."""
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
        enqueue_upstream(mss, setup)
        gc.collect()
        idle = [one() for _ in range(idle_samples)]
        FrozenDatetime.frozen = setup.slot
        handler.last_refresh_images = setup.slot
        thread = threading.Thread(target=handler.run, name="upstream-run")
        thread.start()
        draining = []
        while thread.is_alive():
            elapsed = one()
            draining.append(elapsed)
        thread.join()
    finally:
        mss.datetime = saved_datetime
        logging.getLogger(f"{LOG.name}.upstream").removeHandler(setup.errors)
    check_upstream(setup)
    return StatusResult(n, idle, draining, 1)


def print_status(ours: StatusResult, upstream: StatusResult | None) -> None:
    print(f"STATUS while a {fmt_n(ours.n)}-image slot drains: every image's status, JSON included")
    rows = []
    for label, r in (("ours", ours), ("upstream", upstream)):
        if r is None:
            continue
        rows.append(
            (
                label,
                f"{percentile(r.idle, 0.5) * 1e3:.0f}",
                f"{r.p50 * 1e3:.0f}",
                f"{r.p99 * 1e3:.0f}",
                f"{max(r.draining) * 1e3:.0f}",
                str(len(r.draining)),
                str(r.cycles),
            )
        )
    headers = ("handler", "idle p50 ms", "p50 ms", "p99 ms", "max ms", "calls", "slots drained")
    for line in table(headers, rows):
        print("  " + line)
    if upstream is not None:
        print(
            f"  upstream / ours: p99 {upstream.p99 / ours.p99:.2f}x,"
            f" p50 {upstream.p50 / ours.p50:.2f}x"
            f" (ours / upstream: p99 {ours.p99 / upstream.p99:.2f}x,"
            f" p50 {ours.p50 / upstream.p50:.2f}x; above 1: ours slower)"
        )
        print(
            "  upstream drained one slot, stretched by the status calls holding its lock; ours"
            " drained slots back to back meanwhile (one takes well under one status call)"
        )
    print()


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
        "--quick", action="store_true", help="smoke run: 10k/20k ours, 20k upstream"
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
        "--status-size",
        type=parse_sizes,
        help="images in the slot that drains while status is timed (default 50k; --quick 20k)",
    )
    parser.add_argument(
        "--status-samples", type=int, default=30, help="status calls timed for ours"
    )
    parser.add_argument("--no-status", action="store_true", help="skip status while draining")
    args = parser.parse_args(argv)
    sizes: list[int] = args.sizes or (
        [10_000, 20_000] if args.quick else [10_000, 20_000, 50_000, 100_000, 1_000_000]
    )
    upstream_sizes: list[int] = args.upstream_sizes or (
        [20_000] if args.quick else [20_000, 50_000]
    )
    if args.no_upstream:
        upstream_sizes = []
    cycles: int = args.cycles or (3 if args.quick else 5)
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

    status: tuple[StatusResult, StatusResult | None] | None = None
    if not args.no_status:
        status_n = (args.status_size or [20_000 if args.quick else 50_000])[0]
        ours_status = status_ours(status_n, args.status_samples)
        print(
            f"  ours {fmt_n(status_n):>5}: status p99 {ours_status.p99 * 1e3:.0f} ms while draining"
        )
        upstream_status = None
        if not args.no_upstream:
            mss = mss or import_upstream()
            upstream_status = status_upstream(mss, status_n)
            print(
                f"  upstream {fmt_n(status_n):>5}: status p99 {upstream_status.p99 * 1e3:.0f} ms"
                " while draining"
            )
        status = (ours_status, upstream_status)
        print()

    print("OURS: rbd_snapsched Handler (refresh, then repeated _dispatch_due per slot)")
    rows = []
    for n in sorted(ours):
        r = ours[n]
        mem = (
            ("-", "-", "-")
            if r.peak_bytes is None or r.retained_bytes is None
            else (
                f"{r.peak_bytes / 2**20:.1f}",
                f"{r.retained_bytes / 2**20:.1f}",
                f"{r.retained_bytes / n:.0f} / {r.peak_bytes / n:.0f}",
            )
        )
        rows.append(
            (
                fmt_n(n),
                f"{r.enqueue_us:.2f}",
                f"{r.discover_us:.2f}",
                f"{r.cycle_us:.2f}",
                f"{min(r.cycles_us):.2f}-{max(r.cycles_us):.2f}",
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
        "cycles",
        "cycle s",
        "calls",
        "max hold ms",
        "peak MB",
        "retained MB",
        "B/img ret/peak",
    )
    for line in table(headers, rows):
        print("  " + line)
    print("  enqueue = handler.refresh() with the fake discovery included (its share in brackets);")
    print("  cycle = pop + re-enqueue + throttle + driver + completion, median over cycles;")
    print("  calls = _dispatch_due calls per cycle; max hold = longest lock hold of one call")
    print("  (what a command can wait behind); memory = tracemalloc over build + refresh + one")
    print("  cycle, retained = the handler's state afterwards, peak = with transients")
    print()

    if upstream:
        print_upstream(ours, upstream)

    if status is not None:
        print_status(*status)

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

    if status is not None:
        ours_status, upstream_status = status
        text = (
            f"status p99 while a {fmt_n(ours_status.n)} slot drains:"
            f" ours {ours_status.p99 * 1e3:.0f} ms"
        )
        if upstream_status is not None:
            text += (
                f", upstream {upstream_status.p99 * 1e3:.0f} ms"
                f" (upstream / ours {upstream_status.p99 / ours_status.p99:.2f}x)"
            )
        verdicts.append(text)

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
