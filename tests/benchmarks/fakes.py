"""The scheduler benchmark's fakes, and our Handler built over them (``build_ours``,
``drain_ours``): one RBD pool of N primary snapshot-mirrored images over a few namespaces, the
real ``ScheduleStore`` over in-memory backends, a settable clock and a driver that reports
CREATED at once.

Lean on purpose: they hold 1M images (tests/fake_cluster.py would not), and
tests/contract/test_bench_fakes.py checks them against the same contracts as the other fakes.
Used by bench_scheduler, bench_metrics and benchmarks/upstream.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from rbd_snapsched.handler import Handler
from rbd_snapsched.levels import ImageInfo, ImageSpec, LevelSpec, PoolInfo
from rbd_snapsched.requests import Outcome, OutcomeKind, State
from rbd_snapsched.schedule import Interval, Schedule, ScheduleItem
from rbd_snapsched.settings import Settings
from rbd_snapsched.store import PoolGone, ScheduleStore

POOL = PoolInfo(1, "rbd", True)
NAMESPACES = ("", "ns1", "ns2", "ns3")  # images are spread round-robin over these
# The first refresh happens mid-minute; the first slot is the next whole minute.
START = datetime(2025, 1, 6, 12, 0, 30, tzinfo=timezone.utc)

LOG = logging.getLogger("bench_scheduler")
LOG.propagate = False


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


# --- our Handler over them ------------------------------------------------------------------


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


def build_ours_listing(n: int) -> Handler:
    """Our handler holding ``n`` image-level schedules (``1h``) over the benchmark's images,
    as a refresh leaves them, for ``list``; the images themselves are not discovered."""
    setup, _ = build_ours(1)
    handler = setup.handler
    schedule = Schedule().with_item(ScheduleItem(Interval.parse("1h"), None))
    plan = handler._plan
    plan.set_level(handler.resolve(f"{POOL.name}/"), Schedule())  # build_ours' pool schedule
    for i in range(n):
        namespace = NAMESPACES[i % len(NAMESPACES)]
        prefix = f"{POOL.name}/{namespace}/" if namespace else f"{POOL.name}/"
        plan.set_level(LevelSpec(POOL.id, namespace, image_id(i), prefix + image_name(i)), schedule)
    return handler


def check_ours(setup: OursSetup, started: int) -> None:
    """Every image ran once and is queued once, at the next slot; nothing was logged as error."""
    queue = setup.handler._timetable
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
