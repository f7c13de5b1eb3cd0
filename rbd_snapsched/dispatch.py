"""The snapshot requests in flight: the cap, the bound, the start loop and the driver.

The Handler's last room along its pipeline (plan -> timetable -> requests -> librbd). It owns
the ``Throttle`` (the cap, FIFO beyond it), the ``InFlight`` bound (``snap_create_timeout``),
the start loop and the driver, and it shares the Handler's one lock (and its Condition):

- ``admit``, ``admit_many``, ``idle``, ``counts`` and ``next_timeout`` are called with the
  lock held;
- ``start``, ``set_limit``, ``expire_overdue`` and the driver's ``done`` take it themselves, and
  call the driver only without it (a driver may complete a request inline, on this thread).

A request is *begun* with the lock held (its catch-up cut-off taken, its bound started) right
before it is handed to the driver without it, so no request's bound runs while it waits behind
another's hand-off. The one a completion frees a slot for is begun in the completion's own hold
and handed next (the completion's thread does nothing else first): one hold per request.

It notifies the Condition where the Handler's thread or ``shutdown`` must look again: a
request started (its bound may be the next wake-up), the last one ended (``shutdown`` waits for
that), health became due after an end, the bound changed.

What each request did goes to the book; the stall watch hears every end.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Optional

from .book import Book
from .clock import Clock
from .health import HealthTimer
from .inflight import InFlight, check_timeout, timed_out
from .levels import ImageSpec
from .ports import SnapshotDriver
from .render import LogLine
from .requests import Outcome
from .throttle import Admission, Throttle
from .timetable import Timetable
from .watchdog import Watchdog

# A request to hand to the driver: image, display name, whether it is begun, and (begun) its
# catch-up cut-off (None: none)
Request = tuple[ImageSpec, str, bool, Optional[datetime]]
Work = deque[Request]  # requests still to hand to the driver, in order


class _StartLoop(threading.local):
    """This thread's running start loop: requests queued to start after the current one."""

    def __init__(self) -> None:
        self.work: Work | None = None


