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
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib
import importlib.util
import io
import json
import logging
import math
import os
import pstats
import statistics
import sys
import threading
import time
import tracemalloc
import types
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from rbd_snapsched.handler import Handler
from rbd_snapsched.levels import ImageInfo, ImageSpec, LevelSpec, PoolInfo
from rbd_snapsched.requests import Outcome, OutcomeKind, State
from rbd_snapsched.settings import Settings
from rbd_snapsched.store import PoolGone, ScheduleStore

UPSTREAM_DIR = "/usr/share/ceph/mgr/rbd_support"
POOL = PoolInfo(1, "rbd", True)
NAMESPACES = ("", "ns1", "ns2", "ns3")  # images are spread round-robin over these
# The first refresh happens mid-minute; the first slot is the next whole minute.
START = datetime(2025, 1, 6, 12, 0, 30, tzinfo=timezone.utc)
TARGET_US_AT_1M = 5.0
TARGET_RATIO_AT_50K = 100.0
PROFILE_MAX_IMAGES = 200_000

LOG = logging.getLogger("bench_scheduler")
LOG.propagate = False


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


def image_id(i: int) -> str:
    return f"{0x10A2B3C4D5E6 + i:012x}"  # 12 hex digits, like librbd's image ids


def image_name(i: int) -> str:
    return f"img{i:07d}"


# --- fakes for our Handler -----------------------------------------------------------------


class FakeClusterIO:
    """One RBD pool holding ``n`` primary snapshot-mirrored images over a few namespaces.

    ``discover`` builds fresh keys and names on every call, as the real one does from librbd's
    answers, so the handler's retained memory is measured with its own copies.
    """

    def __init__(self, n: int) -> None:
        self.n = n

    def rbd_pools(self) -> list[PoolInfo]:
        return [POOL]

    def discover(
        self, pool: PoolInfo, wanted: Callable[[LevelSpec], bool]
    ) -> dict[ImageSpec, str] | None:
        found: dict[ImageSpec, str] = {}
        for k, namespace in enumerate(NAMESPACES):
            if not wanted(LevelSpec.for_pool(pool, namespace)):
                continue
            prefix = f"{pool.name}/{namespace}/" if namespace else f"{pool.name}/"
            for i in range(k, self.n, len(NAMESPACES)):
                found[ImageSpec(pool.id, namespace, image_id(i))] = prefix + image_name(i)
        return found

    def has_tx_peer(self, pool_id: int) -> bool:
        return True

    def newest_mirror_snapshot(self, image: ImageSpec) -> datetime | None:
        return None  # as a pool just enabled: nothing to seed


class FakeResolver:
    """levels.Resolver for the one pool; image lookups are never needed (pool-level schedule)."""

    def pool_by_name(self, name: str) -> PoolInfo | None:
        return POOL if name == POOL.name else None

    def pool_by_id(self, pool_id: int) -> PoolInfo | None:
        return POOL if pool_id == POOL.id else None

    def namespaces(self, pool_id: int) -> Collection[str]:
        return [ns for ns in NAMESPACES if ns]

    def namespace_in_image_mode(self, pool_id: int, namespace: str) -> bool:
        return True

    def image_by_name(self, pool_id: int, namespace: str, name: str) -> ImageInfo | None:
        return None

    def image_by_id(self, pool_id: int, namespace: str, image_id: str) -> ImageInfo | None:
        return None


class MemoryOmap:
    """store.OmapBackend in memory, over the pools in ``pools`` (others raise PoolGone)."""

    def __init__(self, pools: Collection[int] = (POOL.id,)) -> None:
        self.pools = frozenset(pools)
        self.objects: dict[int, dict[str, bytes]] = {}

    def _check(self, pool_id: int) -> None:
        if pool_id not in self.pools:
            raise PoolGone(f"pool {pool_id} does not exist")

    def read(self, pool_id: int) -> dict[str, bytes]:
        self._check(pool_id)
        return dict(self.objects.get(pool_id, {}))

    def write(self, pool_id: int, key: str, value: bytes) -> None:
        self._check(pool_id)
        self.objects.setdefault(pool_id, {})[key] = value

    def delete(self, pool_id: int, keys: Sequence[str]) -> None:
        self._check(pool_id)
        records = self.objects.get(pool_id, {})
        for key in keys:
            records.pop(key, None)


