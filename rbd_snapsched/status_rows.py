"""Every queued image's ``status`` row, encoded when a ``status`` call needs it. pure

Theory of operation
-------------------
A row changes when its image's record, due time or pausing level does: a few times per slot
(queued for its next run, its attempt's start and end, a pause). It is read only by ``status``
calls, which may never come. So a change only *marks* the image (``mark``: one dict insertion
from C, no rendering, no text) and a ``status`` call renders the rows marked since the last
one, keeps them, and filters and joins all of them. Until the first call nothing is marked or
kept at all (``active`` is False and the writers hold no mark to call): the scheduler's hot
path pays nothing for the rows, and the memory is what it was without them. A call starts
them (``start``: every queued image marked); the Handler stops them again after a long quiet
(``stop``: the rows let go).

A row is the text ``commands.respond`` (``json.dumps(..., indent=4, sort_keys=True)``) writes
for it inside ``{"scheduled_images": [...]}``, written from a template per row shape (which
keys it has): the key text and separators baked in, derived at import from ``render.ROW_KEYS``
and from ``respond`` itself, the values (``render.row_values``: the one definition of what a
row holds) encoded as json encodes scalars (strings by its C ``encode_basestring_ascii``,
remembered for the strings rows share: times, results).

Rows alike but for their image's name share their text around it: a slot's rows have one due,
next run, attempt slot and start (a dispatch batch's), and many end within one printed second.
``encode`` remembers the texts around the name by the row's other values (and their classes:
``True == 1``), so most rows of a slot cost one lookup and the name's encoding.

Two keys move with the time of the call alone (``render.CLOCK_KEYS``: ``late`` and
``lateness_seconds``). A row keeps the text before, between and after their values, and the two
instants they come from (the image's reference and late-at time, in microseconds since the
epoch); a call splices the values in with one subtraction and one comparison per row.

Who does what
-------------
- ``mark(image)`` (the Book, the Timetable and the Handler: a pause), with the Handler's lock
  held, once ``active``: what the image's row shows changed, or it left the queue.
- A ``status`` call (one at a time: the status view's call lock; the rows are its alone) with
  the lock held ``take``s the inputs of a batch of marked rows (what each row shows, as
  ``render.row_values`` gives it, and its two instants), renders them without it
  (``render_taken``) and ``put``s them back in the hold that takes the next batch, a row
  marked again meanwhile not (it is marked: taken again later); until few are marked. Then,
  in one hold, it takes those few and copies the queue's images in push order
  (``queue.pushed``, at C speed); without the lock it renders them, puts them back (another
  short hold) and ``join``s: sorts by due (stably: queue order), filters, splices the clock
  values, joins.

Invariant, with the Handler's lock held: every queued image not marked has its row, rendered
from its current record, due time and pausing level (once ``active``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import fields
from datetime import datetime, timedelta, timezone
from itertools import islice, product
from json.encoder import encode_basestring_ascii
from operator import attrgetter, itemgetter, le
from typing import Any, Final, Optional, TypeVar

from . import render
from .book import ImageRecord
from .commands import MARK, cut, respond
from .levels import ImageSpec, LevelSpec

# A row: its text before late's value, between it and lateness_seconds' value, after that; the
# image's reference and late-at instants (microseconds since the epoch; late-at NEVER: none).
Row = tuple[str, str, str, int, int]
# What a row is rendered from: its due time, record and pausing level (render.StatusEntry);
# None: the image is not queued (no row).
Entry = Optional[render.StatusEntry]
Rendered = list[tuple[ImageSpec, Optional[Row]]]  # rows rendered outside the lock (None: none)
# The queued images' dues (us) and the images, in push order (``queue.pushed``)
Pushed = tuple[list[int], list[ImageSpec]]

LATE: Final = "late"
LATENESS: Final = "lateness_seconds"
if tuple(sorted(render.CLOCK_KEYS)) != (LATE, LATENESS):  # sorted keys: late's value first
    raise ImportError(f"status_rows splices {LATE} and {LATENESS}, not {render.CLOCK_KEYS}")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Beyond every datetime in microseconds since the epoch (year 9999 is below 2**58), and an
# int64 still (status_sheet keeps late-at instants in an array of them)
NEVER: Final = (1 << 63) - 1
_MOST_PIECES: Final = 4096
MILLION: Final = 1_000_000
# int(since / 10**6) == since // 10**6 for 0 <= since < EXACT_SINCE (272 years): the quotient is
# below 2**33, where half a float's ulp (2**-21 at most) is less than the 10**-6 by which a
# quotient of integers that is not whole stays below the next whole number, so the true
# division never rounds up to it (``status_sheet`` divides as floors below, as here beyond)
EXACT_SINCE: Final = (1 << 33) * MILLION


_MICROSECOND: Final = timedelta(microseconds=1)
_SINCE: Final[dict[datetime, int]] = {}  # microseconds of the references rows share (by instant)
_GRACE: Final[dict[timedelta, int]] = {}  # microseconds of the graces rows share


def from_microseconds(us: int) -> datetime:
    """The (UTC) instant ``us`` microseconds after the epoch."""
    return _EPOCH + timedelta(microseconds=us)


def microseconds(when: datetime) -> int:
    """``when`` (aware) in whole microseconds since the epoch: exact, unlike a float."""
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# -- the text around the rows, derived from the reply's one formatting ----------------------------
#
# ``respond`` of a probe holding marks shows where json.dumps puts a row at this depth, its keys
# and the separators between them; nothing here restates the format.

_MARK: Final = MARK  # no key of a row is this: its encoded form shows a position
_ENCODED_MARK: Final = json.dumps(_MARK)
(_KEY,) = render.status([], _EPOCH)  # "scheduled_images"


EMPTY: Final = respond({_KEY: []})
HEAD, SEPARATOR, TAIL = cut(respond({_KEY: [_MARK, _MARK]}), *[_ENCODED_MARK] * 2)
# A row of two keys, each key and value a mark: how a row opens and closes at this depth,
# and its separators.
_OPEN, _KEY_SEPARATOR, _ITEM_SEPARATOR, _, _CLOSE = cut(
    respond({_KEY: [{"\x00": "\x01", "\x02": "\x03"}]})[len(HEAD) : -len(TAIL)],
    *map(json.dumps, "\x00\x01\x02\x03"),
)
# Where the two clock values go: after their keys (only a key, never an encoded value, has an
# unescaped quote followed by the key separator).
_AT_LATE: Final = f"{json.dumps(LATE)}{_KEY_SEPARATOR}"
_AT_LATENESS: Final = f"{json.dumps(LATENESS)}{_KEY_SEPARATOR}"
_SPLICE_LATE: Final = _AT_LATE + _ENCODED_MARK
_SPLICE_LATENESS: Final = _AT_LATENESS + _ENCODED_MARK
BOOLS: Final = (json.dumps(False), json.dumps(True))


def _cut(row: dict[str, Any]) -> list[str]:
    """``row`` (its clock values marks) as ``respond`` writes it inside ``{"scheduled_images":
    [...]}``, from its ``{`` to its ``}``, cut where the clock values go: json itself (the
    templates' fallback, for a value that is not a str, int, bool or None)."""
    text = respond({_KEY: [row]})[len(HEAD) : -len(TAIL)]
    return cut(text, _SPLICE_LATE, _SPLICE_LATENESS)


# -- the templates: one per row shape, from render's keys -----------------------------------------


class _Shape:
    """The rows that have these keys (``render.ROW_KEYS`` but ``omitted``), as a skeleton: the
    text before each value (the separator, its key, the key separator), a slot for the value,
    and so on, then the row's end. ``pick``: the values for the slots, from ``render.row_values``
    and a None after them (``_BLANK``: a slot no text keeps).

    The two clock keys' values are spliced at each call. Sorted, the keys put them next to each
    other, so the text between them is the same in every row (``between``): the skeleton ends
    the text before them at ``cut``, a blank slot follows, and the text after them starts. Were
    a value between them (``between`` None), a ``_MARK`` goes where each clock value does, and
    the row's text is cut there."""

    __slots__ = ("between", "cut", "pick", "skeleton")

    def __init__(self, omitted: frozenset[str]) -> None:
        index = {key: i for i, key in enumerate(render.ROW_KEYS)}
        ordered = sorted([*(key for key in render.ROW_KEYS if key not in omitted), *CLOCK])
        late, lateness = ordered.index(LATE), ordered.index(LATENESS)
        adjacent = lateness == late + 1
        slots: list[int] = []
        self.skeleton: list[str] = []
        self.between: str | None = None
        self.cut = 0
        text = ""
        for i, key in enumerate(ordered):
            separator = _OPEN if i == 0 else _ITEM_SEPARATOR
            if adjacent and key == LATENESS:
                self.between = separator + json.dumps(key) + _KEY_SEPARATOR
                self.skeleton += (text, "")
                slots.append(_BLANK)
                self.cut = len(self.skeleton) - 1
                text = ""
                continue
            text += separator + json.dumps(key) + _KEY_SEPARATOR
            if key in CLOCK:
                if not adjacent:
                    text += _MARK
            else:
                self.skeleton += (text, "")
                slots.append(index[key])
                text = ""
        self.skeleton.append(text + _CLOSE)
        self.pick: Callable[[tuple[Any, ...]], tuple[Any, ...]] = itemgetter(*slots)
        if len(slots) < 2:  # itemgetter of one index gives the value, not a tuple of it
            raise ImportError("status_rows: a row shape of fewer than two keys")


_BLANK: Final = len(render.ROW_KEYS)  # where pick finds the None after render's values
CLOCK: Final = frozenset(render.CLOCK_KEYS)
# Where render.row_values gives the values of the keys left out when None; the shapes, by which
# of those are None
_OPTIONAL: Final = tuple(
    i for i, key in enumerate(render.ROW_KEYS) if key in render.OMITTED_IF_NONE
)
_SHAPES: Final = {
    absent: _Shape(frozenset(render.ROW_KEYS[i] for i, off in zip(_OPTIONAL, absent) if off))
    for absent in product((False, True), repeat=len(_OPTIONAL))
}


class _NotScalar(Exception):
    """A value the templates do not write: the row is written by json itself."""


# Encoded strings rows share (times, results; a name never comes here: ``_around`` marks its
# place): let go when full; and None's, always (_HELD)
_HELD: Final[dict[str | None, str]] = {None: json.dumps(None)}
_ENCODED: Final = dict(_HELD)


def _encoded(value: Any) -> str:
    """``value`` as json writes it (a str, int, bool; None is in ``_ENCODED``)."""
    kind = value.__class__
    if kind is str:
        if len(_ENCODED) >= _MOST_PIECES:
            _ENCODED.clear()
            _ENCODED.update(_HELD)
        text: str = encode_basestring_ascii(value)
        _ENCODED[value] = text
        return text
    if kind is bool:
        return BOOLS[value]
    if isinstance(value, int) and not isinstance(value, bool):
        return int.__repr__(value)
    raise _NotScalar(kind)


_IMAGE_KEY: Final = "image"
_NAME: Final = render.ROW_KEYS.index(_IMAGE_KEY)  # where row_values gives the image's name
# The texts around the name of rows alike but for it, by their other values (``encode``); let
# go when full (an entry holds a row's text, about 700 bytes, beside its key: 1 MiB or so)
_ALIKE: Final[dict[tuple[Any, ...], tuple[str, str, str, str]]] = {}
_MOST_ALIKE: Final = 1024


def _same(text: str) -> str:
    return text


def encode(
    due: datetime,
    record: ImageRecord,
    paused_by: LevelSpec | None,
    share: Callable[[str], str] = _same,
) -> Row:
    """One image's row, encoded, its clock values left out. ``share`` may return an equal
    string already held instead of a piece (rows of one slot end alike)."""
    return _encode(render.row_values(due, record, paused_by), *_instants(record), share)


def _encode(values: tuple[Any, ...], since: int, late_at: int, share: Callable[[str], str]) -> Row:
    """The row of ``render.row_values``' ``values`` and the instants ``_instants`` gives.

    Rows alike but for their image's name (a slot's rows share their due, next run, attempt
    slot and start; many end within one second) share their text around the name: written
    once (``_around``), remembered by their other values, and joined with each row's name."""
    # Their classes too: True == 1 == 1.0, written "true", "1", "1.0"
    alike = (*values[:_NAME], *values[_NAME + 1 :], *map(type, values))
    try:
        texts = _ALIKE.get(alike)
    except TypeError:  # a value that is not hashable (written by json itself)
        texts = _around(values, share)
    else:
        if texts is None:
            texts = _around(values, share)
            if len(_ALIKE) >= _MOST_ALIKE:
                _ALIKE.clear()
            _ALIKE[alike] = texts
    pre, post, between, after = texts
    return pre + encode_basestring_ascii(values[_NAME]) + post, between, after, since, late_at


def _instants(record: ImageRecord) -> tuple[int, int]:
    """The instants of ``render.clock_fields``: the reference, and late-at (``record.late_at``:
    reference + grace; None, or beyond year 9999, is never reached: NEVER's effect)."""
    reference = record.reference
    since = _SINCE.get(reference)
    if since is None:
        if len(_SINCE) >= _MOST_PIECES:
            _SINCE.clear()
        since = _SINCE[reference] = microseconds(reference)
    grace = record.grace
    if grace is None:
        return since, NEVER
    late_at = since + (_GRACE.get(grace) or _grace(grace))
    return since, late_at if late_at < NEVER else NEVER


def _grace(grace: timedelta) -> int:
    """``grace`` in whole microseconds, remembered (rows share a few graces)."""
    if len(_GRACE) >= _MOST_PIECES:
        _GRACE.clear()
    us = _GRACE[grace] = grace // _MICROSECOND
    return us


def _around(values: tuple[Any, ...], share: Callable[[str], str]) -> tuple[str, str, str, str]:
    """The text of the row of ``values`` (``render.row_values``'), its clock values left
    out, cut around its image's name: before it, after it up to ``late``'s value, between the
    clock values, after them."""
    values = (*values[:_NAME], _MARK, *values[_NAME + 1 :])  # the name's place marked
    if len(_OPTIONAL) == 1:
        shape = _SHAPES[(values[_OPTIONAL[0]] is None,)]
    else:
        shape = _SHAPES[tuple([values[i] is None for i in _OPTIONAL])]
    get = _ENCODED.get
    try:
        parts = shape.skeleton[:]
        parts[1::2] = [  # ints at once; strings (and None) mostly held already
            get(value) or (str(value) if value.__class__ is int else _encoded(value))
            for value in shape.pick((*values, None))
        ]
        between = shape.between
        if between is None:
            before, between, after = "".join(parts).split(_MARK)  # _MARK: in no key, no value
        else:
            cut = shape.cut
            before, after = "".join(parts[:cut]), "".join(parts[cut + 1 :])
    except (_NotScalar, TypeError):  # TypeError: unhashable (a list, a dict)
        row = render.row_of(values)
        row[LATE] = row[LATENESS] = _MARK
        before, between, after = _cut(row)
        before, between = before + _AT_LATE, between + _AT_LATENESS
    # The name's mark is the first: ``_MARK`` is in no key and no value (as above)
    pre, _, post = before.partition(_ENCODED_MARK)
    return share(pre), share(post), share(between), share(after)


# A row's inputs taken with the lock held, to be rendered without it: the image, its row's
# values (``render.row_values``: text, numbers, None; the record changes once the lock is let
# go) and its two instants (``_instants``); values None: the image is not queued (no row).
Taken = tuple[ImageSpec, Optional[tuple[Any, ...]], int, int]


def take(image: ImageSpec, found: Entry) -> Taken:
    """``image``'s row inputs (``entry``'s answer), copied (lock held)."""
    if found is None:
        return image, None, 0, 0
    due, record, paused_by = found
    since, late_at = _instants(record)
    return image, render.row_values(due, record, paused_by), since, late_at


# A row's inputs copied with the lock held at a fraction of ``take``'s cost: its due, its
# record's fields (one C call) and its pausing level; rendered from a record made of them
# without the lock (``render_copied``). None: the image is not queued (no row).
Copied = tuple[ImageSpec, Optional[tuple[datetime, tuple[Any, ...], Optional[LevelSpec]]]]
_FIELDS: Final = attrgetter(*(field.name for field in fields(ImageRecord)))
_Inputs = TypeVar("_Inputs", Taken, Copied)


def copy_inputs(image: ImageSpec, found: Entry) -> Copied:
    """``image``'s row inputs (``entry``'s answer) as its record's fields (lock held)."""
    if found is None:
        return image, None
    due, record, paused_by = found
    return image, (due, _FIELDS(record), paused_by)


def render_copied(copied: list[Copied], share: Callable[[str], str] = _same) -> Rendered:
    """The rows of ``copied`` (None: no row), rendered without the lock."""
    rendered: Rendered = []
    append = rendered.append
    for image, inputs in copied:
        if inputs is None:
            append((image, None))
        else:
            due, values, paused_by = inputs
            append((image, encode(due, ImageRecord(*values), paused_by, share)))
    return rendered


def render_taken(taken: list[Taken], share: Callable[[str], str] = _same) -> Rendered:
    """The rows of ``taken`` (values None: no row), rendered without the lock."""
    rendered: Rendered = []
    append = rendered.append
    for image, values, since, late_at in taken:
        append((image, None if values is None else _encode(values, since, late_at, share)))
    return rendered


class StatusRows:
    """The encoded rows of the queued images, and the images marked since they were encoded
    (see the theory of operation above). ``mark``, ``start``, ``take`` and ``put`` are called
    with the Handler's lock held; ``share``, ``rows`` and ``join`` by the one ``status`` call
    rendering (the status view's call lock), without it."""

    __slots__ = ("_changed", "_marked", "_pieces", "_rows", "active", "mark")

    def __init__(self) -> None:
        self._rows: dict[ImageSpec, Row] = {}
        # A dict as a set (popitem is O(1), where a set's pop scans a table that emptied)
        self._marked: dict[ImageSpec, None] = {}
        # What the writers call, once active: one insertion, from C (a dict's setdefault)
        self.mark: Callable[[ImageSpec], object] = self._marked.setdefault
        self.active = False
        # The images whose rows were put (set or removed) since ``changed`` was last read
        self._changed: dict[ImageSpec, None] = {}
        # Pieces of rows held once for rows that have them alike (memory: a row is ~700 B)
        self._pieces: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def rows(self) -> Mapping[ImageSpec, Row]:
        return self._rows

    @property
    def pending(self) -> int:
        """Rows not current: marked since they were rendered (or never rendered)."""
        return len(self._marked)

    def start(self, queued: Iterable[ImageSpec]) -> None:
        """A ``status`` call came: keep rows from now on, every queued image's to render."""
        self.active = True
        self._marked.update(dict.fromkeys(queued))

    def stop(self) -> None:
        """Keep no rows (no ``status`` call for long): let them go; nothing is marked."""
        self.active = False
        self._rows.clear()
        self._marked.clear()
        self._changed.clear()
        self._pieces.clear()

    def touch(self, image: ImageSpec) -> None:
        """What ``image``'s row shows changed (or it left the queue); nothing if not active."""
        if self.active:
            self._marked[image] = None

    def touch_all(self, images: Iterable[ImageSpec]) -> None:
        if self.active:
            self._marked.update(dict.fromkeys(images))

    def take(self, limit: int, entry: Callable[[ImageSpec], Entry]) -> list[Taken]:
        """Up to ``limit`` marked rows' inputs, to render without the lock and ``put`` back;
        unmarked now (a change meanwhile marks them again)."""
        return self._unmark(limit, entry, take)

    def take_copies(self, limit: int, entry: Callable[[ImageSpec], Entry]) -> list[Copied]:
        """As ``take``, each row's inputs copied as ``copy_inputs`` does: a third of the cost
        under the lock, more without it (a call's last hold, which takes every row still
        marked)."""
        return self._unmark(limit, entry, copy_inputs)

    def _unmark(
        self,
        limit: int,
        entry: Callable[[ImageSpec], Entry],
        inputs: Callable[[ImageSpec, Entry], _Inputs],
    ) -> list[_Inputs]:
        """Up to ``limit`` marked images unmarked, each one's ``inputs`` from ``entry``."""
        marked = self._marked
        popitem = marked.popitem
        found: list[_Inputs] = []
        append = found.append
        for _ in range(min(limit, len(marked))):
            image = popitem()[0]
            append(inputs(image, entry(image)))
        return found

    def put(self, rendered: Rendered) -> None:
        """Rows rendered from the inputs ``take`` gave: each replaces its image's row unless
        the image was marked again since (its newer inputs are taken later)."""
        rows, marked, changed = self._rows, self._marked, self._changed
        for image, row in rendered:
            if image in marked:
                continue  # changed again since it was taken: this row is stale already
            if row is None:
                rows.pop(image, None)
            else:
                rows[image] = row
            changed[image] = None

    def changed(self) -> Collection[ImageSpec]:
        """The images whose rows were set or removed since the last time this was asked."""
        changed, self._changed = self._changed, {}
        return changed

    def share(self, piece: str) -> str:
        """An equal piece held already, else ``piece``, held from now on (a few thousand at
        most: beyond, they are let go, and sharing starts again)."""
        pieces = self._pieces
        held = pieces.get(piece)
        if held is None:
            if len(pieces) >= _MOST_PIECES:
                pieces.clear()
            held = pieces[piece] = piece
        return held


def ascending(dues: list[int]) -> bool:
    """Each due at or after the one before (at C speed)."""
    return all(map(le, dues, islice(dues, 1, None)))


def in_queue_order(pushed: Pushed) -> Iterable[ImageSpec]:
    """The images of ``pushed`` in queue order: sorted stably by due (push order is due order
    as a rule: one interval, or a slot's images queued at their next run, behind the rest)."""
    dues, images = pushed
    if ascending(dues):
        return images
    return map(images.__getitem__, sorted(range(len(dues)), key=dues.__getitem__))


def join(
    pushed: Pushed,
    rows: Mapping[ImageSpec, Row],
    now: datetime,
    level: LevelSpec,
    visible: Callable[[ImageSpec], bool] | None,
) -> str:
    """The ``status`` reply: the rows of the images of ``pushed`` (the queue's, in push order:
    put in queue order here) under ``level`` that ``visible`` lets the caller see (None:
    every one), with their clock values at ``now``. Byte for byte ``respond(render.status(...))``
    of the same state at ``now``.

    The clock values as ``render.clock_fields`` computes them: ``late`` is now >= late-at;
    ``lateness_seconds`` is ``int(timedelta.total_seconds())`` of max(now - reference, 0), and
    ``total_seconds`` is the microseconds over 10**6, a true division of integers, as here.
    """
    now_us = microseconds(now)
    images = in_queue_order(pushed)
    if level != LevelSpec.global_level():
        images = filter(level.matches, images)
    bools, separator = BOOLS, SEPARATOR
    # The pieces, joined once at the end: no string per row (a row is ~700 bytes)
    parts: list[str] = []
    extend = parts.extend
    if visible is not None:
        images = filter(visible, images)
    for row in map(rows.get, images):
        if row is None:  # not rendered: never, with the invariant kept
            continue
        before, between, after, reference, late_at = row
        since = now_us - reference
        lateness = int(since / MILLION) if since > 0 else 0
        extend((separator, before, bools[now_us >= late_at], between, str(lateness), after))
    if not parts:
        return EMPTY
    parts[0] = HEAD  # the first row's separator
    parts.append(TAIL)
    return "".join(parts)


def lateness_text(now_us: int, reference: int) -> str:
    """A row's ``lateness_seconds`` at ``now_us``, as ``join`` writes it (any instants)."""
    since = now_us - reference
    return str(int(since / MILLION) if since > 0 else 0)
