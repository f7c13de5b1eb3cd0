"""Status rows encoded at a status call, again only once changed (status_rows.py): the reply is
byte for byte what ``respond(render.status(...))`` writes for the same state and time, whatever
happened before.

Two levels: the templates and join alone, over any record (``encode``, ``join``); and the
Handler over the fake cluster, where every writer must mark what it changed, checked after each
step against the rows rendered afresh from the book and the queue.
"""

from __future__ import annotations

import contextlib
import enum
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from rbd_snapsched import render, status_rows
from rbd_snapsched.access import every_image
from rbd_snapsched.book import ImageRecord
from rbd_snapsched.commands import JsonText, respond
from rbd_snapsched.errors import NotFound
from rbd_snapsched.levels import ImageSpec, Level, LevelSpec
from rbd_snapsched.requests import Outcome, OutcomeKind, State
from rbd_snapsched.status_rows import StatusRows
from rbd_snapsched.status_view import KEPT
from rbd_snapsched.timetable import Timetable
from tests.unit.harness import START, Setup

UTC = timezone.utc
EVERY: Callable[[ImageSpec], bool] = lambda image: True  # noqa: E731
GLOBAL = LevelSpec.global_level()


def reference(entries: list[render.StatusEntry], now: datetime) -> str:
    """What the reply was before rows were cached: every row rendered and encoded now."""
    return respond(render.status(entries, now))


# -- the encoding alone --------------------------------------------------------------------------

names = st.text(
    st.characters(codec="utf-8"), min_size=1, max_size=12
)  # quotes, backslashes, control characters, non-ASCII: all escaped as json.dumps does
instants = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
outcomes = st.builds(
    Outcome,
    st.sampled_from(OutcomeKind),
    st.sampled_from(State),
    st.integers(-200, 0),
    st.none() | st.integers(0, 99),
    names,
)
graces = st.none() | st.sampled_from(
    [timedelta(minutes=2), timedelta(hours=5), timedelta(days=3_000_000)]  # the last overflows
)


@st.composite
def records(draw: st.DrawFn) -> ImageRecord:
    started = draw(st.none() | instants)
    return ImageRecord(
        name=draw(names),
        known_since=draw(instants),
        grace=draw(graces),
        next_run=draw(st.none() | instants),
        last_success=draw(st.none() | instants),
        slot=draw(st.none() | instants) if started else None,
        started=started,
        finished=draw(st.none() | instants) if started else None,
        outcome=draw(st.none() | outcomes) if started else None,
        missed=draw(st.integers(0, 10**6)),
        failures=draw(st.integers(0, 10**6)),
        lag_skips=draw(st.integers(0, 10**6)),
    )


paused_levels = st.none() | st.builds(
    LevelSpec, st.just(1), st.none() | st.just(""), st.none(), names
)
images = st.builds(ImageSpec, st.integers(1, 3), st.sampled_from(["", "ns"]), names)
levels = st.sampled_from(
    [
        GLOBAL,
        LevelSpec(1, None, None, "p1/"),
        LevelSpec(2, "", None, "p2//"),
        LevelSpec(1, "ns", None, "p1/ns/"),
    ]
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    st.lists(
        st.tuples(images, instants, records(), paused_levels), max_size=6, unique_by=lambda e: e[0]
    ),
    instants,
    levels,
    st.sampled_from([None, 1, "ns"]),
)
def test_joined_rows_are_what_json_dumps_writes(
    rows: list[tuple[ImageSpec, datetime, ImageRecord, LevelSpec | None]],
    now: datetime,
    level: LevelSpec,
    only: int | str | None,
) -> None:
    """Any records, due times, pauses, filters and time of the call: the same text."""

    def visible(image: ImageSpec) -> bool:
        return only is None or only in (image.pool_id, image.namespace)

    encoded = {
        image: status_rows.encode(due, record, paused) for image, due, record, paused in rows
    }
    pushed = ([status_rows.microseconds(due) for _, due, _, _ in rows], [row[0] for row in rows])
    queued = sorted(rows, key=lambda row: row[1])  # queue order: by due, stable
    expected = [
        (due, record, paused)
        for image, due, record, paused in queued
        if level.matches(image) and visible(image)
    ]
    assert status_rows.join(pushed, encoded, now, level, visible) == reference(expected, now)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(records(), st.lists(st.integers(-(10**15), 10**15), min_size=1, max_size=5))
