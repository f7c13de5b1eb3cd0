"""The per-image book: what each known image's snapshot requests did, and how late it is.

Pure: no I/O, no clock, no lock (the handler's lock guards it). The handler reports events with
the time they happened (``track``, ``seed``, ``dispatched``, ``skipped``, ``finished``); status,
health checks and metrics read views of it. Like APScheduler's job results beside its store.
Every event that changes what an image's status row shows *marks* the image (``changed``: the
Handler's ``StatusRows.mark``, set only while status rows are kept; None otherwise), so that row
is rendered again at the next ``status`` call.
"""

from __future__ import annotations

import enum
import heapq
import math
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, NamedTuple

from .levels import ImageSpec, LevelSpec
from .pycompat import slotted
from .requests import Outcome, OutcomeKind, State
from .schedule import Schedule
from .settings import DEFAULTS

# Theory of operation
# -------------------
# A *record* exists for every image discovery found (primary, snapshot-mirrored, under some
# level of ours or rbd_support's). Its *reference* is its last successful mirror snapshot, or,
# before any is known, the time the image became known. An image with a schedule of ours
# is *late* from reference + factor * its shortest interval on (its late-at deadline).
#
# Lateness changes only two ways: time passes (an image becomes late) or an event moves the
# reference or the interval (it may stop being late). The first is found without scanning: a
# heap of late-at deadlines. The second is an event, handled in O(1): a success moves the
# deadline later, and the heap is not touched then. Invariant: every record that has a
# late-at and is not late has a heap entry at or before its late-at; an entry that reaches the
# top before its record's (later) late-at is pushed again at it, and entries of forgotten,
# unscheduled or late records are dropped there.
#
# Missed slots: slots since the last success that produced no snapshot (skipped before a
# request, or a request that ended without creating one); a success resets them.

LATENCY_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_BUCKETS: Final = len(LATENCY_BUCKETS)


class Skip(enum.Enum):
    """Why a due slot started no request."""

    PAUSED = "paused"
    NO_TX_PEER = "no_tx_peer"
    IN_PROGRESS = "in_progress"  # the previous request is still running


_CREATED_KIND: Final = OutcomeKind.CREATED  # the hot path's test: a global, not an enum lookup
CREATED: Final = Outcome(OutcomeKind.CREATED, State.CREATING, 0, None, "mirror snapshot created")

# How each outcome counts: (result, reason) for the metrics' totals.
RESULTS: Final[dict[OutcomeKind, tuple[str, str]]] = {
    OutcomeKind.CREATED: ("created", "created"),
    OutcomeKind.SKIPPED_NOT_SNAPSHOT: ("skipped", "not_snapshot_mode"),
    OutcomeKind.SKIPPED_DISABLED: ("skipped", "mirroring_disabled"),
    OutcomeKind.SKIPPED_NOT_PRIMARY: ("skipped", "not_primary"),
    OutcomeKind.SKIPPED_RECENT: ("skipped", "recent_snapshot"),
    OutcomeKind.SKIPPED_PEER_LAGGING: ("skipped", "peer_lagging"),
    OutcomeKind.VANISHED: ("skipped", "vanished"),
    OutcomeKind.FAILED: ("failed", "failed"),
}
STEP_NAMES: Final[dict[State, str]] = {
    State.OPENING: "open",
    State.GETTING_MODE: "get_mirror_mode",
    State.GETTING_INFO: "get_mirror_info",
    State.CHECKING_RECENT: "list_snapshots",
    State.CHECKING_PEER: "check_peer_sync",
    State.CREATING: "create_snapshot",
    State.CLOSING: "close",
    State.DONE: "done",
}


class Attempt(NamedTuple):
    """One snapshot request: the slot it served (None: snapshot-now or catch-up), when it
    was dispatched (waiting for the cap included) and ended, and how (None while it runs)."""

    slot: datetime | None
    started: datetime
    finished: datetime | None = None
    outcome: Outcome | None = None

    @property
    def failed(self) -> bool:
        return self.outcome is not None and self.outcome.kind is OutcomeKind.FAILED


