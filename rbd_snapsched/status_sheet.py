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

Per call: if the queue's images and due times are what the sheet was built from (the same
list, element for element: the queue's entries are the same objects until an image is
re-queued, so the check reads two arrays of pointers), the rows that changed since are put in
their places; otherwise the sheet is built anew, as ``join`` would. Then each clock value is
computed for every row at once, a ``map`` of C functions over the two arrays, written into its
slots, and the pieces joined. The text is byte for byte ``join``'s (tests: status_rows).

Owned by the ``StatusView`` (one call at a time: its status lock); it reads the rows the call
rendered and the images whose rows changed since the last call (``StatusRows.changed``).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from datetime import datetime
from itertools import chain, repeat
from operator import floordiv, le, sub
from typing import Final

from .levels import ImageSpec, LevelSpec
from .status_rows import (
    BOOLS,
    DUE,
    EMPTY,
    EXACT_SINCE,
    HEAD,
    IMAGE,
    MILLION,
    SEPARATOR,
    TAIL,
    Pushed,
    Row,
    lateness_text,
    microseconds,
)

_WIDTH: Final = 6  # pieces per row: separator, before, late, between, lateness, after
_LATE: Final = 2  # offsets of the clock values within a row's pieces
_LATENESS: Final = 4
_INSTANT_MAX: Final = (1 << 63) - 1  # an 'q' array's largest: beyond every now (late-at: never)


class Sheet:
    __slots__ = ("_at", "_late_at", "_level", "_missing", "_parts", "_pushed", "_reference")

    def __init__(self) -> None:
        self._level: LevelSpec | None = None  # the level the sheet shows (None: no sheet)
        self._pushed: Pushed = []  # the queue's entries it was built from, in push order
        self._at: dict[ImageSpec, int] = {}  # each shown image's place (row number)
        self._missing: set[ImageSpec] = set()  # queued under the level, no row at the build
        self._parts: list[str] = []  # _WIDTH per row, then the tail
        self._reference = array("q")  # per row: its reference instant (us since the epoch)
        self._late_at = array("q")  # per row: its late-at instant (never: _INSTANT_MAX)

    def clear(self) -> None:
        """Keep nothing (the rows were let go): the next call builds the sheet anew."""
        self._level = None
        self._pushed, self._at, self._missing, self._parts = [], {}, set(), []
        self._reference, self._late_at = array("q"), array("q")

    def text(
        self,
        pushed: Pushed,
        rows: Mapping[ImageSpec, Row],
        changed: Iterable[ImageSpec],
        now: datetime,
        level: LevelSpec,
    ) -> str:
        """``join(pushed, rows, now, level, None)``: ``pushed`` is the queue's entries in push
        order (not sorted: kept to compare), ``changed`` every image whose row in ``rows``
        was set or removed since the last call."""
        if level != self._level or pushed != self._pushed:
            self._build(pushed, rows, level)
        else:
            at, missing = self._at, self._missing
            for image in changed:
                place = at.get(image)
                row = rows.get(image)
                if place is not None and row is not None:
                    self._put(place, row)
                elif place is not None or image in missing:  # a row gone, or one come
                    self._build(pushed, rows, level)
                    break
        return self._fill(microseconds(now))

    def _build(self, pushed: Pushed, rows: Mapping[ImageSpec, Row], level: LevelSpec) -> None:
        images: Iterable[ImageSpec] = map(IMAGE, sorted(pushed, key=DUE))
        if level != LevelSpec.global_level():
            images = filter(level.matches, images)
        shown: list[ImageSpec] = []
        found: list[Row] = []
        missing: set[ImageSpec] = set()
        for image in images:
            row = rows.get(image)
            if row is None:
                missing.add(image)
            else:
                shown.append(image)
                found.append(row)
        self._level, self._pushed, self._missing = level, pushed, missing
        self._at = dict(zip(shown, range(len(shown))))
        if not found:
            self._parts = []
            self._reference, self._late_at = array("q"), array("q")
            return
        before, between, after, reference, late_at = zip(*found)
        fill = repeat("")
        parts = list(
            chain.from_iterable(zip(repeat(SEPARATOR), before, fill, between, fill, after))
        )
        parts[0] = HEAD
        parts.append(TAIL)
        self._parts = parts
        self._reference = array("q", reference)
        self._late_at = array("q", map(min, late_at, repeat(_INSTANT_MAX)))

    def _put(self, place: int, row: Row) -> None:
        before, between, after, reference, late_at = row
        at = place * _WIDTH
        parts = self._parts
        parts[at + 1] = before
        parts[at + 3] = between
        parts[at + 5] = after
        self._reference[place] = reference
        self._late_at[place] = min(late_at, _INSTANT_MAX)

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
