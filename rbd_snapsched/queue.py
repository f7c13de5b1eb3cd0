"""The schedule queue: which image is due next, keyed by time, at most one entry per image."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import KeysView, Sequence
from datetime import datetime, timedelta, timezone
from operator import itemgetter
from typing import Union

from rbd_snapsched.levels import ImageSpec

# Theory of operation
# -------------------
#
# Schedules fire on minute boundaries, so many images share one due time. Like rbd_support, the
# queue is a set of *slots*, one per distinct due time, each a FIFO of images; unlike it, finding
# or removing an image never scans a slot:
#
#   _index    image -> its live entry, a (due, image) tuple. One per image: this dict IS the
#             queue's membership, length and per-image due. Its order is push order (a push
#             that changes an image's due deletes and re-inserts it).
#   _slots    due -> the entries pushed at that due, in push order: a bare entry while there is
#             one, a deque from the second on. May also hold *stale* entries: ones an image no
#             longer points at because it was re-pushed or removed (lazy deletion).
#   _dues     a heap of the keys of _slots, each exactly once.
#
# Dues are kept as integer microseconds since the Unix epoch; datetimes exist only at the API edge.
#
# Invariants, true between public calls:
#   1. Every slot in _slots is non-empty, and _dues holds exactly the keys of _slots.
#   2. An entry is live iff `_index.get(entry[1]) is entry` (identity, not equality: a stale and a
#      live entry can be equal when an image was removed and re-pushed at the same due).
#   3. Every live entry sits in the slot of its own due, so queue order is (due, push order):
#      FIFO among ties, in the slots and in _index alike.
#   4. _stored == the number of entries in all slots, and _stored <= 2 * len(_index) + _SLACK:
#      once stale entries would pass that, _compact() drops them all (O(stored), amortised O(1)).
#
# Costs: push, remove and pop_due are O(1) amortised, plus O(log D) heap work when a slot appears
# or empties, D being the number of distinct due times (D <= n; with minute slots D is small).
# entries() sorts: O(n log n), for `report`, not for the loop; pushed() copies: O(n), for
# `status`.
#
# Time: every datetime given must be timezone-aware (a naive one raises TypeError, as datetime
# arithmetic between naive and aware values does); the ones returned are aware UTC.

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SLACK = 64

_Entry = tuple[int, ImageSpec]
_Slot = Union[_Entry, deque[_Entry]]


def _to_us(when: datetime) -> int:
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class ScheduleQueue:
    """Images waiting for their next snapshot, earliest due first, FIFO among equal dues."""

    __slots__ = ("_dues", "_index", "_last", "_slots", "_stored")

    def __init__(self) -> None:
        self._index: dict[ImageSpec, _Entry] = {}
        self._slots: dict[int, _Slot] = {}
        self._dues: list[int] = []
        self._stored = 0
        # The last due pushed and its microseconds: a slot's images are re-queued at one
        # shared next-run datetime (``schedule.NextRuns``), converted once
        self._last: tuple[datetime | None, int] = (None, 0)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, image: object) -> bool:
        return image in self._index

    def __repr__(self) -> str:
        return f"<ScheduleQueue {len(self._index)} images, {len(self._slots)} slots>"

    @property
    def stored(self) -> int:
        """Entries held, stale ones included (bounded by 2 * len + a small constant)."""
        return self._stored

    def push(self, image: ImageSpec, due: datetime) -> bool:
        """Queue ``image`` at ``due``, replacing its entry if it has one; True if it took a new
        place (last among its ties), False if it was queued at ``due`` already.

        Re-pushing an image at the due time it already has keeps its place among its ties.
        """
        last, us = self._last
        if due is not last:  # refresh queues many images at one shared next run: converted once
            us = _to_us(due)
            self._last = due, us
        index, slots = self._index, self._slots
        old = index.get(image)
        if old is not None:
            if old[0] == us:
                return False
            del index[image]
        entry = (us, image)
        index[image] = entry
        slot = slots.get(us)
        if slot is None:
            slots[us] = entry
            heapq.heappush(self._dues, us)
        elif isinstance(slot, deque):
            slot.append(entry)
        else:
            slots[us] = deque((slot, entry))
        self._stored += 1
        if old is not None:  # moved: its old entry is stale now
            self._maybe_compact()
        return True

    def push_run(self, images: Sequence[ImageSpec], due: datetime) -> None:
        """``push`` each of ``images``, none of them queued now (popped a moment ago), at one
        ``due``, in order: a slot's batch re-queued at its next run, at C speed (one entry per
        image, the index and the slot each updated in one call).

        Were some queued after all, each would be as removed first: its old entry stale
        (dropped when met), the run queued in order behind the rest at ``due``."""
        if not images:
            return
        us = _to_us(due)
        entries = [(us, image) for image in images]
        index, slots = self._index, self._slots
        before = len(index)
        index.update(zip(images, entries))
        queued = len(index) - before != len(entries)
        if queued:  # an update keeps a key's place in the index (push order): move them all
            for image, entry in zip(images, entries):
                index.pop(image, None)  # (twice in the run: the later entry stands)
                index[image] = entry
        slot = slots.get(us)
        if slot is None:
            slots[us] = entries[0] if len(entries) == 1 else deque(entries)
            heapq.heappush(self._dues, us)
        elif isinstance(slot, deque):
            slot.extend(entries)
        else:
            slots[us] = deque((slot, *entries))
        self._stored += len(entries)
        if queued:  # their old entries are stale now
            self._maybe_compact()

    def remove(self, image: ImageSpec) -> bool:
        """Drop ``image`` from the queue; False if it was not queued."""
        if self._index.pop(image, None) is None:
            return False
        self._maybe_compact()
        return True

    def pop_due(self, now: datetime) -> ImageSpec | None:
        """Remove and return the first image due at or before ``now``, or None."""
        head = self._head()
        if head is None or head[0] > _to_us(now):
            return None
        us, image = head
        slot = self._slots[us]
        if isinstance(slot, deque) and len(slot) > 1:
            slot.popleft()
        else:
            del self._slots[us]
            heapq.heappop(self._dues)
        self._stored -= 1
        del self._index[image]
        self._maybe_compact()
        return image

    def pop_due_many(self, now: datetime, limit: int) -> list[ImageSpec]:
        """Remove and return up to ``limit`` due images, in queue order (the scheduler's batch)."""
        now_us = _to_us(now)
        index, slots, dues = self._index, self._slots, self._dues
        popped: list[ImageSpec] = []
        append, get = popped.append, index.get
        while len(popped) < limit:
            head = self._head()
            if head is None or head[0] > now_us:
                break
            us = head[0]
            slot = slots[us]
            if isinstance(slot, deque):
                # A whole slot at once: its live entries in order, the stale ones dropped
                popleft, left = slot.popleft, limit - len(popped)
                taken = drawn = 0
                while slot and taken < left:
                    entry = popleft()
                    drawn += 1
                    image = entry[1]
                    if get(image) is entry:
                        del index[image]
                        append(image)
                        taken += 1
                self._stored -= drawn
                if slot:
                    break  # the limit: the rest of this slot waits for the next batch
            else:
                self._stored -= 1
                del index[head[1]]
                append(head[1])
            del slots[us]
            heapq.heappop(dues)
        self._maybe_compact()
        return popped

    def next_deadline(self) -> datetime | None:
        """The earliest due time in the queue, or None when it is empty."""
        head = self._head()
        return None if head is None else _from_us(head[0])

    def due_of(self, image: ImageSpec) -> datetime | None:
        """When ``image`` is due, or None if it is not queued."""
        entry = self._index.get(image)
        return None if entry is None else _from_us(entry[0])

    def due_us(self, image: ImageSpec) -> int | None:
        """When ``image`` is due (microseconds since the epoch), or None if it is not queued."""
        entry = self._index.get(image)
        return None if entry is None else entry[0]

    def images(self) -> KeysView[ImageSpec]:
        """The queued images (a view: ``status`` marks them all at C speed)."""
        return self._index.keys()

    def pushed(self) -> list[tuple[int, ImageSpec]]:
        """All queued images with their due times (microseconds since the epoch), in push
        order: sorted stably by due, queue order (``status``: a copy at C speed)."""
        return list(self._index.values())

    def entries(self) -> list[tuple[datetime, ImageSpec]]:
        """All queued images with their due times, in queue order (due, then FIFO)."""
        out: list[tuple[datetime, ImageSpec]] = []
        last_us: int | None = None
        when = _EPOCH
        # A stable sort of _index (push order) on the due alone gives FIFO among ties.
        for us, image in sorted(self._index.values(), key=itemgetter(0)):
            if us != last_us:
                last_us, when = us, _from_us(us)
            out.append((when, image))
        return out

    def clear(self) -> None:
        """Empty the queue."""
        self._index.clear()
        self._slots.clear()
        self._dues.clear()
        self._stored = 0

    def _head(self) -> _Entry | None:
        """The first live entry, left in place; stale entries met on the way are dropped."""
        index, slots, dues = self._index, self._slots, self._dues
        while dues:
            us = dues[0]
            slot = slots[us]
            if isinstance(slot, deque):
                while slot:
                    entry = slot[0]
                    if index.get(entry[1]) is entry:
                        return entry
                    slot.popleft()
                    self._stored -= 1
            elif index.get(slot[1]) is slot:
                return slot
            else:
                self._stored -= 1
            del slots[us]
            heapq.heappop(dues)
        return None

    def _maybe_compact(self) -> None:
        if self._stored > 2 * len(self._index) + _SLACK:
            self._compact()

    def _compact(self) -> None:
        slots: dict[int, _Slot] = {}
        for entry in self._index.values():  # push order, so each slot stays FIFO
            us = entry[0]
            slot = slots.get(us)
            if slot is None:
                slots[us] = entry
            elif isinstance(slot, deque):
                slot.append(entry)
            else:
                slots[us] = deque((slot, entry))
        self._slots = slots
        self._dues = list(slots)
        heapq.heapify(self._dues)
        self._stored = len(self._index)