class MemoryOption:
    """store.OptionBackend in memory ("" reads as None, as the real one)."""

    def __init__(self) -> None:
        self.value: str | None = None

    def get(self) -> str | None:
        return self.value or None

    def set(self, value: str | None) -> None:
        self.value = value


class FakeClock:
    """clock.Clock: a settable aware UTC time; waiting returns at once."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        self._now = now

    def wait(self, cond: threading.Condition, deadline: datetime | None) -> None:
        return


CREATED = Outcome(OutcomeKind.CREATED, State.CREATING, 0, 1, "created mirror snapshot 1")


class InstantDriver:
    """handler.SnapshotDriver that reports CREATED before ``start`` returns.

    A completion frees a throttle slot, so ``Handler._request_done`` starts the next waiting
    image from inside ``done``, which re-enters ``start``. With ``inline`` that nests one level
    per waiting image (246 per 256-image batch at the default cap of 10), enough to exceed
    Python's recursion limit (see ``--inline``). By default the re-entrant calls are queued and
    completed by the outermost ``start`` before it returns: still synchronous, but flat, the
    way librbd's callback threads deliver completions.
    """

    def __init__(self, inline: bool = False) -> None:
        self.inline = inline
        self.started = 0
        self.depth = 0
        self.first_start: float | None = None  # perf_counter() at the first outermost start
        self._later: deque[tuple[ImageSpec, Callable[[ImageSpec, Outcome], None]]] = deque()

    def start(
        self,
        image: ImageSpec,
        name: str,
        done: Callable[[ImageSpec, Outcome], None],
        recent_since: datetime | None = None,
    ) -> None:
        self.started += 1
        if self.depth and not self.inline:
            self._later.append((image, done))
            return
        if self.first_start is None:
            self.first_start = time.perf_counter()
        self.depth += 1
        try:
            done(image, CREATED)
            later = self._later
            while later:
                queued, queued_done = later.popleft()
                queued_done(queued, CREATED)
        finally:
            self.depth -= 1

    def in_flight(self, image: ImageSpec) -> State | None:
        return None  # every request completes within start()


class ErrorCounter(logging.Handler):
    """Counts (and keeps the first few) error records: a benchmark of a failing path is void."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class OursSetup:
    n: int
    handler: Handler
    clock: FakeClock
    driver: InstantDriver
    errors: ErrorCounter
    slot: datetime  # the slot the queued images are due at


def build_ours(n: int, inline: bool = False, stagger: bool = False) -> tuple[OursSetup, float]:
    """A Handler with a 1m pool-level schedule and ``n`` queued images; also refresh()'s time.

    ``stagger`` runs the staggered path (a key per image, next runs per phase); with 1m every
    phase is 0, so the slots are the same and only its cost shows.
    """
    log = logging.getLogger(f"{LOG.name}.ours")
    for old in [h for h in log.handlers if isinstance(h, ErrorCounter)]:
        log.removeHandler(old)  # the previous size's
    errors = ErrorCounter()
    log.addHandler(errors)
    resolver = FakeResolver()
    clock = FakeClock(START)
    driver = InstantDriver(inline)
    handler = Handler(
        io=FakeClusterIO(n),
        resolver=resolver,
        store=ScheduleStore(MemoryOmap(), MemoryOption(), resolver, log),
        # rbd_support's storage, read only, as module.py passes it: empty here, as after a
        # takeover (an image it still scheduled would be skipped)
        upstream=ScheduleStore(MemoryOmap(), MemoryOption(), resolver, log),
        driver=driver,
        clock=clock,
        log=log,
        settings=Settings(stagger=stagger),  # the module options' defaults otherwise
    )
    handler.add_schedule(handler.resolve(f"{POOL.name}/"), "1m", None)
    began = time.perf_counter()
    handler.refresh()  # loads the schedule back from the store, discovers, enqueues every image
    elapsed = time.perf_counter() - began
    slot = START.replace(second=0) + timedelta(minutes=1)
    setup = OursSetup(n, handler, clock, driver, errors, slot)
    check_ours(setup, started=0)
    return setup, elapsed