def test_only_the_clock_values_move_with_now(record: ImageRecord, offsets: list[int]) -> None:
    """One row rendered once, read at many times (before and after its reference, around its
    late-at, far off): lateness and late as render computes them at each."""
    due = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    a = ImageSpec(1, "", "a")
    row = status_rows.encode(due, record, None)
    base = record.reference
    for offset in offsets:
        try:
            now = base + timedelta(microseconds=offset)
        except OverflowError:
            continue
        assert status_rows.join(([0], [a]), {a: row}, now, GLOBAL, EVERY) == reference(
            [(due, record, None)], now
        )


@settings(max_examples=200, derandomize=True, deadline=None)
@given(records(), st.lists(names, min_size=2, max_size=4, unique=True), paused_levels, instants)
def test_rows_alike_but_for_their_names_are_each_what_json_writes(
    record: ImageRecord, other_names: list[str], paused: LevelSpec | None, now: datetime
) -> None:
    """A slot's rows share their text around the image's name (``encode`` remembers it from
    the first row): each row is still its own image's, as json writes it."""
    due = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    a = ImageSpec(1, "", "a")
    for name in [record.name, *other_names, record.name]:
        alike = replace(record, name=name)
        row = status_rows.encode(due, alike, paused)
        text = status_rows.join(([0], [a]), {a: row}, now, GLOBAL, EVERY)
        assert text == reference([(due, alike, paused)], now)


def test_the_texts_remembered_stay_bounded() -> None:
    """Rows all unlike (each its own attempt end): ``encode`` remembers at most
    ``_MOST_ALIKE`` of their texts, then starts again; the rows are still right."""
    due = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    a = ImageSpec(1, "", "a")
    status_rows._ALIKE.clear()
    most = status_rows._MOST_ALIKE
    for i in range(most + 10):
        end = due + timedelta(seconds=i)
        record = ImageRecord("p/a", due, started=due, finished=end, last_success=end)
        row = status_rows.encode(due, record, None)
        assert 1 <= len(status_rows._ALIKE) <= most
        if i % 97 == 0 or i >= most:
            text = status_rows.join(([0], [a]), {a: row}, end, GLOBAL, EVERY)
            assert text == reference([(due, record, None)], end)
    assert len(status_rows._ALIKE) == 10


def test_nothing_to_show_is_upstreams_empty_list() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert status_rows.join(([], []), {}, now, GLOBAL, EVERY) == reference([], now)
    assert reference([], now) == '{\n    "scheduled_images": []\n}'
    a = ImageSpec(1, "", "a")
    row = status_rows.encode(now, ImageRecord("p/a", now), None)
    hidden = status_rows.join(([0], [a]), {a: row}, now, GLOBAL, lambda image: False)
    assert hidden == reference([], now)


class _Word(str, enum.Enum):
    WORD = 'wo"rd'


