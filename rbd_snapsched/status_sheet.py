"""The ``status`` reply's pieces in queue order, kept from one call to the next. pure

Why
---
``status_rows.join`` sorts the queue, looks every row up and splices its clock values in, a row
of Python per image, at every call. A call comes after a fifth of a second or more of other
work, so it runs cold: in ceph-mgr, 1,000 rows took 1.5 ms to join where the same join, run
again at once, takes 0.3 ms. What a call touches is what it costs.

Between two calls the order rarely changes: only when images are queued, popped or re-queued
(at a slot: all at once, in its first dispatch batches). A slot draining changes rows' texts,
not their order. So the sheet keeps, for one level with every image visible (the caller's caps
unrestricted, as an admin's are), the pieces of the last reply in order: per row the
separator, its text before ``late``'s value, between the two clock values and after them, and
the two instants the clock values come from (``array``: one block of memory each).

Per call: if the queue's images and due times are what the last call saw (the same two
lists, element for element: images and dues are the same objects until an image is
re-queued, so the check reads arrays of pointers) and few rows changed, those rows are put in their
places (the sheet is built at the second such call in a row); otherwise ``join`` writes the
reply, at less cost than a build, and the sheet waits for an order that holds. Then each clock
value is computed for every row at once, a ``map`` of C functions over the two arrays, written
into its slots, and the pieces joined. The text is byte for byte ``join``'s (tests: status_sheet).

One move is followed rather than dropped: a slot draining (``_follow``). It pops the queue's
first images and queues each again at its next run, behind the rest; the order moves at every
call, but only at its ends. When the push order is the due order (one interval, as most
clusters run), the sheet drops the popped rows from its front and adds the pushed ones at its
end, each step at C speed, and puts the other changed rows in place.

Owned by the ``StatusView`` (one call at a time: its call lock); it reads the rows the call
rendered and the images whose rows changed since the last call (``StatusRows.changed``).
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from datetime import datetime
from itertools import chain, count, islice, repeat
from operator import add, floordiv, itemgetter, le, mul, sub
from typing import Final, cast

from .levels import ImageSpec, LevelSpec
from .status_rows import (
    BOOLS,
    EMPTY,
    EXACT_SINCE,
    HEAD,
    MILLION,
    SEPARATOR,
    TAIL,
    Pushed,
    Row,
    ascending,
    in_queue_order,
    join,
    lateness_text,
    microseconds,
)

_WIDTH: Final = 6  # pieces per row: separator, before, late, between, lateness, after
_LATE: Final = 2  # offsets of the clock values within a row's pieces
_LATENESS: Final = 4
# More rows changed than 1 in this many of those queued: written by ``join`` (tests set it).
# Putting a changed row in place (a Python call) costs about twice what ``join`` spends on a
# row; both end in the same ``"".join``. At 50,000 rows the two cost the same with about
# 10,000 changed
_JOIN_BEYOND = 5
# The sheet is built at the call that sees the same order this many times in a row after it
# moved: slots that pop between most calls (``bench_scheduler``'s fake cluster drains one in
# milliseconds) would otherwise build it at every other call, to throw it away at the next
_HELD_CALLS = 2
_BEFORE, _BETWEEN, _AFTER, _REFERENCE, _LATE_AT = map(itemgetter, range(5))  # a Row's fields
_SINK: Final[deque[object]] = deque(maxlen=0)
_consume: Final[Callable[[Iterable[object]], None]] = _SINK.extend  # runs C calls to their end


class Sheet:
    """The last reply's pieces for one level, every image visible (see the module's text)."""

    __slots__ = (
        "_at",
        "_base",
        "_held",
        "_in_order",
        "_late_at",
        "_level",
        "_missing",
        "_parts",
        "_pushed",
        "_reference",
        "_shown",
    )

    def __init__(self) -> None:
        self._level: LevelSpec | None  # the last call's level (None: no call yet)
        self._pushed: Pushed  # the last call's dues and images, in push order
        self._held: int  # calls in a row since, with that order and few rows changed
        self._shown: list[ImageSpec]  # the images shown, in order
        # Each one's row number plus _base (made when needed; _base: rows dropped since)
        self._at: dict[ImageSpec, int] | None
        self._base: int
        self._in_order: bool  # push order is due order: the global level's rows in push order
        self._missing: set[ImageSpec]  # queued under the level, no row at the build
        self._parts: list[str]  # _WIDTH per row, then the tail
        self._reference: array[int]  # per row: its reference instant (us since the epoch)
        self._late_at: array[int]  # per row: its late-at instant (never: NEVER)
        self.clear()

    @property
    def built(self) -> bool:
        """The sheet is built for the last call's order (it held ``_HELD_CALLS`` calls)."""
        return self._held >= _HELD_CALLS

    def clear(self) -> None:
        """Keep nothing (the rows were let go): the next call starts over."""
        self._level, self._pushed, self._held = None, ([], []), 0
        self._shown, self._at, self._missing, self._parts = [], None, set(), []
        self._base, self._in_order = 0, False
        self._reference, self._late_at = array("q"), array("q")

    def text(
        self,
        pushed: Pushed,
        rows: Mapping[ImageSpec, Row],
        changed: Collection[ImageSpec],
        now: datetime,
        level: LevelSpec,
    ) -> str:
        """``join(pushed, rows, now, level, None)``: ``pushed`` is the queue's dues and images
        in push order (kept to compare), ``changed`` every image whose row in ``rows`` was set
        or removed since the last call.

        The order moved since the last call other than as a slot draining moves it
        (``_follow``), the level is another, or more than one row in ``_JOIN_BEYOND``
        changed: ``join`` writes it, which costs less than building the sheet (or putting that
        many rows in place, a Python call each), and the sheet is built at the next call if
        the order holds till then and few rows change (slots popped at full speed between
        every two calls never build it). It waits for ``_HELD_CALLS`` such calls."""
        if (
            level != self._level
            or len(changed) * _JOIN_BEYOND > len(pushed[1])  # most rows changed (a fast slot)
            or (pushed != self._pushed and not (self.built and self._follow(pushed, rows)))
        ):
            self.clear()
            self._level, self._pushed = level, pushed
        elif not self.built:
            self._held += 1
            if self.built:
                self._build(rows)
        elif changed:
            self._put_changed(changed, rows)
        if not self.built:
            return join(pushed, rows, now, level, None)
        return self._fill(microseconds(now))

    def _build(self, rows: Mapping[ImageSpec, Row]) -> None:
        """From the last call's queue order and level, as ``join`` orders and filters them;
        each step over all rows at C speed."""
        level = self._level
        images = in_queue_order(self._pushed)
        if level is not None and level != LevelSpec.global_level():
            images = filter(level.matches, images)
        shown = list(images)
        looked_up: list[Row | None] = list(map(rows.get, shown))
        missing: set[ImageSpec] = set()
        if not all(looked_up):  # queued, not rendered (a row is a tuple of five: true)
            missing = {image for image, row in zip(shown, looked_up) if row is None}
            shown = [image for image in shown if image not in missing]
        found = cast("list[Row]", list(filter(None, looked_up)) if missing else looked_up)
        self._missing, self._shown, self._at, self._base = missing, shown, None, 0
        dues = self._pushed[0]
        self._in_order = ascending(dues)
        if not found:
            self._parts = []
            self._reference, self._late_at = array("q"), array("q")
            return
        parts = list(_pieces(found))
        parts[0] = HEAD
        parts.append(TAIL)
        self._parts = parts
        self._reference = array("q", map(_REFERENCE, found))
        self._late_at = array("q", map(_LATE_AT, found))

    def _places(self) -> dict[ImageSpec, int]:
        """Each shown image's row number plus ``_base``: made when a call first puts rows in
        place, kept as the sheet follows the queue (``_follow``)."""
        at = self._at
        if at is None:
            at = self._at = dict(zip(self._shown, count(self._base)))
        return at

    def _follow(self, pushed: Pushed, rows: Mapping[ImageSpec, Row]) -> bool:
        """Follow the queue, if all that moved since the last call is what a slot draining
        does: its first entries popped, and entries pushed after the rest (at the end of the
        push order), in due order, none due before the last of the rest. The push order is then
        still the rows' order (due order), so the popped rows are dropped from the front and
        the pushed ones' added at the end, each step at C speed; True. Any other move, another
        level's rows or rows missing: False (``join`` writes the reply)."""
        old_dues, old = self._pushed
        dues, images = pushed
        if not self._in_order or self._missing or self._level != LevelSpec.global_level():
            return False
        at, base = self._places(), self._base
        # How many were popped: the first image's place last time, if it was queued (then the
        # rest must be as they were; if not, every image was popped)
        popped = len(old)
        if images:
            place = at.get(images[0])
            if place is not None:
                popped = place - base
        kept = len(old) - popped
        if images[:kept] != old[popped:] or dues[:kept] != old_dues[popped:]:
            return False
        added, added_dues = images[kept:], dues[kept:]
        if added_dues and ((kept and added_dues[0] < old_dues[-1]) or not ascending(added_dues)):
            return False
        found = list(map(rows.get, added))
        if not all(found):  # queued, not rendered (a row is a tuple of five: true)
            return False
        rows_found = cast("list[Row]", found)
        parts, shown = self._parts, self._shown
        if popped:
            for image in islice(old, popped):
                del at[image]
            del parts[: popped * _WIDTH], shown[:popped]
            del self._reference[:popped], self._late_at[:popped]
            self._base = base = base + popped
        if rows_found:
            if parts:
                parts.pop()  # the tail
            at.update(zip(added, count(base + len(shown))))
            shown.extend(added)
            parts.extend(_pieces(rows_found))
            parts.append(TAIL)
            self._reference.extend(map(_REFERENCE, rows_found))
            self._late_at.extend(map(_LATE_AT, rows_found))
        if shown:
            parts[0] = HEAD  # the first row's separator
        else:
            parts.clear()
        self._pushed = pushed
        return True

    def _put_changed(self, changed: Collection[ImageSpec], rows: Mapping[ImageSpec, Row]) -> None:
        """Put the changed rows in their places, all at once, each step at C speed; the sheet
        is built again instead at a row gone (shown, no row now) or come (queued without a
        row at the build); changed images not shown are left out."""
        at, missing = self._places(), self._missing
        images = list(changed)
        places = list(map(at.get, images))
        found = list(map(rows.get, images))
        if None in places or None in found:
            if any(
                place is not None or image in missing
                for image, place, row in zip(images, places, found)
                if place is None or row is None
            ):
                self._build(rows)
                return
            kept = [(place, row) for place, row in zip(places, found) if place is not None]
            places, found = [place for place, _ in kept], [row for _, row in kept]
        numbers = list(map(sub, cast("list[int]", places), repeat(self._base)))
        starts = list(map(mul, numbers, repeat(_WIDTH)))
        put, rows_found = self._parts.__setitem__, cast("list[Row]", found)
        for offset, piece in ((1, _BEFORE), (3, _BETWEEN), (5, _AFTER)):
            _consume(map(put, map(add, starts, repeat(offset)), map(piece, rows_found)))
        _consume(map(self._reference.__setitem__, numbers, map(_REFERENCE, rows_found)))
        _consume(map(self._late_at.__setitem__, numbers, map(_LATE_AT, rows_found)))

    def _fill(self, now_us: int) -> str:
        """The pieces with every row's clock values at ``now_us``, joined."""
        parts = self._parts
        if not parts:
            return EMPTY
        reference, late_at, now = self._reference, self._late_at, repeat(now_us)
        rows = len(reference)
        if min(late_at) > now_us:  # none late (a healthy cluster): one value for all
            parts[_LATE::_WIDTH] = [BOOLS[False]] * rows
        else:
            parts[_LATE::_WIDTH] = map(BOOLS.__getitem__, map(le, late_at, now))
        if now_us - min(reference) >= EXACT_SINCE:
            parts[_LATENESS::_WIDTH] = map(lateness_text, now, reference)
            return "".join(parts)
        # max(now - reference, 0) // 10**6; a reference after now (rare: a clock behind)
        # clamped to now first
        clamped: Iterable[int] = reference
        if max(reference) > now_us:
            clamped = map(min, reference, now)
        since = map(sub, now, clamped)
        parts[_LATENESS::_WIDTH] = map(str, map(floordiv, since, repeat(MILLION)))
        return "".join(parts)


def _pieces(rows: list[Row]) -> Iterator[str]:
    """The pieces of ``rows`` in order, each row's clock values blank, at C speed."""
    fill = repeat("")
    texts = zip(
        repeat(SEPARATOR),
        map(_BEFORE, rows),
        fill,
        map(_BETWEEN, rows),
        fill,
        map(_AFTER, rows),
    )
    return chain.from_iterable(texts)