@dataclass
class Cycle:
    seconds: float  # the whole drain
    calls: int  # _dispatch_due calls it took
    max_hold: float  # the longest lock hold of one call, seconds (see drain_ours)


def drain_ours(setup: OursSetup) -> Cycle:
    """One cycle: jump to the slot, call ``_dispatch_due`` until it says nothing is left.

    A call holds the handler lock from its start until its first ``driver.start`` (requests
    start outside the lock): that span, per call, is what a command can wait behind.
    """
    setup.clock.set(setup.slot)
    dispatch = setup.handler._dispatch_due
    driver = setup.driver
    started = driver.started
    calls = 0
    max_hold = 0.0
    clock = time.perf_counter
    began = clock()
    more = True
    while more:
        driver.first_start = None
        call_began = clock()
        more = dispatch()
        hold = (driver.first_start or clock()) - call_began
        calls += 1
        if hold > max_hold:
            max_hold = hold
    elapsed = clock() - began
    setup.slot += timedelta(minutes=1)
    check_ours(setup, started=started + setup.n)
    return Cycle(elapsed, calls, max_hold)


def check_ours(setup: OursSetup, started: int) -> None:
    """Every image ran once and is queued once, at the next slot; nothing was logged as error."""
    queue = setup.handler._queue
    if setup.errors.records:
        first = setup.errors.records[0]
        raise SystemExit(f"ours logged {len(setup.errors.records)} errors: {first.getMessage()}")
    if setup.driver.started != started:
        raise SystemExit(f"ours started {setup.driver.started} requests, expected {started}")
    if len(queue) != setup.n or queue.next_deadline() != setup.slot:
        raise SystemExit(
            f"ours: {len(queue)} queued, head at {queue.next_deadline()}, expected {setup.n}"
            f" at {setup.slot}"
        )
    if setup.handler._queue.pop_due(setup.slot - timedelta(seconds=1)) is not None:
        raise SystemExit("ours: an image is due before the slot")


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


# --- upstream ------------------------------------------------------------------------------


def import_upstream() -> Any:
    """Import upstream's mirror_snapshot_schedule.py without its package ``__init__``.

    ``rbd_support/__init__.py`` imports module.py, which needs ceph-mgr. A synthetic package
    module with the right ``__path__`` lets ``from .common import ...`` and
    ``from .schedule import ...`` resolve to the installed files and nothing else.
    """
    if "rbd_support" not in sys.modules:
        package = types.ModuleType("rbd_support")
        package.__path__ = [UPSTREAM_DIR]
        sys.modules["rbd_support"] = package
    if importlib.util.find_spec("mgr_module") is None and "mgr_module" not in sys.modules:
        stub = types.ModuleType("mgr_module")  # in case a common.py of another release wants it
        stub.MgrModule = object  # type: ignore[attr-defined]
        sys.modules["mgr_module"] = stub
    module: Any = importlib.import_module("rbd_support.mirror_snapshot_schedule")
    return module


class FrozenDatetime(datetime):
    """Upstream reads the time with ``datetime.now()`` (naive local): this makes it settable.

    Installed as upstream's module-level ``datetime`` name; ``now()`` returns a plain datetime.
    """

    frozen = datetime(2025, 1, 6, 12, 0, 30)

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return cls.frozen


