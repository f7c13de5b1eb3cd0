"""Upstream's scheduler, driven for the benchmark: rbd_support's
``MirrorSnapshotScheduleHandler`` (imported from the installed mgr modules, without its
package ``__init__``) over a fake mgr module, with a settable clock and a counting requester.
See ``bench_upstream`` for how faithfully it follows upstream's own code path.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import logging
import sys
import threading
import time
import types
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tests.benchmarks.fakes import LOG, NAMESPACES, POOL, ErrorCounter, image_id, image_name

UPSTREAM_DIR = "/usr/share/ceph/mgr/rbd_support"


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


def fill_upstream(setup: UpstreamSetup) -> None:
    """The queue ``enqueue_upstream`` leaves (every image in the slot's list, in
    ``refresh_queue()``'s order), built directly: ``enqueue``'s membership scans make building
    it quadratic (about 20 s at 50k), and the status benchmark needs only the state."""
    handler = setup.handler
    images = handler.images
    handler.queue = {
        setup.slot.strftime("%Y-%m-%d %H:%M:00"): [
            (pool, namespace, image)
            for pool in images
            for namespace in images[pool]
            for image in images[pool][namespace]
        ]
    }


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


def build_upstream_listing(mss: Any, n: int) -> Any:
    """Upstream's handler holding ``n`` image-level schedules (``1h``) over the benchmark's
    images, as ``Schedules.load`` leaves them, for ``list``; nothing queued."""
    setup = build_upstream(mss, 1)
    logging.getLogger(f"{LOG.name}.upstream").removeHandler(setup.errors)
    handler = setup.handler
    schedule_mod: Any = sys.modules["rbd_support.schedule"]
    pool_id = str(POOL.id)
    level_specs: dict[str, Any] = {}
    schedules: dict[str, Any] = {}
    for i in range(n):
        namespace = NAMESPACES[i % len(NAMESPACES)]
        prefix = f"{POOL.name}/{namespace}/" if namespace else f"{POOL.name}/"
        level = schedule_mod.LevelSpec(
            prefix + image_name(i),
            f"{pool_id}/{namespace}/{image_id(i)}",
            pool_id,
            namespace,
            image_id(i),
        )
        schedule = schedule_mod.Schedule(level.name)
        schedule.add(schedule_mod.Interval.from_string("1h"))
        level_specs[level.id] = level
        schedules[level.id] = schedule
    handler.schedules.level_specs = level_specs
    handler.schedules.schedules = schedules
    return handler