class Dispatcher:
    def __init__(
        self,
        *,
        lock: threading.Lock,
        cond: threading.Condition,
        driver: SnapshotDriver,
        clock: Clock,
        log: logging.Logger,
        book: Book,
        timetable: Timetable,
        health: HealthTimer,
        watchdog: Watchdog,
        tell: Callable[[Iterable[LogLine | None]], None],
        max_concurrent: int,
        snap_create_timeout: float,
    ) -> None:
        self._lock = lock  # the Handler's; ``cond`` is over it (``with`` takes the lock directly)
        self._cond = cond
        self._driver = driver
        self._clock = clock
        self._log = log
        # collaborators, each the owner of its own state: told, never written here
        self._book = book
        self._records = book.records  # the book's, read-only and live
        self._timetable = timetable
        self._marked = timetable.catch_up_marked  # live: most requests have no mark
        self._health = health
        self._watchdog = watchdog
        self._tell = tell
        self._throttle = Throttle(max_concurrent)
        # Requests started and not done; those past snap_create_timeout hold no slot
        self._in_flight = InFlight(snap_create_timeout)
        self._starting = _StartLoop()

    # -- reads (lock held) ----------------------------------------------------------------

    def idle(self) -> bool:
        """No request in flight, not even one past its bound."""
        return self._throttle.idle and not self._in_flight.overdue

    def counts(self) -> tuple[int, int, int]:
        """Requests running (holding a slot), waiting for one, and past their bound."""
        throttle = self._throttle
        return throttle.running, throttle.waiting, self._in_flight.overdue

    def next_timeout(self) -> datetime | None:
        return self._in_flight.next_timeout()

    def admit(self, image: ImageSpec) -> Admission:
        return self.admit_many((image,))[0]

    def admit_many(self, images: Iterable[ImageSpec]) -> list[Admission]:
        """The throttle's admission of each image in order, and none for an image whose last
        request outlived its bound and has not ended: one request per image in librbd at a
        time. One call per batch: a slot's images are admitted at C speed."""
        return self._throttle.admit_many(images, self._in_flight.overdue_images)

    # -- settings ---------------------------------------------------------------------------

    def set_limit(self, limit: int) -> None:
        """A new cap, for the waiting requests too (those it admits start now)."""
        with self._lock:
            name = self._book.name
            ready = [(i, name(i), False, None) for i in self._throttle.set_limit(limit)]
        self._run(ready)

    def set_bound(self, seconds: float) -> None:
        """A new bound on how long a request may hold its slot, for those running too."""
        bound = check_timeout(seconds)
        with self._lock:
            if bound != self._in_flight.bound:
                self._in_flight.bound = bound
                self._cond.notify_all()  # the thread's next wake-up may be sooner

    def drain(self) -> None:
        """Start nothing new; let the running ones finish (lock held: shutdown)."""
        self._throttle.drain_waiting()

    # -- the requests' lives --------------------------------------------------------------

    def start(self, requests: Iterable[tuple[ImageSpec, str]]) -> None:
        """Start snapshot requests the cap admitted, in order: each begun right before its
        hand-off to the driver."""
        self._run((image, name, False, None) for image, name in requests)

    def _begin(self, image: ImageSpec, now: datetime) -> datetime | None:
        """``image``'s request begins: its bound runs from ``now``; its catch-up cut-off,
        taken (lock held). The thread is woken if this bound is now the next timeout
        (``_release`` begins the request a completion frees a slot for itself, without that:
        the request that just ended had the bound before, the thread wakes for it, then
        sees this one)."""
        if self._in_flight.started(image, now):
            self._cond.notify_all()  # the thread's wake-up: this one's bound
        return self._timetable.take_catch_up(image) if image in self._marked else None

    def _run(self, requests: Iterable[Request]) -> None:
        """Hand requests to the driver, beginning those not begun yet; iterative, since a
        driver may complete them inline (``_done`` then puts the request it begun at the
        front of this thread's loop; any other is handed after those already waiting)."""
        work = self._starting.work
        if work is not None:  # called inside this thread's loop
            work.extend(requests)
            return
        work = self._starting.work = deque(requests)
        start, done = self._driver.start, self._done  # once per loop, not per request
        try:
            while work:
                image, name, begun, recent_since = work.popleft()
                if not begun:
                    with self._lock:
                        recent_since = self._begin(image, self._clock.now())
                try:
                    start(image, name, done, recent_since)
                except Exception as e:
                    self._log.error("exception when starting snapshot request for %s: %s", name, e)
                    with self._lock:
                        if self._in_flight.ended(image) is None:  # else timed out: slot gone
                            ready = self._release(image, self._clock.now(), begin=False)
                            if ready is not None:
                                work.append(ready)
                        elif self.idle():
                            self._cond.notify_all()  # shutdown() waits for this
        finally:
            self._starting.work = None

    def expire_overdue(self) -> None:
        """Release the slots of requests that outlived ``snap_create_timeout`` (``inflight.py``):
        each counts as failed with ETIMEDOUT, once, and its slot goes to the next waiting
        image; ``_done`` records what it did after all when its ``done`` comes.
        """
        work: list[Request] = []
        with self._lock:
            now = self._clock.now()
            bound = self._in_flight.bound
            for image, _since in self._in_flight.expire(now):
                outcome = timed_out(self._driver.in_flight(image), bound)
                self._book.finished(image, outcome, now)
                self._log.warning(
                    "%s: snapshot request %s (librbd may be waiting for an exclusive lock "
                    "owner that does not answer); its slot is released, the image gets no new "
                    "request until this one ends",
                    self._book.name(image),
                    outcome.detail,
                )
                self._health.mark()
                ready = self._release(image, now, begin=False)  # several: each when handed
                if ready is not None:
                    work.append(ready)
        if work:
            self._run(work)

    def _release(self, image: ImageSpec, now: datetime, *, begin: bool) -> Request | None:
        """Free ``image``'s slot (its request no longer in flight); the next waiting image's
        request for the driver, if one now starts: begun now if ``begin`` (lock held)."""
        ready = self._throttle.finish(image)
        if ready is None:
            if self.idle():
                self._cond.notify_all()  # shutdown() waits for this
            return None
        record = self._records.get(ready)  # its name, at C speed: once per request
        name = record.name if record is not None else self._book.name(ready)
        if not begin:
            return ready, name, False, None
        # begun here, as ``_begin`` does but for the wake-up (see there): inline, once per
        # request
        self._in_flight.started(ready, now)
        marked = self._timetable.take_catch_up(ready) if ready in self._marked else None
        return ready, name, True, marked

    def _done(self, image: ImageSpec, outcome: Outcome) -> None:
        """The driver's callback: a request ended (on the driver's thread)."""
        ready: Request | None = None
        lock = self._lock
        lock.acquire()  # not ``with``: its protocol costs a third more, once per request
        try:
            now = self._clock.now()
            since = self._in_flight.ended(image)
            if since is not None:  # timed out: its slot went to another request already
                self._book.finished_late(image, outcome, now)
                self._log.info(
                    "%s: snapshot request that timed out ended after %.0fs: %s",
                    self._book.name(image),
                    (now - since).total_seconds(),
                    outcome.detail,
                )
            else:
                self._book.finished(image, outcome, now)
            moving = self._watchdog.finished(now)  # a line only after a stall: rare
            if moving is not None:
                self._tell((moving,))
            if not self._health.marked:
                self._health.mark()
                self._cond.notify_all()  # the thread republishes health (debounced)
            if since is None:
                ready = self._release(image, now, begin=True)  # handed on at once, below
            elif self.idle():
                self._cond.notify_all()  # shutdown() waits for this
        finally:
            lock.release()
        if ready is not None:
            work = self._starting.work
            if work is not None:  # ended inline, inside this thread's start loop: next there
                work.appendleft(ready)
            else:
                self._run((ready,))
