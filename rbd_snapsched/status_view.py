"""The ``status`` reply: when its rows are kept, taken, rendered and joined. pure

``StatusRows`` (``status_rows.py``) holds the rows and knows how to render and join them;
``StatusView`` decides when, against the scheduler's lock: it starts keeping rows at the first
call (the Book and the Timetable then mark what they change), renders the marked ones a batch
per hold of the lock and the rest without it, and lets them go after ``KEPT`` without a call.
It owns the rows, its own lock (one call renders and joins at a time: the rows are that call's
alone), the last call's time and the due times it shares between rows. It reads the Book, the
Timetable and the Plan (their owners write them), always under the scheduler's lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from . import render, status_rows
from .access import every_image
from .book import Book
from .clock import Clock
from .levels import ImageSpec, LevelSpec
from .pauses import Pauses
from .plan import Plan
from .status_rows import StatusRows
from .status_sheet import Sheet
from .timetable import Timetable

KEPT: Final = timedelta(minutes=15)  # status rows let go after this long without a call


class StatusView:
    def __init__(
        self,
        *,
        lock: threading.Lock,
        clock: Clock,
        book: Book,
        timetable: Timetable,
        plan: Plan,
        batch: int,
    ) -> None:
        self._lock = lock  # the scheduler's: guards the rows, the book, the timetable, the plan
        self._clock = clock
        self._book = book
        self._timetable = timetable
        self._plan = plan
        self._batch = batch  # rows rendered per hold of the lock, at most
        self.rows = StatusRows()  # encoded, once a status call came
        self._sheet = Sheet()  # the last reply's pieces in order, every image visible
        self._call_lock = threading.Lock()  # one status call renders and joins at a time
        self._called = clock.now()  # the last call's time (the rows let go after KEPT)
        self._dues: dict[int, datetime] = {}  # due times of the rows taken lately, by instant

    def text(self, level: LevelSpec, visible: Callable[[ImageSpec], bool]) -> str:
        """The ``status`` reply's JSON text: the rows of the queued images under ``level`` that
        ``visible`` lets the caller see, as ``render.status`` words them and
        ``commands.respond`` writes them.

        It renders the rows that changed since the last call (the first call: every row), a
        batch at a time: their inputs copied with the lock held, rendered without it, put
        back with it at the next hold, which takes the next batch (one hold per batch, not
        two: each time the lock is taken while the drain holds it, the call may then wait a
        switch interval of the GIL, 5 ms, to run again). The last hold takes the few left and
        copies the queued images in push order (a list, at C speed: a fraction of what one
        dispatch batch holds the lock for); sorting by due, filtering and joining run without
        the lock. Should the writers mark rows about as fast as it renders them (a slot
        draining on the other thread), it stops chasing after about twice the rounds the rows
        marked at its start take, and takes the rest in that last hold as their records'
        fields, a third of the cost under the lock, rendered from records made of them without
        it. Nothing here depends on the book's late set (a row's
        ``late`` is its own late-at against now), so it leaves ``advance`` to the thread,
        which wakes for it.
        """
        rows = self.rows
        rounds, most = 0, 0
        rendered: status_rows.Rendered = []
        with self._call_lock:
            while True:
                with self._lock:
                    rows.put(rendered)  # the batch rendered since the last hold
                    now = self._called = self._clock.now()
                    if not rows.active:
                        self._keep()
                    if not rounds:  # writers mark faster than this renders: all, at the end
                        most = 2 * (rows.pending // self._batch) + 8
                    rounds += 1
                    last = rows.pending <= self._batch or rounds >= most
                    taken: list[status_rows.Taken] = []
                    copied: list[status_rows.Copied] = []
                    if last and rows.pending > self._batch:  # the chase ended: all, cheaply
                        copied = rows.take_copies(rows.pending, self._entry)
                    else:
                        taken = rows.take(rows.pending if last else self._batch, self._entry)
                    if last:
                        pushed = self._timetable.pushed()
                rendered = status_rows.render_taken(taken, rows.share) if taken else []
                if copied:
                    rendered += status_rows.render_copied(copied, rows.share)
                if last:
                    if rendered:
                        with self._lock:
                            rows.put(rendered)
                    if visible is every_image:
                        return self._sheet.text(pushed, rows.rows, rows.changed(), now, level)
                    return status_rows.join(pushed, rows.rows, now, level, visible)

    def render_some(self) -> bool:
        """Keep rows (if not yet) and render one batch of those marked, as a call does; True
        if more are marked (the benchmark: every row rendered, apart)."""
        rows = self.rows
        with self._call_lock:
            with self._lock:
                if not rows.active:
                    self._keep()
                taken = rows.take(self._batch, self._entry)
            rendered = status_rows.render_taken(taken, rows.share)
            with self._lock:
                rows.put(rendered)
                return rows.pending > 0

    def let_go(self) -> None:
        """Keep no rows after ``KEPT`` without a call (the scheduler thread): the writers mark
        nothing, the rows' memory is let go. Never waits for a call in progress."""
        if not self.rows.active or not self._call_lock.acquire(blocking=False):
            return
        try:
            with self._lock:
                if self._clock.now() - self._called >= KEPT:
                    self._book.changed = self._timetable.changed = None
                    self.rows.stop()
                    self._sheet.clear()
        finally:
            self._call_lock.release()

    def pauses_changed(self, before: Pauses, after: Pauses) -> None:
        """Mark the rows of the images under each level paused or resumed (lock held)."""
        if not self.rows.active:
            return
        was = {level: level.name for level, _ in before}
        will = {level: level.name for level, _ in after}
        for level in was.keys() | will.keys():
            if was.get(level) != will.get(level):
                self.rows.touch_all(self._book.covered(level))

    def _keep(self) -> None:
        """Keep rows from now on: every queued image's to render; the writers mark what they
        change (lock held)."""
        self.rows.start(self._timetable.queued())
        self._book.changed = self._timetable.changed = self.rows.mark

    def _entry(self, image: ImageSpec) -> render.StatusEntry | None:
        """What ``image``'s row shows: due, record, pausing level (None: not queued)."""
        us = self._timetable.due_us(image)
        record = self._book.get(image)
        if us is None or record is None:
            return None
        due = self._dues.get(us)  # one datetime per due: rows of a slot share it
        if due is None:
            if len(self._dues) >= self._batch:
                self._dues.clear()
            due = self._dues[us] = status_rows.from_microseconds(us)
        pauses = self._plan.pauses
        return due, record, pauses.covering(image) if pauses else None