@slotted
@dataclass
class ImageRecord:
    """Everything known about one image. ``schedule`` is the one governing it (None: not ours
    to snapshot, e.g. rbd_support still holds it).

    Kept flat and small (one per image, up to a million): the last attempt's fields sit here
    rather than in an object of their own, times and graces are shared where they can be.
    """

    name: str
    known_since: datetime
    pool: str = ""  # the pool's name, for metrics labels (from ``name``, interned)
    schedule: Schedule | None = None
    grace: timedelta | None = None  # late this long after the reference (factor x interval)
    next_run: datetime | None = None  # when it is queued for (None: not queued)
    last_success: datetime | None = None
    slot: datetime | None = None  # the last attempt's: the slot it served (None: not a slot)
    started: datetime | None = None  # dispatched (waiting for the cap included); None: never
    finished: datetime | None = None  # None while it runs
    outcome: Outcome | None = None  # a created one is CREATED (its snap id is not kept)
    missed: int = 0
    failures: int = 0  # attempts failed in a row
    lag_skips: int = 0  # slots skipped in a row because a peer had not synced the last one

    @property
    def reference(self) -> datetime:
        return self.last_success or self.known_since

    @property
    def late_at(self) -> datetime | None:
        """When it is (or was) late at the book's factor; None: not ours to schedule."""
        if self.grace is None:
            return None
        try:
            return self.reference + self.grace
        except OverflowError:  # beyond year 9999: never
            return None

    @property
    def interval(self) -> timedelta | None:
        """Its schedule's shortest interval."""
        return min((item.interval.timedelta for item in self.schedule or ()), default=None)

    @property
    def last_attempt(self) -> Attempt | None:
        if self.started is None:
            return None
        return Attempt(self.slot, self.started, self.finished, self.outcome)

    def lateness(self, now: datetime) -> timedelta:
        """How long since its last mirror snapshot (or since it became known)."""
        return max(now - self.reference, timedelta(0))


class Late(NamedTuple):
    image: ImageSpec
    record: ImageRecord
    lateness: timedelta


@dataclass
class Totals:
    """Counters since the module started, for metrics."""

    results: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # pool, result, why
    # per pool: kept apart, it is hot (a defaultdict: one subscript per snapshot, no call)
    created: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    latency_buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    latency_count: int = 0
    latency_sum: float = 0.0

    def all_results(self) -> dict[tuple[str, str, str], int]:
        """Every (pool, result, reason) count, the created ones included."""
        merged = dict(self.results)
        for pool, count in self.created.items():
            merged[(pool, "created", "created")] = count
        return merged


