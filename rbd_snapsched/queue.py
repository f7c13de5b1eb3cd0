"""The schedule queue: which image is due next, keyed by time, at most one entry per image."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import KeysView, Sequence
from datetime import datetime, timedelta, timezone
from itertools import repeat
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
#   _index    image -> its due. One per image: this dict IS the queue's membership, length and
#             per-image due. Its order is push order (a push that changes an image's due deletes
#             and re-inserts it).
#   _slots    due -> the images pushed at that due, in push order: a bare image while there is
#             one, a deque from the second on. May also hold *stale* occurrences: ones left
#             behind when an image was re-pushed at another due or removed (lazy deletion).
#   _stale    (image, due) -> how many stale occurrences of the image that due's slot holds.
#             Empty but for images moved or removed since they were last met or compacted.
#   _dues     a heap of the keys of _slots, each exactly once.
#
# A slot holds images, not (due, image) entries: an entry would be a tuple holding an image (a
# NamedTuple, which the garbage collector never untracks), one per image pushed at every slot,
# surviving till its next slot: every such tuple would be promoted to the oldest generation,
# where a full collection (every tracked object: tens of milliseconds at 50,000 images) follows
# after a quarter more. Ints and the images themselves add nothing to track.
#
# Dues are kept as integer microseconds since the Unix epoch; datetimes exist only at the API edge.
#
# Invariants, true between public calls:
#   1. Every slot in _slots is non-empty, and _dues holds exactly the keys of _slots.
#   2. An image occurs in the slot of due d as many times as _stale[(image, d)] (0 if absent)
#      plus one if _index[image] == d; its stale occurrences come first (each became stale
#      before the next was pushed), so the first occurrence met is stale while the count says
#      so, and live after.
#   3. Every live image sits in the slot of its own due, so queue order is (due, push order):
#      FIFO among ties, in the slots and in _index alike.
#   4. _stored == the number of occurrences in all slots, and _stored <= 2 * len(_index) +
#      _SLACK: once stale ones would pass that, _compact() drops them all (O(stored), amortised
#      O(1)).
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

_Slot = Union[ImageSpec, deque[ImageSpec]]


def _to_us(when: datetime) -> int:
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class ScheduleQueue:
    """Images waiting for their next snapshot, earliest due first, FIFO among equal dues."""

    __slots__ = ("_dues", "_index", "_last", "_slots", "_stale", "_stored")

    def __init__(self) -> None:
        self._index: dict[ImageSpec, int] = {}
        self._slots: dict[int, _Slot] = {}
        self._stale: dict[tuple[ImageSpec, int], int] = {}
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
        """Occurrences held, stale ones included (bounded by 2 * len + a small constant)."""
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
        index = self._index
        old = index.get(image)
        if old is not None:
            if old == us:
                return False
            del index[image]
            self._left(image, old)
        index[image] = us
        self._append(us, image)
        self._stored += 1
        if old is not None:  # moved: its old occurrence is stale now
            self._maybe_compact()
        return True

    def push_run(self, images: Sequence[ImageSpec], due: datetime) -> None:
        """``push`` each of ``images``, none of them queued now (popped a moment ago), at one
        ``due``, in order: a slot's batch re-queued at its next run, at C speed (the index and
        the slot each updated in one call).

        Were some queued after all (or one twice in the run), each would be as removed first:
        its old occurrence stale (dropped when met), the run queued in order behind the rest at
        ``due``."""
        if not images:
            return
        us = _to_us(due)
        index, slots = self._index, self._slots
        moved = not index.keys().isdisjoint(images)
        if not moved:
            before = len(index)
            index.update(zip(images, repeat(us)))
            moved = len(index) - before != len(images)
            if moved:  # one twice in the run: undone, each queued in turn below
                for image in images:
                    index.pop(image, None)
        if moved:  # old occurrences turn stale (a twice-run one's earlier), each goes last
            for image in images:
                old = index.pop(image, None)
                if old is not None:
                    self._left(image, old)
                index[image] = us
        slot = slots.get(us)
        if slot is None:
            slots[us] = images[0] if len(images) == 1 else deque(images)
            heapq.heappush(self._dues, us)
        elif isinstance(slot, deque):
            slot.extend(images)
        else:
            slots[us] = deque((slot, *images))
        self._stored += len(images)
        if moved:
            self._maybe_compact()

    def remove(self, image: ImageSpec) -> bool:
        """Drop ``image`` from the queue; False if it was not queued."""
        old = self._index.pop(image, None)
        if old is None:
            return False
        self._left(image, old)
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
        index, slots, dues, stale = self._index, self._slots, self._dues, self._stale
        popped: list[ImageSpec] = []
        append = popped.append
        while len(popped) < limit:
            head = self._head()
            if head is None or head[0] > now_us:
                break
            us = head[0]
            slot = slots[us]
            if isinstance(slot, deque):
                # A whole slot at once: its live images in order, the stale ones dropped
                popleft, left = slot.popleft, limit - len(popped)
                taken = drawn = 0
                while slot and taken < left:
                    image = popleft()
                    drawn += 1
                    if stale and self._met_stale(image, us):
                        continue
                    del index[image]
                    append(image)
                    taken += 1
                self._stored -= drawn
                if slot:
                    break  # the limit: the rest of this slot waits for the next batch
            else:
                self._stored -= 1
                del index[slot]
                append(slot)
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
        us = self._index.get(image)
        return None if us is None else _from_us(us)

    def due_us(self, image: ImageSpec) -> int | None:
        """When ``image`` is due (microseconds since the epoch), or None if it is not queued."""
        return self._index.get(image)

    def images(self) -> KeysView[ImageSpec]:
        """The queued images (a view: ``status`` marks them all at C speed)."""
        return self._index.keys()

    def pushed(self) -> tuple[list[int], list[ImageSpec]]:
        """The queued images' due times (microseconds since the epoch) and the images, in
        push order: sorted stably by due, queue order (``status``: two copies at C speed)."""
        index = self._index
        return list(index.values()), list(index)

    def entries(self) -> list[tuple[datetime, ImageSpec]]:
        """All queued images with their due times, in queue order (due, then FIFO)."""
        out: list[tuple[datetime, ImageSpec]] = []
        last_us: int | None = None
        when = _EPOCH
        # A stable sort of _index (push order) on the due alone gives FIFO among ties.
        for image, us in sorted(self._index.items(), key=itemgetter(1)):
            if us != last_us:
                last_us, when = us, _from_us(us)
            out.append((when, image))
        return out

    def clear(self) -> None:
        """Empty the queue."""
        self._index.clear()
        self._slots.clear()
        self._stale.clear()
        self._dues.clear()
        self._stored = 0

    def _append(self, us: int, image: ImageSpec) -> None:
        slots = self._slots
        slot = slots.get(us)
        if slot is None:
            slots[us] = image
            heapq.heappush(self._dues, us)
        elif isinstance(slot, deque):
            slot.append(image)
        else:
            slots[us] = deque((slot, image))

    def _left(self, image: ImageSpec, us: int) -> None:
        """``image``'s occurrence in the slot of ``us`` is stale from now on."""
        key = (image, us)
        stale = self._stale
        stale[key] = stale.get(key, 0) + 1

    def _met_stale(self, image: ImageSpec, us: int) -> bool:
        """True if ``image``, met first in the slot of ``us``, is a stale occurrence (then
        counted as dropped); False if it is the live one."""
        key = (image, us)
        stale = self._stale
        count = stale.get(key)
        if not count:
            return False
        if count == 1:
            del stale[key]
        else:
            stale[key] = count - 1
        return True

    def _head(self) -> tuple[int, ImageSpec] | None:
        """The first live image and its due, left in place; stale occurrences met on the way
        are dropped."""
        slots, dues, stale = self._slots, self._dues, self._stale
        while dues:
            us = dues[0]
            slot = slots[us]
            if isinstance(slot, deque):
                while slot:
                    image = slot[0]
                    if not (stale and self._met_stale(image, us)):
                        return us, image
                    slot.popleft()
                    self._stored -= 1
            elif not (stale and self._met_stale(slot, us)):
                return us, slot
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
        for image, us in self._index.items():  # push order, so each slot stays FIFO
            slot = slots.get(us)
            if slot is None:
                slots[us] = image
            elif isinstance(slot, deque):
                slot.append(image)
            else:
                slots[us] = deque((slot, image))
        self._slots = slots
        self._stale.clear()
        self._dues = list(slots)
        heapq.heapify(self._dues)
        self._stored = len(self._index)
