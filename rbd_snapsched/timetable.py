"""When each image runs next: the queue, the catch-up marks and stagger.              pure

The Handler asks; this decides and writes. It is the one writer of the queue, of the catch-up
marks and of each record's ``next_run`` (and, through ``Book.set_schedule``, of which schedule
governs a record), so one invariant holds between calls, kept in one place:

  1. ``record.next_run`` is the image's due time in the queue, or None when it is not queued.
  2. An image with a catch-up mark is queued (due now, or waiting for the cap once popped).
     Its mark is taken when its request starts (``take_catch_up``), not when it is popped: an
     image waiting for the cap keeps it, so a re-stagger and the next slot still see it.
  3. A catch-up pop serves no slot (``Due.slot`` is None); any other pop serves the slot it was
     queued for.

Every image whose due time or ``next_run`` it changes (queued, re-queued, dropped) it tells
the Handler's status rows (``changed``: ``StatusRows.mark``, set only while status rows are kept;
None otherwise), so that row is rendered again at the next ``status`` call.

Called with the Handler's lock held; no I/O, no clock of its own (``now`` is passed in).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, KeysView
from datetime import datetime, timedelta
from typing import Optional

from .book import Book, ImageRecord
from .levels import ImageSpec
from .queue import ScheduleQueue
from .schedule import NextRuns, Schedule

# A newly known image (module start, failover, blocklist recovery, promotion) whose next slot
# is further away than this gets a catch-up request at once: upstream just waits for the slot.
CATCH_UP_AFTER = timedelta(minutes=1)

# Rook resets a pool's schedules on every reconcile: it removes each one, then adds the spec's
# again, a few seconds apart. A slot that falls in that gap would be lost (no schedule at the
# slot, and the one re-added runs from its next slot). So an image whose schedule goes while
# its slot is at most this far away keeps that slot for this long: if a schedule with the same
# slot comes back within it, after the slot has passed, the image is due at once, for that slot.
RESET_GRACE = timedelta(seconds=30)


# A popped image, already queued again at its next run: the image, its record, and the slot it
# serves (None: a catch-up). A plain tuple: one is made per image per slot, on the hot path.
Due = tuple[ImageSpec, ImageRecord, Optional[datetime]]


class Timetable:
    __slots__ = ("_catch_up", "_queue", "_unscheduled", "changed", "stagger")

    def __init__(self, stagger: bool) -> None:
        # Told each image whose due time it changes (status rows kept); None: no one
        self.changed: Callable[[ImageSpec], object] | None = None
        self.stagger = stagger  # spread images without a start time (upstream main's stagger)
        self._queue = ScheduleQueue()
        self._catch_up: dict[ImageSpec, datetime] = {}  # image -> recent_since, until started
        # image -> (the slot it was queued for, when its schedule went): see RESET_GRACE
        self._unscheduled: dict[ImageSpec, tuple[datetime, datetime]] = {}

    # -- reads ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._queue)

    def __contains__(self, image: object) -> bool:
        return image in self._queue

    def next_deadline(self) -> datetime | None:
        return self._queue.next_deadline()

    def entries(self) -> list[tuple[datetime, ImageSpec]]:
        """Every queued image with its due time, in queue order (for ``report``)."""
        return self._queue.entries()

    def due_us(self, image: ImageSpec) -> int | None:
        """When ``image`` is due, in microseconds since the epoch; None if it is not queued."""
        return self._queue.due_us(image)

    def queued(self) -> KeysView[ImageSpec]:
        """Every queued image (a view; ``status``)."""
        return self._queue.images()

    def pushed(self) -> tuple[list[int], list[ImageSpec]]:
        """Every queued image's due time (microseconds) and the images, in push order
        (``status``)."""
        return self._queue.pushed()

    def _push(self, image: ImageSpec, due: datetime) -> None:
        """Queue ``image`` at ``due``; tell the status rows (if kept)."""
        self._queue.push(image, due)
        if self.changed is not None:
            self.changed(image)

    # -- writes ---------------------------------------------------------------------------

    def requeue(
        self,
        images: Iterable[ImageSpec],
        book: Book,
        schedule_for: Callable[[ImageSpec], Schedule | None],
        now: datetime,
    ) -> None:
        """Queue each image by its governing schedule (``schedule_for``), if that changed."""
        next_run = NextRuns(now, stagger=self.stagger)
        queue, push = self._queue, self._push
        unscheduled = self._unscheduled
        if unscheduled:  # only within RESET_GRACE of a removal: small and short-lived
            self._unscheduled = unscheduled = {
                i: held for i, held in unscheduled.items() if now - held[1] <= RESET_GRACE
            }
        for image in images:
            record = book[image]
            schedule = schedule_for(image)
            if schedule == record.schedule and (schedule is None or image in queue):
                continue
            book.set_schedule(image, schedule)
            if schedule is None:
                slot = record.next_run
                if slot is not None and image not in self._catch_up and slot - now <= RESET_GRACE:
                    unscheduled[image] = (slot, now)
                queue.remove(image)
                record.next_run = None
                if self.changed is not None:
                    self.changed(image)
            else:
                held = unscheduled.pop(image, None) if unscheduled else None
                if held is not None and self._kept_slot(image, schedule, held, now):
                    record.next_run = held[0]  # due at once, serving the slot of the gap
                else:
                    record.next_run = next_run(image, schedule)
                push(image, record.next_run)

    def _kept_slot(
        self,
        image: ImageSpec,
        schedule: Schedule,
        held: tuple[datetime, datetime],
        now: datetime,
    ) -> bool:
        """Whether the slot an image lost with its schedule passed in the gap before this
        schedule came back, and is one of this schedule's slots too (see RESET_GRACE; older
        holds were pruned by ``requeue``)."""
        slot, since = held
        if not since <= slot <= now:
            return False
        just_before = NextRuns(slot - timedelta(microseconds=1), stagger=self.stagger)
        return just_before(image, schedule) == slot

    def plan_catch_up(self, images: Iterable[ImageSpec], book: Book, now: datetime) -> None:
        """Queue newly known images for a catch-up now if their next slot is far.

        The request snapshots only if the image's newest mirror snapshot is older than its
        shortest interval: one snapshot, not one per missed slot; then it follows its slots.
        """
        next_run = NextRuns(now, stagger=self.stagger)
        for image in images:
            record = book[image]
            schedule = record.schedule
            if schedule is None or next_run(image, schedule) - now <= CATCH_UP_AFTER:
                continue
            shortest = min(item.interval.timedelta for item in schedule)
            self._catch_up[image] = now - shortest
            record.next_run = now
            self._push(image, now)

    def restagger(self, stagger: bool, book: Book, now: datetime) -> bool:
        """Turn staggering on or off: every queued image moves to its new next run at once.
        False if it was so already (nothing moved)."""
        if stagger == self.stagger:
            return False
        self.stagger = stagger
        next_run = NextRuns(now, stagger=stagger)  # one pass under the lock: a rare command
        queue = self._queue
        for image in book:
            record = book[image]
            due = queue.due_of(image)
            if record.schedule is None or due is None or due <= now or image in self._catch_up:
                continue  # not ours, or due already (a slot or a catch-up): re-queued after
            record.next_run = next_run(image, record.schedule)
            self._push(image, record.next_run)
        return True

    def pop_due(self, now: datetime, limit: int, book: Book) -> tuple[list[Due], int]:
        """Up to ``limit`` due images, each queued again at its next run; and how many were
        popped (an image no longer scheduled is popped and dropped)."""
        popped = self._queue.pop_due_many(now, limit)
        stagger = self.stagger
        next_run = NextRuns(now, stagger=stagger)
        catch_up, records = self._catch_up, book.records
        due: list[Due] = []
        push_run = self._queue.push_run
        run: list[ImageSpec] = []  # re-queued in one call per next run: images in a row
        push = run.append  # share a schedule, and most schedules a next run
        last: Schedule | None = None  # its next run computed once per schedule
        when = now
        for image in popped:
            record = records[image]
            schedule = record.schedule
            if schedule is None:
                continue  # dropped
            slot = None if image in catch_up else record.next_run
            if schedule is not last or stagger:  # staggered: a next run per phase
                last = schedule
                upcoming = next_run(image, schedule)
                if upcoming != when:
                    push_run(run, when)
                    run = []
                    push = run.append
                    when = upcoming
            record.next_run = when
            push(image)
            due.append((image, record, slot))
        push_run(run, when)
        changed = self.changed
        if changed is not None:  # status rows kept: every image popped changed (or left)
            for image in popped:
                changed(image)
        return due, len(popped)

    @property
    def catch_up_marked(self) -> Container[ImageSpec]:
        """The images marked for a catch-up check: a live read-only view (a request's start
        looks at it first, at C speed; marks are rare)."""
        return self._catch_up.keys()

    def take_catch_up(self, image: ImageSpec) -> datetime | None:
        """The image's catch-up mark (its ``recent_since``), removed: its request starts."""
        return self._catch_up.pop(image, None)

    def forget(self, image: ImageSpec) -> None:
        """The image is gone: out of the queue, its catch-up mark dropped. A slot it lost
        with its schedule stays held (within RESET_GRACE): a refresh in Rook's reset gap
        forgets the images its schedules no longer cover, and the re-add finds them again."""
        self._catch_up.pop(image, None)
        self._queue.remove(image)
        if self.changed is not None:
            self.changed(image)