class Book:
    """The records of every known image, late detection and the counters."""

    def __init__(self, late_factor: float = DEFAULTS.late_factor) -> None:
        _check_factor(late_factor)
        # Told each image whose record an event changes (status rows kept); None: no one
        self.changed: Callable[[ImageSpec], object] | None = None
        self._factor = late_factor
        self._records: dict[ImageSpec, ImageRecord] = {}
        self._pools: dict[str, str] = {}  # interned pool names
        self._graces: dict[Schedule, timedelta | None] = {}  # most images share few schedules
        self._by_scope: defaultdict[tuple[int, str], set[ImageSpec]] = defaultdict(set)
        self._deadlines: list[tuple[datetime, ImageSpec]] = []
        self._late: set[ImageSpec] = set()
        self._failing: set[ImageSpec] = set()
        self._lagging: set[ImageSpec] = set()  # last attempt skipped: a peer lags
        self._scheduled = 0
        self.totals = Totals()

    # -- reading --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, image: object) -> bool:
        return image in self._records

    def __iter__(self) -> Iterator[ImageSpec]:
        return iter(self._records)

    def __getitem__(self, image: ImageSpec) -> ImageRecord:
        return self._records[image]

    def get(self, image: ImageSpec) -> ImageRecord | None:
        return self._records.get(image)

    @property
    def records(self) -> Mapping[ImageSpec, ImageRecord]:
        """Every record by image: the live mapping, never replaced, read-only (a hot loop
        looks them up at C speed, and may keep it)."""
        return self._records

    def name(self, image: ImageSpec) -> str:
        """The image's display name (its pool/id while unknown), for log lines."""
        record = self._records.get(image)
        return record.name if record else f"{image.pool_id}/{image.image_id}"

    def items(self) -> Iterable[tuple[ImageSpec, ImageRecord]]:
        return self._records.items()

    def covered(self, level: LevelSpec) -> list[ImageSpec]:
        """Known images inside ``level``."""
        if level.pool_id is None:
            return list(self._records)
        if level.image_id is not None:
            image = ImageSpec(level.pool_id, level.namespace or "", level.image_id)
            return [image] if image in self._records else []
        return [
            image
            for (pool_id, namespace), images in self._by_scope.items()
            if pool_id == level.pool_id and level.namespace in (None, namespace)
            for image in images
        ]

    def is_late(self, image: ImageSpec) -> bool:
        """Late as of the last ``advance``."""
        return image in self._late

    def is_failing(self, image: ImageSpec) -> bool:
        return image in self._failing

    def ended_since(self, image: ImageSpec, since: datetime) -> str | None:
        """Why the image's last request, started at or after ``since``, ended without a
        snapshot (``failed: …``, ``skipped: …``); None if there is no such request (none
        since, still running, or it created one)."""
        record = self._records.get(image)
        if record is None or record.started is None or record.started < since:
            return None
        outcome = record.outcome
        if record.finished is None or outcome is None or outcome.kind is OutcomeKind.CREATED:
            return None
        result, why = RESULTS[outcome.kind]
        text = result if result == why else f"{result}: {why}"
        return f"{text} ({outcome.detail})" if outcome.detail else text

    @property
    def scheduled(self) -> int:
        """How many records have a schedule (are ours to snapshot)."""
        return self._scheduled

    @property
    def late_factor(self) -> float:
        return self._factor

    def late(self, now: datetime) -> list[Late]:
        """Late images, worst first (call ``advance`` first to catch those newly late)."""
        records = self._records
        found = [Late(image, records[image], records[image].lateness(now)) for image in self._late]
        found.sort(key=lambda late: (-late.lateness, late.record.name))
        return found

    def failing(self) -> list[tuple[ImageSpec, ImageRecord]]:
        """Images whose last attempt failed, most failures in a row first."""
        found = [(image, self._records[image]) for image in self._failing]
        found.sort(key=lambda pair: (-pair[1].failures, pair[1].name))
        return found

    def lagging(self) -> list[tuple[ImageSpec, ImageRecord]]:
        """Images whose last attempt was skipped because a peer lags, longest first."""
        found = [(image, self._records[image]) for image in self._lagging]
        found.sort(key=lambda pair: (-pair[1].lag_skips, pair[1].name))
        return found

    def next_late_at(self) -> datetime | None:
        """The next time an image may become late (None: none can, as things stand)."""
        heap = self._deadlines
        while heap:
            when, image = heap[0]
            record = self._records.get(image)
            late_at = None if record is None else record.late_at
            if late_at is None or image in self._late:
                heapq.heappop(heap)
            elif late_at > when:  # moved later since: push it again there
                heapq.heappop(heap)
                self._push(late_at, image)
            else:
                return when
        return None

    # -- events ---------------------------------------------------------------------------

    def track(self, image: ImageSpec, name: str, now: datetime) -> tuple[ImageRecord, bool]:
        """The image is known (found by discovery); returns its record and whether it is new."""
        record = self._records.get(image)
        pool = name.partition("/")[0]
        pool = self._pools.setdefault(pool, pool)
        if record is not None:
            if record.name != name:
                record.name, record.pool = name, pool
                if self.changed is not None:
                    self.changed(image)
            return record, False
        record = self._records[image] = ImageRecord(name, now, pool)
        self._by_scope[(image.pool_id, image.namespace)].add(image)
        if self.changed is not None:
            self.changed(image)
        return record, True

    def forget(self, image: ImageSpec) -> None:
        record = self._records.pop(image, None)
        if record is None:
            return
        if self.changed is not None:
            self.changed(image)
        self._scheduled -= record.schedule is not None
        scope = (image.pool_id, image.namespace)
        self._by_scope[scope].discard(image)
        if not self._by_scope[scope]:
            del self._by_scope[scope]  # pools and namespaces come and go
        self._late.discard(image)
        self._failing.discard(image)
        self._lagging.discard(image)

    def set_schedule(self, image: ImageSpec, schedule: Schedule | None) -> None:
        record = self._records[image]
        if self.changed is not None:
            self.changed(image)
        self._scheduled += (schedule is not None) - (record.schedule is not None)
        record.schedule = schedule
        grace = self._grace(schedule)
        if grace != record.grace:
            old = record.late_at
            record.grace = grace
            self._rearm(image, record, old)

    def _grace(self, schedule: Schedule | None) -> timedelta | None:
        if schedule is None:
            return None
        if schedule in self._graces:
            return self._graces[schedule]
        shortest = min(item.interval.timedelta for item in schedule)
        try:
            grace: timedelta | None = shortest * self._factor
        except OverflowError:  # a huge factor: never late
            grace = None
        self._graces[schedule] = grace
        return grace

    def seed(self, image: ImageSpec, newest: datetime | None) -> None:
        """The image's newest primary mirror snapshot, read from the cluster: the last success
        until one of ours is newer (right after a restart or failover, not only since)."""
        record = self._records.get(image)
        if record is None or newest is None:
            return
        if record.last_success is None or newest > record.last_success:
            if self.changed is not None:
                self.changed(image)
            old = record.late_at
            record.last_success = newest
            self._rearm(image, record, old)

    def dispatched(self, image: ImageSpec, slot: datetime | None, now: datetime) -> None:
        """A request for ``slot`` (None: not a scheduled slot) started."""
        self.dispatched_many(((image, slot),), now)

    def dispatched_many(
        self, requests: Iterable[tuple[ImageSpec, datetime | None]], now: datetime
    ) -> None:
        """``dispatched`` for each (image, slot), in one call: a slot's batch."""
        records, changed = self._records, self.changed
        for image, slot in requests:
            record = records.get(image)
            if record is not None:
                if changed is not None:
                    changed(image)
                record.slot = slot
                record.started = now
                record.finished = record.outcome = None

    def skipped(self, image: ImageSpec, why: Skip) -> None:
        """A due slot started no request."""
        record = self._records.get(image)
        if record is not None:
            if self.changed is not None:
                self.changed(image)
            record.missed += 1
            self.totals.results[(record.pool, "skipped", why.value)] += 1

    def finished(self, image: ImageSpec, outcome: Outcome, now: datetime) -> None:
        record = self._records.get(image)
        if record is None:
            return
        if self.changed is not None:
            self.changed(image)
        started = record.started
        if started is None or record.finished is not None:
            record.slot = None  # not seen starting: count it all the same
            started = record.started = now
        record.finished = now
        totals = self.totals  # the request's latency observed (inline: once per request)
        seconds = (now - started).total_seconds()
        totals.latency_count += 1
        totals.latency_sum += seconds
        i = bisect_left(LATENCY_BUCKETS, seconds)  # the first bound >= seconds
        if i < _BUCKETS:
            totals.latency_buckets[i] += 1  # not cumulative: summed when rendered
        kind = outcome.kind
        if kind is _CREATED_KIND:  # the hot path: one per image per slot
            self._created(image, record, now)
            return
        record.outcome = outcome
        result, why = RESULTS[kind]
        if result == "failed":
            why = STEP_NAMES[outcome.step]
        totals.results[(record.pool, result, why)] += 1
        if kind is OutcomeKind.SKIPPED_PEER_LAGGING:
            record.lag_skips += 1
            self._lagging.add(image)
        elif record.lag_skips:
            record.lag_skips = 0
            self._lagging.discard(image)
        if kind is OutcomeKind.FAILED:
            record.failures += 1
            self._failing.add(image)
            if record.slot is not None:
                record.missed += 1
            return
        record.failures = 0
        self._failing.discard(image)
        if kind is not OutcomeKind.SKIPPED_RECENT and record.slot is not None:
            record.missed += 1

    def finished_late(self, image: ImageSpec, outcome: Outcome, now: datetime) -> None:
        """A request already ended by its timeout (``finished`` with a timed-out outcome:
        counted, its latency observed) ended after all, with ``outcome``, which replaces
        the timeout as its attempt's result. A snapshot it created is counted and is the
        image's last success; any other end was counted already, as the timeout."""
        record = self._records.get(image)
        if record is None:
            return
        if self.changed is not None:
            self.changed(image)
        record.finished = now
        if outcome.kind is OutcomeKind.CREATED:
            self._created(image, record, now)
            return
        record.outcome = outcome
        if outcome.kind is not OutcomeKind.FAILED and record.failures:
            record.failures -= 1  # the timeout's failure: it did not fail after all
            if not record.failures:
                self._failing.discard(image)

    def _created(self, image: ImageSpec, record: ImageRecord, now: datetime) -> None:
        """A request created a mirror snapshot ``now``."""
        record.outcome = CREATED
        self.totals.created[record.pool] += 1
        if record.failures:
            record.failures = 0
            self._failing.discard(image)
        if record.lag_skips:
            record.lag_skips = 0
            self._lagging.discard(image)
        record.missed = 0
        previous = record.last_success
        if previous is not None and now < previous:  # a seed stamped by a clock ahead
            old = record.late_at
            record.last_success = now
            self._rearm(image, record, old)
            return
        record.last_success = now  # later than before: the heap entry stands (see top)
        if image in self._late:
            self._late.discard(image)
            late_at = record.late_at
            if late_at is not None:
                self._push(late_at, image)

    def set_late_factor(self, factor: float) -> None:
        """A new threshold: every deadline is recomputed (O(n), on an option change only)."""
        _check_factor(factor)
        if factor == self._factor:
            return
        self._factor = factor
        self._graces.clear()
        self._deadlines.clear()
        self._late.clear()
        for image, record in self._records.items():
            if self.changed is not None:
                self.changed(image)
            record.grace = self._grace(record.schedule)
            self._rearm(image, record, None)  # the heap is empty: every deadline anew

    def advance(self, now: datetime) -> bool:
        """Mark the images whose deadline has passed as late; True if any became late."""
        changed = False
        heap, records, late = self._deadlines, self._records, self._late
        while heap and heap[0][0] <= now:
            _, image = heapq.heappop(heap)
            record = records.get(image)
            late_at = None if record is None else record.late_at
            if late_at is None or image in late:
                continue
            if late_at <= now:
                late.add(image)
                changed = True
            else:
                self._push(late_at, image)  # moved later since: wait for it there
        if len(heap) > 2 * len(records) + 64:
            self._compact()  # never inside a loop over the heap (they hold it by name)
        return changed

    def _rearm(self, image: ImageSpec, record: ImageRecord, old: datetime | None) -> None:
        """The reference or grace moved (late-at was ``old``): not late any more; a heap
        entry unless the one at or before ``old`` stands for the new late-at."""
        was_late = image in self._late
        if was_late:
            self._late.discard(image)
        new = record.late_at
        if new is not None and (was_late or old is None or new < old):
            self._push(new, image)

    def _push(self, when: datetime, image: ImageSpec) -> None:
        heapq.heappush(self._deadlines, (when, image))

    def _compact(self) -> None:
        """Rebuild the heap from the records: one entry per record that can go late."""
        self._deadlines = [
            (late_at, image)
            for image, record in self._records.items()
            if (late_at := record.late_at) is not None and image not in self._late
        ]
        heapq.heapify(self._deadlines)


def _check_factor(factor: float) -> None:
    if not (factor > 0 and math.isfinite(factor)):
        raise ValueError(f"late factor must be > 0, not {factor}")