class FakeMgrModule:
    """What MirrorSnapshotScheduleHandler and Schedules read from their mgr module."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self.rados = None  # CreateSnapshotRequests keeps it; never used with add() stubbed
        self.client_blocklisted = threading.Event()
        self.options: dict[str, Any] = {"max_concurrent_snap_create": 10}

    def get_module_option(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)

    def get_localized_module_option(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)

    def set_module_option(self, name: str, value: Any) -> None:
        self.options[name] = value

    def set_localized_module_option(self, name: str, value: Any) -> None:
        self.options[name] = value


@dataclass
class UpstreamResult:
    n: int
    enqueue_s: float
    cycle_s: float

    @property
    def enqueue_us(self) -> float:
        return self.enqueue_s / self.n * 1e6

    @property
    def cycle_us(self) -> float:
        return self.cycle_s / self.n * 1e6


@dataclass
class Counter:
    limit: int
    count: int = 0
    images: set[tuple[str, str, str]] = field(default_factory=set)


@dataclass
class UpstreamSetup:
    handler: Any
    counter: Counter
    errors: ErrorCounter
    start: datetime  # naive, as upstream's datetime.now(): the time of the enqueue
    slot: datetime  # the slot every image is due at


def build_upstream(mss: Any, n: int) -> UpstreamSetup:
    """Upstream's handler over one pool of ``n`` images with a 1m schedule, nothing queued.

    ``CreateSnapshotRequests.add`` is a counter that stops ``run()`` after the N-th image.
    The caller installs FrozenDatetime and removes ``errors`` from the logger afterwards.
    """
    log = logging.getLogger(f"{LOG.name}.upstream")
    errors = ErrorCounter()
    log.addHandler(errors)
    module = FakeMgrModule(log)
    handler: Any = mss.MirrorSnapshotScheduleHandler(module)
    schedule_mod: Any = sys.modules["rbd_support.schedule"]

    pool_id = str(POOL.id)  # upstream keys pools by str(pool id)
    level = schedule_mod.LevelSpec.from_pool_spec(pool_id, POOL.name)
    schedule = schedule_mod.Schedule(level.name)
    schedule.add(schedule_mod.Interval.from_string("1m"))
    handler.queue = {}
    handler.schedules = schedule_mod.Schedules(handler)
    handler.schedules.level_specs = {level.id: level}
    handler.schedules.schedules = {level.id: schedule}
    images: dict[str, dict[str, dict[str, str]]] = {pool_id: {}}
    for k, namespace in enumerate(NAMESPACES):
        prefix = f"{POOL.name}/{namespace}/" if namespace else f"{POOL.name}/"
        images[pool_id][namespace] = {
            image_id(i): prefix + image_name(i) for i in range(k, n, len(NAMESPACES))
        }
    handler.images = images

    start = datetime(2025, 1, 6, 12, 0, 30)  # naive, as upstream's datetime.now()
    slot = start.replace(second=0) + timedelta(minutes=1)
    counter = Counter(limit=n)

    def add(pool: str, namespace: str, image: str) -> None:
        counter.count += 1
        counter.images.add((pool, namespace, image))
        if counter.count >= counter.limit:
            handler.stop_thread = True

    handler.create_snapshot_requests.add = add
    return UpstreamSetup(handler, counter, errors, start, slot)


def enqueue_upstream(mss: Any, setup: UpstreamSetup) -> float:
    """Every image enqueued as ``refresh_queue()`` does for new ones, at ``setup.start``
    (FrozenDatetime installed); the seconds it took."""
    handler = setup.handler
    FrozenDatetime.frozen = setup.start
    gc.collect()
    began = time.perf_counter()
    now = mss.datetime.now()
    for pool in handler.images:  # refresh_queue()'s loop over new images
        for namespace in handler.images[pool]:
            for image in handler.images[pool][namespace]:
                handler.enqueue(now, pool, namespace, image)
    elapsed = time.perf_counter() - began
    slot_key = setup.slot.strftime("%Y-%m-%d %H:%M:00")
    if list(handler.queue) != [slot_key] or len(handler.queue[slot_key]) != setup.counter.limit:
        raise SystemExit(f"upstream: unexpected queue after enqueue: {list(handler.queue)}")
    return elapsed


def check_upstream(setup: UpstreamSetup) -> None:
    """Every image ran once and is queued once at the next slot; nothing logged as error."""
    handler, counter, n = setup.handler, setup.counter, setup.counter.limit
    next_key = (setup.slot + timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:00")
    if setup.errors.records:
        raise SystemExit(f"upstream logged an error: {setup.errors.records[0].getMessage()}")
    if counter.count != n or len(counter.images) != n:
        raise SystemExit(f"upstream dispatched {counter.count} ({len(counter.images)} distinct)")
    if list(handler.queue) != [next_key] or len(handler.queue[next_key]) != n:
        raise SystemExit(f"upstream: unexpected queue after the cycle: {list(handler.queue)}")


def bench_upstream(mss: Any, n: int) -> UpstreamResult:
    """Upstream's enqueue of every image, then one cycle of its own ``run()`` loop.

    How it is driven (faithful to its code path, Pacific 16.2.15):
      * The handler is constructed normally (its thread is created, never started) with a fake
        mgr module; ``images`` and ``schedules`` are set as ``init_schedule_queue()`` +
        ``refresh_images()`` would leave them for one pool with a 1m pool-level schedule,
        using upstream's own LevelSpec / Schedule / Interval objects.
      * ``datetime`` in upstream's module is replaced by FrozenDatetime, a settable clock
        (upstream has no clock injection). Every image is enqueued with ``enqueue(now, ...)``
        as ``refresh_queue()`` does for new images: all land in the next minute's slot list.
      * The clock is moved to that slot, ``last_refresh_images`` to now (so ``refresh_images()``
        returns at once, as between real refreshes), and upstream's real ``run()`` is called
        on this thread: each iteration refresh check -> lock -> ``dequeue()`` ->
        ``create_snapshot_requests.add`` -> lock -> ``enqueue(datetime.now(), ...)``.
        ``CreateSnapshotRequests.add`` is replaced by a counter that sets ``stop_thread``
        after the N-th image, so ``run()`` returns right after re-enqueueing the last one.
      * The clock stays on the slot, so the whole cycle re-enqueues into one list, as it does
        whenever a drain finishes within its minute; every re-enqueue scans that list
        (``image_spec not in self.queue[schedule_time]``): the quadratic cost of SPEC §8.
    """
    setup = build_upstream(mss, n)
    handler = setup.handler
    saved_datetime = mss.datetime
    mss.datetime = FrozenDatetime
    try:
        enqueue_s = enqueue_upstream(mss, setup)
        FrozenDatetime.frozen = setup.slot
        handler.last_refresh_images = setup.slot
        gc.collect()
        began = time.perf_counter()
        handler.run()
        cycle_s = time.perf_counter() - began
    finally:
        mss.datetime = saved_datetime
        logging.getLogger(f"{LOG.name}.upstream").removeHandler(setup.errors)
    check_upstream(setup)
    return UpstreamResult(n, enqueue_s, cycle_s)


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


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


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


def fmt_n(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def parse_sizes(text: str) -> list[int]:
    sizes: list[int] = []
    for part in text.split(","):
        part = part.strip().lower()
        scale = 1
        if part.endswith("k"):
            part, scale = part[:-1], 1000
        elif part.endswith("m"):
            part, scale = part[:-1], 1_000_000
        try:
            value = int(float(part) * scale)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad size {part!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError("sizes must be >= 1")
        sizes.append(value)
    return sizes


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> Iterator[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    yield "  ".join(h.rjust(w) for h, w in zip(headers, widths))
    yield "  ".join("-" * w for w in widths)
    for row in rows:
        yield "  ".join(c.rjust(w) for c, w in zip(row, widths))


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
