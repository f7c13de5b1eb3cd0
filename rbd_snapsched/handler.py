"""The scheduler: the thread, the lock, the order of I/O; its rooms own the state.

Data flows one way: storage -> plan (what) -> timetable (when) -> dispatcher (requests in
flight) -> librbd, and what each request did goes to the book. The scheduler thread refreshes
(loads schedules, discovers images) without the lock, then applies the result under it; it
pops due images in small batches so a command never waits behind a drain. Commands change one
level at a time and re-queue only the images that level governs.

Status, health checks and metrics read the book; wording is ``render.py``'s. ``status`` reads
rows it encoded at an earlier call, rendering again only those that changed since
(``status_view.py``, ``status_rows.py``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final

from . import changes, health, listing_text, render, sync
from .book import Book, ImageRecord, Skip
from .catalog import ScheduleCatalog
from .clock import Clock
from .discovery import discover, primary_images
from .dispatch import Dispatcher
from .errors import InvalidArgument
from .explain import explain
from .levels import ImageSpec, LevelSpec, Resolver, resolve_name
from .metrics import Sample
from .pauses import PauseStore
from .plan import Plan
from .ports import ClusterIO, SnapshotDriver
from .render import LogLine
from .sampling import Live, sample
from .schedule import Interval, Schedule, ScheduleItem, StartTime
from .settings import DEFAULTS, Settings
from .status_view import StatusView
from .store import ScheduleStore
from .takeover import take_over
from .throttle import Admission
from .timetable import Timetable
from .watchdog import Watchdog

DISPATCH_BATCH = 256
_PENDING: Final = Admission.ALREADY_PENDING
_START: Final = Admission.START
# Status rows a status call takes to render per hold, at most: a quarter of a dispatch batch,
# since copying a row's inputs costs up to four times what dispatching an image does under the
# lock, and a status call's hold must stay within a batch's (bench_scheduler's LOCK table)
RENDER_BATCH = DISPATCH_BATCH // 4
SEED_BATCH = 32  # images whose newest mirror snapshot one pass reads (blocking I/O)
HEARTBEAT = timedelta(seconds=60)  # the thread passes at least this often (metrics heartbeat)


class Handler:
    """The scheduler: one thread, one lock, the order of I/O, and the public API.

    **One lock.** ``_lock`` guards every field below; ``_cond`` is a Condition on that same
    lock, so holding either is holding both: ``notify_all`` needs it held (a change the thread
    must act on sooner than its wake-up: a request ended, a refresh or health became due, a
    setting changed, shutdown). The hot paths take ``_lock`` itself (a C-level ``with``, the
    Condition's is Python). No I/O is done under it: cluster and storage calls run
    between two critical sections, and the second one checks the plan's ``generation`` so a
    command's newer view wins. ``_write_lock`` only serialises add/remove/pause/resume (they
    do I/O).

    **Who writes what** (every mutable field has one owner; the Handler calls it under the
    lock):

    ============================  ===========================================================
    owner                         what it owns
    ============================  ===========================================================
    ``Book`` (book.py)            every image's record: schedule, next run, last attempt,
                                  lateness, totals
    ``Timetable`` (timetable.py)  when each image runs next: the queue, the catch-up marks,
                                  stagger; the only writer of ``record.next_run``
    ``Plan`` (plan.py)            what should be snapshotted: our schedules, rbd_support's,
                                  the pauses, the pools (and those without a tx peer), the
                                  ``generation`` a refresh checks before it replaces them
    ``Dispatcher`` (dispatch.py)  the requests in flight: the cap (``Throttle``), the bound
                                  (``InFlight``), the start loop, the driver
    ``Watchdog`` (watchdog.py)    stalled requests and a stuck pass, told once
    ``HealthTimer`` (health.py)   the checks last published and when to publish again
    ``StatusView``                once a ``status`` call came: each queued image's row, as
    (status_view.py)              that call or a later one encoded it (``StatusRows``), and
                                  the images marked since (the Book, the Timetable and a
                                  pause mark them); a call renders those (inputs taken with
                                  the lock, rendered without it) and joins (one call at a
                                  time: its own lock); let go after ``status_view.KEPT``
    the Handler itself            ``_to_seed``, ``_pending_scopes``, ``_next_refresh``,
                                  ``_refreshed``, ``_heartbeat``, ``refresh_interval``
    ============================  ===========================================================

    Settings arrive in one ``apply`` call (``settings.Settings``). Views (list, explain,
    report, metrics) copy what they need under the lock and render outside it; ``status``
    renders the rows that changed since the last call, and joins them outside it.
    """

    def __init__(
        self,
        *,
        io: ClusterIO,
        resolver: Resolver,
        store: ScheduleStore,
        driver: SnapshotDriver,
        clock: Clock,
        log: logging.Logger,
        upstream: ScheduleStore | None = None,
        pauses: PauseStore | None = None,
        settings: Settings = DEFAULTS,
    ) -> None:
        self._io = io
        self._resolver = resolver
        self._store = store
        # rbd_support's storage, read only: an image it still schedules is not ours to snapshot
        self._upstream = upstream
        self._pause_store = pauses
        self._clock = clock
        self._log = log
        self.refresh_interval = settings.refresh_interval

        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._write_lock = threading.Lock()  # serialises add/remove (they do I/O)
        self._plan = Plan()  # schedules, pauses, pools without a tx peer
        self._book = Book(settings.late_factor)
        self._to_seed: deque[ImageSpec] = deque()  # newly known: read their newest snapshot
        self._health = health.HealthTimer(clock.now())  # when to publish, what was
        self._heartbeat = clock.now()  # the thread's last pass
        self._watchdog = Watchdog(clock.now())  # stalled requests, a pass stuck on the cluster
        self._refreshed: tuple[datetime, float] | None = None  # last full refresh: end, seconds
        self._timetable = Timetable(settings.stagger)  # queue, catch-up marks, next runs
        self._dispatcher = Dispatcher(  # the requests in flight: cap, bound, start loop, driver
            lock=self._lock,
            cond=self._cond,
            driver=driver,
            clock=clock,
            log=log,
            book=self._book,
            timetable=self._timetable,
            health=self._health,
            watchdog=self._watchdog,
            tell=self._tell,
            max_concurrent=settings.max_concurrent,
            snap_create_timeout=settings.snap_create_timeout,
        )
        self._status = StatusView(  # the status rows: kept, rendered, joined
            lock=self._lock,
            clock=clock,
            book=self._book,
            timetable=self._timetable,
            plan=self._plan,
            batch=RENDER_BATCH,
        )
        self._next_refresh: datetime | None = None  # None: refresh at once
        self._pending_scopes: list[LevelSpec] = []  # levels to rescan soon
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.on_fatal: Callable[[BaseException], None] | None = None
        self.on_health: Callable[[dict[str, dict[str, Any]]], None] | None = None

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        """Load schedules and discover images, then start the scheduler thread."""
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="rbd_snapsched", daemon=True)
        self._thread.start()

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop the thread at once, then wait for requests in flight (``timeout``: give up)."""
        with self._cond:
            self._stopping = True
            self._dispatcher.drain()  # start nothing new; let the running ones finish
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        with self._cond:
            if not self._cond.wait_for(self._dispatcher.idle, timeout):
                running, _, overdue = self._dispatcher.counts()
                self._log.error(
                    "gave up waiting for %d snapshot requests in flight", running + overdue
                )

    def watch(self) -> None:
        """Tell once when snapshot requests are in flight and none finished for
        ``STALL_AFTER``, and once when one pass of the scheduler thread has lasted that long
        (a refresh waiting on the cluster): ``watchdog.py``. Called now and then from another
        thread."""
        with self._lock:
            running, waiting, _ = self._dispatcher.counts()
            self._tell(self._watchdog.check(self._clock.now(), running, waiting))

    def _tell(self, lines: Iterable[LogLine | None]) -> None:
        """Log the lines a pure room worded (``watchdog.py``, ``changes.py``), as worded."""
        for line in lines:
            if line is not None:
                self._log.log(line.level, line.text, *line.args)

    def request_refresh(self) -> None:
        """Rescan everything at the thread's next pass (e.g. pools appeared or went away)."""
        with self._cond:
            self._next_refresh = None
            self._cond.notify_all()

    def apply(self, settings: Settings) -> None:
        """New option values (``config_notify``): each takes effect as its setter says."""
        self.set_max_concurrent(settings.max_concurrent)
        self.set_refresh_interval(settings.refresh_interval)
        self.set_late_factor(settings.late_factor)
        self.set_stagger(settings.stagger)
        self.set_snap_create_timeout(settings.snap_create_timeout)

    def set_refresh_interval(self, seconds: float) -> None:
        """A new period between full rescans, effective at once (not after the pending one)."""
        with self._cond:
            self.refresh_interval = seconds
            soonest = self._clock.now() + timedelta(seconds=seconds)
            if self._next_refresh is not None and soonest < self._next_refresh:
                self._next_refresh = soonest
                self._cond.notify_all()

    def set_max_concurrent(self, limit: int) -> None:
        if limit < 1:
            raise InvalidArgument(f"max_concurrent_snap_create must be >= 1, not {limit}")
        self._dispatcher.set_limit(limit)

    def set_snap_create_timeout(self, seconds: float) -> None:
        """A new bound on how long a request may hold its slot, for those running too."""
        self._dispatcher.set_bound(seconds)

    def set_late_factor(self, factor: float) -> None:
        if not factor > 0:
            raise InvalidArgument(f"late factor must be > 0, not {factor}")
        with self._cond:
            if factor == self._book.late_factor:
                return  # config_notify comes for any option: rebuild only on a change
            self._book.set_late_factor(factor)
            self._advance(self._clock.now())
            self._health.mark()
            self._cond.notify_all()

    def _advance(self, now: datetime) -> None:
        """Mark images late up to ``now``; if some became late, health is due (lock held).
        Whoever advances (the thread, a scrape) tells the thread."""
        if self._book.advance(now):
            self._health.mark()
            self._cond.notify_all()

    def set_stagger(self, stagger: bool) -> None:
        """Turn staggering on or off: every queued image moves to its new next run at once."""
        with self._cond:
            if self._timetable.restagger(stagger, self._book, self._clock.now()):
                self._cond.notify_all()

    def _run(self) -> None:
        try:
            while True:
                deadline = self.tick()
                with self._cond:
                    if self._stopping:
                        return
                    # What changed since tick() let go of the lock (a request's end, a new
                    # factor) only notified: take it into the wait, or it waits a heartbeat.
                    later = (
                        self._health.due(),
                        self._book.next_late_at(),
                        self._dispatcher.next_timeout(),
                    )
                    deadline = min((t for t in (deadline, *later) if t is not None), default=None)
                    if not self._pending_scopes and self._next_refresh is not None:
                        self._clock.wait(self._cond, deadline)
        except BaseException as e:
            self._log.exception("scheduler thread stopped: %s", e)
            if self.on_fatal is not None:
                self.on_fatal(e)

    def tick(self) -> datetime | None:
        """One pass of the scheduler thread: refresh if due, start every due request.

        Returns when to run again (the next slot or refresh; None: when notified).
        """
        try:
            return self._tick()
        finally:
            with self._lock:
                self._tell([self._watchdog.pass_ends(self._clock.now())])

    def _tick(self) -> datetime | None:
        with self._lock:
            now = self._heartbeat = self._clock.now()
            self._watchdog.pass_begins(now)
            full = self._next_refresh is None or now >= self._next_refresh
            scopes = [] if full else self._pending_scopes
            if not full:
                self._pending_scopes = []
        if full:
            self.refresh()  # takes the pending scopes itself
        elif scopes:
            self._refresh_scopes(scopes)
        while not self._stopping and self._dispatch_due():
            pass
        self._dispatcher.expire_overdue()
        self._status.let_go()
        seeding = self._seed_some()
        with self._lock:
            now = self._clock.now()
            newly_late = self._book.advance(now)
            due = self._health.due()
            if newly_late or (due is not None and due <= now):
                self._publish_health()  # newly late at once; events debounced; lateness re-told
            times = (
                self._timetable.next_deadline(),
                self._next_refresh,
                self._book.next_late_at(),
                self._health.due(),
                self._dispatcher.next_timeout(),
                now + HEARTBEAT,
                now if seeding else None,
            )
            return min((t for t in times if t is not None), default=None)

    def _seed_some(self) -> bool:
        """Read one batch of newly known images' newest mirror snapshot (their last success
        until ours is newer); True if more wait."""
        with self._lock:
            batch = [self._to_seed.popleft() for _ in range(min(SEED_BATCH, len(self._to_seed)))]
        if not batch:
            return False
        found = [(image, self._io.newest_mirror_snapshot(image)) for image in batch]
        with self._lock:
            for image, newest in found:
                self._book.seed(image, newest)
            return bool(self._to_seed)

    def _dispatch_due(self) -> bool:
        """Pop up to one batch of due images, re-queue them, start what the cap admits.

        Returns True if the batch was full (there may be more due). The batch bounds how long
        the lock is held, so a command never waits behind a big slot.
        """
        started: list[tuple[ImageSpec, str]] = []
        with self._lock:
            now = self._clock.now()
            due, popped = self._timetable.pop_due(now, DISPATCH_BATCH, self._book)
            book = self._book
            # A skipped catch-up check is not carried over: its mark would make the image's
            # next slot a check (skipped if a snapshot is within the interval), losing the slot
            drop_catch_up = self._timetable.take_catch_up
            if self._plan.holds_any:
                hold, wanted = self._plan.hold, []
                for entry in due:
                    held = hold(entry[0])
                    if held is None:
                        wanted.append(entry)
                    else:
                        book.skipped(entry[0], held)
                        drop_catch_up(entry[0])
                due = wanted
            self._watchdog.starting(now, idle=self._dispatcher.idle())
            admissions = self._dispatcher.admit_many([entry[0] for entry in due])
            dispatched: list[tuple[ImageSpec, datetime | None]] = []
            pending, start = _PENDING, _START  # globals: an enum's member lookup costs more
            for (image, record, slot), admission in zip(due, admissions):
                if admission is pending:
                    self._log.debug("%s: previous request is still in progress", record.name)
                    book.skipped(image, Skip.IN_PROGRESS)
                    drop_catch_up(image)
                    continue
                dispatched.append((image, slot))
                if admission is start:
                    started.append((image, record.name))
            book.dispatched_many(dispatched, now)
        self._dispatcher.start(started)
        return popped == DISPATCH_BATCH

    # -- discovery ----------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload every schedule and rediscover every covered image."""
        with self._lock:
            generation = self._plan.generation
            previous = self._plan.catalog.copy()
            # Changes made so far are in storage, so this refresh covers them; a change made
            # from now on leaves its scope pending for the next pass.
            self._pending_scopes = []
            began = self._clock.now()
        pools = self._io.rbd_pools()
        catalog, skipped = self._store.load(pools, previous)
        pauses = self._pause_store.load() if self._pause_store is not None else self._plan.pauses
        upstream = (
            self._upstream.load(pools).catalog if self._upstream is not None else ScheduleCatalog()
        )
        with self._lock:
            if self._plan.generation != generation:
                # A command changed the catalog meanwhile: keep its (newer) view.
                catalog = self._plan.catalog.copy()
        covered = [p for p in pools if catalog.intersects(LevelSpec.for_pool(p))]
        found, failed, peerless = discover(self._io, covered, catalog.intersects)
        with self._lock:
            present = {p.id: p.name for p in pools}
            # Told once: each pool deleted since the last refresh that had schedules or images
            known = self._plan.set_pools(present)
            self._tell(changes.pools_gone(known, present, previous, self._book))
            before = self._plan.pauses
            if self._plan.replace(generation, catalog, pauses):
                self._status.pauses_changed(before, pauses)
                self._tell(changes.levels_gone(previous, catalog, present, skipped))
            if self._plan.set_upstream(upstream):
                self._requeue(list(self._book), self._clock.now())
            checked = (set(self._plan.peerless) | {p.id for p in pools}) - failed
            self._set_peerless(checked, peerless)
            # Images of pools that failed to scan stay as they were; all others are replaced.
            scanned = {p.id for p in covered} - failed
            self._apply(
                found, lambda image: image.pool_id not in failed, self._clock.now(), scanned
            )
            now = self._clock.now()
            self._refreshed = (now, (now - began).total_seconds())
            self._next_refresh = now + timedelta(seconds=self.refresh_interval)
            self._cond.notify_all()

    def _refresh_scopes(self, levels: list[LevelSpec]) -> None:
        """Rediscover only the pools that ``levels`` touch (after add/remove)."""
        pools = self._io.rbd_pools()
        with self._lock:
            catalog = self._plan.catalog.copy()
        touched = [p for p in pools if any(lv.intersects(LevelSpec.for_pool(p)) for lv in levels)]
        found, failed, peerless = discover(self._io, touched, catalog.intersects)
        scanned = {p.id for p in touched} - failed
        present = {p.id for p in pools}

        def in_scope(image: ImageSpec) -> bool:
            return image.pool_id in scanned or image.pool_id not in present

        with self._lock:
            self._set_peerless(scanned, peerless)
            self._apply(found, in_scope, self._clock.now(), scanned)
            self._cond.notify_all()

    def _set_peerless(self, checked: set[int], peerless: dict[int, str]) -> None:
        """Record which of the ``checked`` pools lack a tx peer; report changes (lock held)."""
        self._tell(self._plan.set_peerless(checked, peerless))
        self._publish_health()

    def _publish_health(self) -> None:
        """Hand our health checks to ``on_health`` when they change (lock held)."""
        now = self._clock.now()
        checks = health.checks(
            now,
            book=self._book,
            peerless=list(self._plan.peerless.values()),
            pauses=self._plan.pauses,
            upstream=self._plan.upstream,
        )
        if self._health.publish(now, checks) and self.on_health is not None:
            self.on_health(checks)

    def health_checks(self) -> dict[str, dict[str, Any]]:
        """The health checks last published."""
        with self._lock:
            return dict(self._health.checks)

    def _apply(
        self,
        found: dict[ImageSpec, str],
        in_scope: Callable[[ImageSpec], bool],
        now: datetime,
        scanned: Iterable[int] = (),
    ) -> None:
        """Make the known images of the scanned pools equal ``found`` (lock held).

        Scheduled images of the ``scanned`` pools that are no longer found (removed, demoted,
        mirroring disabled) and renamed ones are logged, one line per pool.
        """
        book = self._book
        gone = [image for image in book if in_scope(image) and image not in found]
        left = changes.images_left([(image, book[image]) for image in gone], set(scanned))
        for image in gone:
            self._health.mark()  # it may have been late or failing
            book.forget(image)
            self._timetable.forget(image)
        self._tell(left)
        new: list[ImageSpec] = []
        renamed: list[tuple[str, str]] = []
        for image, name in found.items():
            known = book.get(image)
            if known is not None and known.name != name:
                renamed.append((known.name, name))
            if book.track(image, name, now)[1]:
                new.append(image)
        self._tell(changes.renamed(renamed))
        self._to_seed.extend(new)
        self._requeue(found, now)
        self._timetable.plan_catch_up(new, self._book, now)

    def _requeue(self, images: Iterable[ImageSpec], now: datetime) -> None:
        """Queue each image by its governing schedule, if that schedule changed (lock held)."""
        self._timetable.requeue(images, self._book, self._plan.schedule_for, now)

    # -- commands -----------------------------------------------------------------------

    def resolve(self, level_spec: str) -> LevelSpec:
        return resolve_name(level_spec, self._resolver)

    def add_schedule(self, level: LevelSpec, interval: str, start_time: str | None) -> None:
        item = ScheduleItem(Interval.parse(interval), StartTime.parse(start_time or ""))
        self.change(level, lambda schedule: schedule.with_item(item))

    def remove_schedule(
        self, level: LevelSpec, interval: str | None, start_time: str | None
    ) -> None:
        parsed_interval = Interval.parse(interval) if interval is not None else None
        parsed_start = StartTime.parse(start_time) if start_time is not None else None
        self.change(level, lambda schedule: schedule.without(parsed_interval, parsed_start))

    def change(self, level: LevelSpec, edit: Callable[[Schedule], Schedule]) -> None:
        """Edit one level's schedule: write storage first, then memory, then re-queue."""
        with self._write_lock:
            with self._lock:
                old = self._plan.catalog.get(level) or Schedule()
            new = edit(old)
            if new == old:
                return
            self._store.save(level, new)
            with self._cond:
                self._plan.set_level(level, new)
                self._health.mark()  # images may have left our schedules
                self._requeue(self._book.covered(level), self._clock.now())
                self._pending_scopes.append(level)
                self._cond.notify_all()

    def pause(self, level: LevelSpec) -> str:
        """Stop scheduled snapshots under ``level`` until ``resume``; stored first."""
        return self._set_paused(level, paused=True)

    def resume(self, level: LevelSpec) -> str:
        return self._set_paused(level, paused=False)

    def _set_paused(self, level: LevelSpec, *, paused: bool) -> str:
        with self._write_lock:
            with self._lock:
                old = self._plan.pauses
            new = old.toggled(level, paused=paused, now=self._clock.now())
            if new != old and self._pause_store is not None:
                self._pause_store.save(new)
            with self._cond:
                self._status.pauses_changed(self._plan.pauses, new)
                self._plan.set_pauses(new)
                covered = sum(1 for _ in self._book.covered(level))
                self._publish_health()
        return render.paused_text(level.name, paused=paused, covered=covered)

    def snapshot_now(self, level: LevelSpec) -> sync.Requested:
        """One mirror snapshot of each primary image under ``level`` now, through the cap.

        The schedule is untouched and a pause does not apply (it is an explicit request). An
        image with a request in flight is not asked twice. No request starts before the
        answer's ``requested_at`` (a whole second: see sync.py), so any snapshot taken at or
        after it was taken after this request.
        """
        requested_at = sync.whole_second_after(self._clock.now())
        images = primary_images(self._io, level)
        if self._clock.now() < requested_at:  # under a second: librbd's snapshot times are
            pause = threading.Condition()  # whole seconds, and ours must not predate it
            with pause:
                self._clock.wait(pause, requested_at)
        started: list[tuple[ImageSpec, str]] = []
        requested: list[str] = []
        skipped: list[tuple[str, str]] = []
        with self._lock:
            self._watchdog.starting(self._clock.now(), idle=self._dispatcher.idle())
            for image, name in sorted(images.items(), key=lambda item: item[1]):
                if image.pool_id in self._plan.peerless:
                    skipped.append((name, sync.NO_TX_PEER))
                    continue
                admission = self._dispatcher.admit(image)
                if admission is Admission.ALREADY_PENDING:
                    skipped.append((name, sync.IN_FLIGHT))
                    continue
                self._book.dispatched(image, None, self._clock.now())
                requested.append(name)
                if admission is Admission.START:
                    started.append((image, name))
            running = self._dispatcher.counts()[0]
        self._dispatcher.start(started)
        return sync.Requested(
            level.name, requested_at, len(images), tuple(requested), tuple(skipped), running
        )

    def sync_status(self, level: LevelSpec, since: datetime) -> sync.Synced:
        """Which primary images under ``level`` have a primary mirror snapshot taken at or
        after ``since``, read from each image (blocking I/O, outside the lock); of the others,
        those whose last request since then failed or was skipped, with why."""
        images = sorted(primary_images(self._io, level).items(), key=lambda item: item[1])
        newest = [(image, name, self._io.newest_mirror_snapshot(image)) for image, name in images]
        done: list[tuple[str, datetime]] = []
        pending: list[str] = []
        failed: list[tuple[str, str]] = []
        with self._lock:
            for image, name, taken in newest:
                if taken is not None and taken >= since:
                    done.append((name, taken))
                    continue
                why = self._book.ended_since(image, since)
                if why is None:
                    pending.append(name)
                else:
                    failed.append((name, why))
        return sync.Synced(level.name, since, tuple(done), tuple(pending), tuple(failed))

    def explain(
        self, level: LevelSpec, count: int, visible: Callable[[ImageSpec], bool] = lambda i: True
    ) -> dict[str, Any]:
        """For each primary image under ``level``: which level governs it and why, whether
        rbd_support still holds it, whether a pause holds it, and its next ``count`` runs."""
        if not 1 <= count <= 100:
            raise InvalidArgument(f"count must be from 1 to 100, not {count}")
        images = {i: n for i, n in primary_images(self._io, level).items() if visible(i)}
        with self._lock:
            return explain(
                level,
                images,
                catalog=self._plan.catalog,
                upstream=self._plan.upstream,
                pauses=self._plan.pauses,
                now=self._clock.now(),
                count=count,
                stagger=self._timetable.stagger,
            )

    def read_back(self, level: LevelSpec) -> Schedule | None:
        """``level``'s schedule as stored now (not as cached)."""
        return self._store.read(level)

    def take_over(self, *, dry_run: bool, remove_upstream: Callable[[LevelSpec], str]) -> list[str]:
        """Move every schedule rbd_support holds into ours (``takeover.py``)."""
        if self._upstream is None:
            return ["rbd_support's storage is not available"]
        lines = take_over(
            self._upstream,
            self._io.rbd_pools(),
            self,
            dry_run=dry_run,
            remove_upstream=remove_upstream,
        )
        if not dry_run:
            self.request_refresh()
        return lines

    def adopt_upstream(self, remove_upstream: Callable[[LevelSpec], str]) -> list[str]:
        """``take_over`` if rbd_support holds a schedule, as the last refresh found (the
        ``adopt_rbd_support_schedules`` option, e.g. for schedules the dashboard writes
        there); what moved. Nothing, and no I/O, when it holds none."""
        with self._lock:
            held = bool(self._plan.upstream)
        if not held:
            return []
        lines = self.take_over(dry_run=False, remove_upstream=remove_upstream)
        return [line for line in lines if not line.startswith("nothing to take over")]

    def list_schedules(
        self, level: LevelSpec, visible: Callable[[LevelSpec], bool]
    ) -> dict[str, Any]:
        with self._lock:
            selected = self._plan.catalog.select(level)
            pauses = self._plan.pauses  # immutable, as are the specs and schedules selected
        return render.listing([(spec, sch) for spec, sch in selected if visible(spec)], pauses)

    def list_text(self, level: LevelSpec, visible: Callable[[LevelSpec], bool]) -> str:
        """The ``list`` reply's JSON text (``listing_text.py``), written outside the lock."""
        return listing_text.text(self.list_schedules(level, visible))

    def image_record(self, image: ImageSpec) -> ImageRecord | None:
        """A copy of what the book knows about ``image``."""
        with self._lock:
            record = self._book.get(image)
            return None if record is None else replace(record)

    def _entries(
        self, level: LevelSpec, visible: Callable[[ImageSpec], bool]
    ) -> render.StatusEntries:
        """Queued images under ``level`` the caller may see, in queue order (lock held)."""
        return [
            (due, self._book[image], self._plan.pauses.covering(image))
            for due, image in self._timetable.entries()
            if level.matches(image) and visible(image)
        ]

    def status_text(self, level: LevelSpec, visible: Callable[[ImageSpec], bool]) -> str:
        """The ``status`` reply's JSON text (``status_view.py``)."""
        return self._status.text(level, visible)

    def status(self, level: LevelSpec, visible: Callable[[ImageSpec], bool]) -> dict[str, Any]:
        """``status_text`` parsed back (for callers that want the data, not the reply)."""
        parsed: dict[str, Any] = json.loads(self.status_text(level, visible))
        return parsed

    def report(self, level: LevelSpec, visible: Callable[[ImageSpec], bool]) -> str:
        with self._lock:
            entries = [(d, replace(r), p) for d, r, p in self._entries(level, visible)]
        return render.report(entries, self._clock.now())

    def metrics(self, image_limit: int) -> Sample:
        """What a scrape shows (``sampling.sample``: the lock held a chunk at a time)."""
        return sample(self._lock, self._book, self._live, image_limit)

    def _live(self) -> Live:
        """The figures a scrape takes besides the book's (lock held)."""
        now = self._clock.now()
        self._advance(now)
        running, waiting, overdue = self._dispatcher.counts()
        return Live(
            now,
            self._heartbeat,
            self._plan.pauses,
            running,
            waiting,
            len(self._timetable),
            self._refreshed,
            overdue,
        )