@pytest.mark.parametrize(
    "value",
    [
        ["open", "close"],  # not scalars: json itself writes the row (indented)
        {"rc": -5},
        1.5,
        float("nan"),
        True,  # scalars the values do not hold today: as json writes them
        False,
        Level.POOL,  # an int enum
        _Word.WORD,  # a str enum
        -(10**30),
        '\x00\u2028"\\é',
    ],
)
def test_any_value_render_gives_is_written_as_json_writes_it(
    value: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``render.row_values`` holds str, int and None; were it to hold another value, the row is
    still what json writes (the templates write str, int, bool and None; json the rest)."""
    original = render.row_values
    where = render.ROW_KEYS.index("last_error")

    def row_values(*args: Any) -> tuple[Any, ...]:
        values = original(*args)
        return (*values[:where], value, *values[where + 1 :])

    monkeypatch.setattr(render, "row_values", row_values)
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    a = ImageSpec(1, "", "a")
    for paused in (None, LevelSpec(1, None, None, "p/")):
        row = status_rows.encode(now, ImageRecord("p/a", now), paused)
        text = status_rows.join(([0], [a]), {a: row}, now, GLOBAL, EVERY)
        assert text == reference([(now, ImageRecord("p/a", now), paused)], now)


def test_the_templates_are_renders_keys() -> None:
    """One shape per set of keys render may leave out; each writes every other key once, and
    has a slot for each value (and the blank where the clock values go)."""
    assert len(status_rows._SHAPES) == 2 ** len(render.OMITTED_IF_NONE)
    for absent, shape in status_rows._SHAPES.items():
        optional = [key for key in render.ROW_KEYS if key in render.OMITTED_IF_NONE]
        omitted = {key for key, off in zip(optional, absent) if off}
        text = "".join(shape.skeleton) + (shape.between or "")
        for key in (*render.ROW_KEYS, *render.CLOCK_KEYS):
            written = text.count(json.dumps(key) + status_rows._KEY_SEPARATOR)
            assert written == (key not in omitted), key
        slots = shape.pick(tuple(range(len(render.ROW_KEYS) + 1)))
        assert len(shape.skeleton) == 2 * len(slots) + 1


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(st.none() | st.tuples(instants, records(), paused_levels), max_size=4), names)
def test_a_row_copied_as_fields_renders_as_one_taken(
    entries: list[render.StatusEntry | None], name: str
) -> None:
    """A call's last hold copies the rows still marked as their records' fields (cheaper under
    the lock): each renders the row its inputs taken as values would, and a record changed
    after the copy does not change it."""
    images = [ImageSpec(1, "", f"{name}{i}") for i in range(len(entries))]
    copied = [status_rows.copy_inputs(i, e) for i, e in zip(images, entries)]
    taken = [status_rows.take(i, e) for i, e in zip(images, entries)]
    for entry in entries:  # what the writers may do once the lock is let go
        if entry is not None:
            entry[1].name, entry[1].failures = "p/changed", entry[1].failures + 1
    assert status_rows.render_copied(copied) == status_rows.render_taken(taken)


def test_nothing_is_marked_or_kept_until_a_call_starts_the_rows() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    a, b = (ImageSpec(1, "", name) for name in "ab")
    queue = {a: now, b: now}
    rows = StatusRows()

    def entry(image: ImageSpec) -> render.StatusEntry | None:
        due = queue.get(image)
        return None if due is None else (due, ImageRecord(f"p/{image.image_id}", now), None)

    rows.touch(a)
    rows.touch_all([a, b])
    assert not rows.active and rows.pending == 0 and len(rows) == 0
    rows.start(queue)
    assert rows.pending == 2
    rows.put(status_rows.render_taken(rows.take(1, entry)))  # a batch at a time
    assert rows.pending == 1 and len(rows) == 1
    rows.put(status_rows.render_taken(rows.take(8, entry)))
    assert rows.pending == 0 and len(rows) == 2
    del queue[b]
    rows.mark(b)  # what the writers call: it left the queue
    rows.put(status_rows.render_taken(rows.take(8, entry)))
    assert list(rows.rows) == [a]
    rows.stop()
    assert not rows.active and rows.pending == 0 and len(rows) == 0


def test_a_row_marked_while_rendered_is_not_put_back_stale() -> None:
    """Rows are rendered without the lock: one marked meanwhile is not put back (it is marked:
    the next take renders it from its newer inputs)."""
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    a = ImageSpec(1, "", "a")
    names = {a: "p/old"}
    rows = StatusRows()

    def entry(image: ImageSpec) -> render.StatusEntry:
        return now, ImageRecord(names[image], now), None

    def shown() -> list[object]:
        text = status_rows.join(([0], [a]), rows.rows, now, GLOBAL, EVERY)
        return [r["image"] for r in json.loads(text)["scheduled_images"]]

    rows.start([a])
    rows.put(status_rows.render_taken(rows.take(8, entry)))
    assert shown() == ["p/old"]
    taken = rows.take(8, entry)
    names[a] = "p/new"
    rows.mark(a)  # while the row is rendered
    rows.put(status_rows.render_taken(taken))  # stale: not put
    assert shown() == ["p/old"] and rows.pending == 1
    rows.put(status_rows.render_taken(rows.take(8, entry)))
    assert shown() == ["p/new"] and rows.pending == 0


# -- through the Handler: every writer tells the rows --------------------------------------------


def check(s: Setup) -> None:
    """At every level and filter, the cached reply equals the rows rendered afresh now. Every
    image visible: the kept sheet (``status_sheet``), the global level first and last, so the
    next step's first call takes the sheet as this one left it; else ``join``."""
    handler = s.handler
    now = s.clock.now()
    for name in ("", "rbd/", "rbd/ns/", "rbd//", ""):
        level = handler.resolve(name)
        for visible in (lambda image: image.namespace == "ns", every_image):
            text = handler.status_text(level, visible)
            with handler._lock:
                entries = [(d, replace(r), p) for d, r, p in handler._entries(level, visible)]
            assert text == reference(entries, now), name


def rows(s: Setup, level: LevelSpec = GLOBAL) -> list[dict[str, object]]:
    parsed: list[dict[str, object]] = json.loads(s.handler.status_text(level, every_image))[
        "scheduled_images"
    ]
    return parsed


Images = tuple[Setup, ImageSpec, ImageSpec]


@pytest.fixture
def two() -> Images:
    """rbd/a and rbd/ns/b every minute; requests wait in the driver until released."""
    s = Setup(hold=True)
    a = s.cluster.add_image(s.pool, "a")
    b = s.cluster.add_image(s.pool, "b", "ns")
    s.add("rbd/", "1m")
    s.handler.tick()
    return s, a, b


def test_each_step_of_an_attempt_shows_at_once(two: Images) -> None:
    s, a, b = two
    check(s)
    slot = START.replace(second=0) + timedelta(minutes=1)
    s.run_until(slot)  # dispatched: running, held by the driver
    # the dispatch marked its rows: the next call renders them
    assert s.handler._status.rows.pending == 2
    check(s)
    assert [r["last_result"] for r in rows(s)] == ["running", "running"]
    s.driver.release(1)  # one ends: created
    assert s.handler._status.rows.pending == 1  # the end marked its row
    check(s)
    s.cluster.image(b).create_rc = -5
    s.driver.release()  # the other fails
    check(s)
    s.run_until(slot + timedelta(minutes=1))  # the next slot: both running again
    check(s)
    s.cluster.image(a).primary = False  # demoted while its request waits
    s.driver.release()  # skipped: not primary; failed again
    check(s)
    assert [(r["image"], r["last_result"]) for r in rows(s)] == [
        ("rbd/a", "skipped: not_primary"),
        ("rbd/ns/b", "failed"),
    ]


class Racing:
    """The scheduler's lock, as a call's holds meet it while a slot drains: before each hold
    a writer changes one image's record and marks its row (the next in turn)."""

    def __init__(self, s: Setup, images: list[ImageSpec]) -> None:
        self.lock, self.s, self.images, self.turn = s.handler._lock, s, images, 0

    def __enter__(self) -> None:
        image = self.images[self.turn % len(self.images)]
        self.turn += 1
        with self.lock:
            record = self.s.handler._book.get(image)
            assert record is not None
            record.failures += 1
            self.s.handler._status.rows.mark(image)
        self.lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def test_a_call_racing_the_writers_takes_the_rest_as_copied_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Writers marking a row before each of a call's holds: it stops chasing after its rounds
    and takes every row still marked in its last hold (a batch, the rest copied as their
    records' fields). The reply is the rows as they were in that hold (the one that copies
    the queue's order): rendered afresh from the records then."""
    s = Setup(hold=True)
    images = [s.cluster.add_image(s.pool, f"i{n}") for n in range(12)]
    s.add("rbd/", "1m")
    s.handler.tick()
    check(s)  # every row rendered
    handler, view = s.handler, s.handler._status
    view._batch = 1
    view._lock = Racing(s, images)  # type: ignore[assignment]
    then: list[render.StatusEntries] = []  # the rows in the last hold, each call
    pushed = Timetable.pushed

    def last_hold(timetable: Timetable) -> status_rows.Pushed:
        then.append([(d, replace(r), p) for d, r, p in handler._entries(GLOBAL, every_image)])
        return pushed(timetable)

    monkeypatch.setattr(Timetable, "pushed", last_hold)
    copies: list[int] = []
    render_copied = status_rows.render_copied

    def counted(copied: list[status_rows.Copied], share: Any) -> status_rows.Rendered:
        copies.append(len(copied))
        return render_copied(copied, share)

    monkeypatch.setattr(status_rows, "render_copied", counted)
    for _ in range(3):
        for image in images[:6]:  # six rows to render: more than a batch at every round
            view.rows.mark(image)
        text = handler.status_text(GLOBAL, every_image)
        assert text == reference(then[-1], s.clock.now())
    assert len(copies) == 3 and min(copies) > 0, copies  # each last hold copied fields


def test_no_status_call_keeps_nothing_and_rows_unread_for_long_are_let_go() -> None:
    """Until a status call, the writers mark nothing and no row is kept: the scheduler pays
    nothing for them. Unread for ``KEPT``, they are let go again."""
    s = Setup()
    for name in "abc":
        s.cluster.add_image(s.pool, name)
    s.add("rbd/", "1m")
    s.run_until(START + timedelta(minutes=3))
    handler = s.handler
    kept = handler._status.rows
    assert not kept.active and len(kept) == 0 and kept.pending == 0
    assert handler._book.changed is None and handler._timetable.changed is None
    check(s)
    assert kept.active and len(kept) == 3 and kept.pending == 0
    s.run_until(s.clock.now() + timedelta(minutes=2))
    assert kept.pending == 3  # marked, not rendered
    check(s)
    s.run_until(s.clock.now() + KEPT + timedelta(minutes=1))
    assert not kept.active and len(kept) == 0
    assert handler._book.changed is None and handler._timetable.changed is None
    check(s)  # started again: every row rendered afresh
    assert len(kept) == 3


def test_lateness_moves_with_the_clock_alone(two: Images) -> None:
    s, _, _ = two
    before = rows(s)
    s.clock.advance(timedelta(minutes=5, seconds=7))  # no pass of the thread: no record change
    after = rows(s)
    check(s)
    assert [r["lateness_seconds"] for r in after] == [
        int(str(r["lateness_seconds"])) + 307 for r in before
    ]
    assert [r["late"] for r in before] == [False, False]
    assert [r["late"] for r in after] == [True, True]
    same = [{**r, "late": None, "lateness_seconds": None} for r in before]
    assert [{**r, "late": None, "lateness_seconds": None} for r in after] == same


def test_pause_and_resume_show_at_once(two: Images) -> None:
    s, _, _ = two
    s.handler.pause(s.handler.resolve("rbd/ns/"))
    check(s)
    assert [r.get("paused_by") for r in rows(s)] == [None, "rbd/ns/"]
    s.handler.pause(s.handler.resolve("rbd/"))
    check(s)
    s.handler.resume(s.handler.resolve("rbd/ns/"))
    check(s)
    assert [r.get("paused_by") for r in rows(s)] == ["rbd/", "rbd/"]
    s.handler.resume(s.handler.resolve("rbd/"))
    check(s)
    assert [r.get("paused_by") for r in rows(s)] == [None, None]


def test_a_removed_image_leaves_and_a_renamed_one_shows_its_new_name(two: Images) -> None:
    s, a, b = two
    s.cluster.remove_image(b)
    s.pool.namespaces[""].images[a.image_id] = "a2"
    s.handler.refresh()
    check(s)
    assert [r["image"] for r in rows(s)] == ["rbd/a2"]


def test_levels_visibility_and_an_empty_answer(two: Images) -> None:
    s, _, _ = two
    assert [r["image"] for r in rows(s, s.handler.resolve("rbd/ns/"))] == ["rbd/ns/b"]
    assert [r["image"] for r in rows(s, s.handler.resolve("rbd/a"))] == ["rbd/a"]
    empty = respond({"scheduled_images": []})
    assert s.handler.status_text(GLOBAL, lambda image: False) == empty
    s.remove("rbd/")
    s.handler.tick()
    assert s.handler.status_text(GLOBAL, EVERY) == empty
    check(s)


def test_an_image_schedule_moves_the_images_row_to_its_slots(two: Images) -> None:
    s, _, _ = two
    s.add("rbd/a", "1d")
    check(s)
    assert [(r["image"], r["schedule_time"]) for r in rows(s)] == [
        ("rbd/ns/b", "2025-12-10 17:56:00"),
        ("rbd/a", "2025-12-11 00:00:00"),
    ]


def test_a_last_success_read_from_the_cluster_shows_at_once() -> None:
    """Right after a restart the newest mirror snapshot is read (seeded) after the image is
    queued and its row rendered: the row is rendered again."""
    s = Setup()
    a = s.cluster.add_image(s.pool, "a")
    s.cluster.image(a).newest_mirror_snapshot = START - timedelta(minutes=20)
    s.add("rbd/", "1h")
    s.handler.tick()
    assert s.cluster.seeded == [a]
    check(s)
    assert [r["last_success"] for r in rows(s)] == ["2025-12-10T17:35:21Z"]


def test_the_module_replies_with_the_text_as_it_is() -> None:
    text = '{\n    "scheduled_images": []\n}'
    assert respond(JsonText(text)) == text


class HandlerRows(RuleBasedStateMachine):
    """Random operator commands, cluster changes, requests and time; after each step the
    cached reply equals the one rendered afresh (``check``)."""

    def __init__(self) -> None:
        super().__init__()
        self.s = Setup(hold=True, max_concurrent=2)
        self.images: list[ImageSpec] = []

    @initialize(batch=st.sampled_from([1, 2, 64]))
    def start(self, batch: int) -> None:
        # rows a call renders per hold: 1 or 2 of these few images, a batch put back at the
        # next hold (which takes the next); 64, all in the last one
        self.s.handler._status._batch = batch
        for name, namespace in (("a", ""), ("b", "ns"), ("c", "")):
            self.images.append(self.s.cluster.add_image(self.s.pool, name, namespace))
        self.s.add("rbd/", "1m")
        self.s.handler.tick()

    @rule(minutes=st.integers(0, 3), seconds=st.integers(0, 59))
    def run(self, minutes: int, seconds: int) -> None:
        self.s.run_until(self.s.clock.now() + timedelta(minutes=minutes, seconds=seconds))

    @rule(seconds=st.integers(1, 400))
    def time_passes(self, seconds: int) -> None:
        self.s.clock.advance(timedelta(seconds=seconds))

    @rule(count=st.integers(1, 3))
    def requests_end(self, count: int) -> None:
        self.s.driver.release(count)

    @precondition(lambda self: len(self.images) > 0)
    @rule(data=st.data(), rc=st.sampled_from([0, -5, -2]))
    def image_fails(self, data: st.DataObject, rc: int) -> None:
        image = data.draw(st.sampled_from(self.images))
        self.s.cluster.image(image).create_rc = rc

    @rule(level=st.sampled_from(["rbd/", "rbd/ns/", "rbd//", ""]), paused=st.booleans())
    def pause(self, level: str, paused: bool) -> None:
        spec = self.s.handler.resolve(level)
        with contextlib.suppress(NotFound):  # resuming what is not paused
            (self.s.handler.pause if paused else self.s.handler.resume)(spec)

    @rule(
        level=st.sampled_from(["rbd/", "rbd/ns/", "rbd//"]),
        interval=st.sampled_from(["1m", "2m", "1h"]),
    )
    def add(self, level: str, interval: str) -> None:
        self.s.add(level, interval)

    @rule(level=st.sampled_from(["rbd/", "rbd/ns/", "rbd//"]))
    def remove(self, level: str) -> None:
        with contextlib.suppress(NotFound):  # nothing scheduled there
            self.s.remove(level)

    @precondition(lambda self: len(self.images) > 0)
    @rule(data=st.data())
    def image_goes(self, data: st.DataObject) -> None:
        image = self.images.pop(data.draw(st.integers(0, len(self.images) - 1)))
        self.s.cluster.remove_image(image)
        self.s.handler.refresh()

    @rule(
        name=st.sampled_from(["d", "e"]),
        namespace=st.sampled_from(["", "ns"]),
        age=st.none() | st.integers(1, 600),
    )
    def image_comes(self, name: str, namespace: str, age: int | None) -> None:
        image = self.s.cluster.add_image(self.s.pool, name, namespace)
        if age is not None:  # its newest mirror snapshot, read once it is found (seeded)
            when = self.s.clock.now() - timedelta(minutes=age)
            self.s.cluster.image(image).newest_mirror_snapshot = when
        self.images.append(image)

    @rule(factor=st.sampled_from([1.5, 2.0, 10.0]))
    def late_factor(self, factor: float) -> None:
        self.s.handler.set_late_factor(factor)

    @rule(stagger=st.booleans())
    def stagger(self, stagger: bool) -> None:
        self.s.handler.set_stagger(stagger)

    @rule(level=st.sampled_from(["rbd/", "rbd/ns/"]))
    def snapshot_now(self, level: str) -> None:
        self.s.handler.snapshot_now(self.s.handler.resolve(level))

    @invariant()
    def rows_are_fresh(self) -> None:
        check(self.s)


HandlerRows.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None, derandomize=True
)
TestHandlerRows = HandlerRows.TestCase
