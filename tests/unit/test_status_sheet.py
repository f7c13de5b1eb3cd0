"""The kept sheet (status_sheet.py) writes what ``status_rows.join`` writes, whatever happened
between two calls: images queued, re-queued and gone, rows rendered, changed and removed,
levels asked in turn, instants on either side of each row's reference and late-at, and
references so old that lateness is divided as upstream does rather than floored."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from rbd_snapsched import status_rows, status_sheet
from rbd_snapsched.access import every_image
from rbd_snapsched.book import ImageRecord
from rbd_snapsched.levels import ImageSpec, LevelSpec
from rbd_snapsched.status_rows import Row
from rbd_snapsched.status_sheet import Sheet

UTC = timezone.utc
BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
IMAGES = [
    ImageSpec(pool, namespace, name) for pool in (1, 2) for namespace in ("", "ns") for name in "ab"
]
LEVELS = [
    LevelSpec.global_level(),
    LevelSpec(1, None, None, "p1/"),
    LevelSpec(1, "ns", None, "p1/ns/"),
    LevelSpec(2, "", None, "p2//"),
]
DUES = [BASE + timedelta(minutes=m) for m in (0, 1, 5)]
REFERENCES = [
    BASE - timedelta(seconds=30),
    BASE + timedelta(seconds=7, microseconds=250_001),
    datetime(1700, 1, 1, tzinfo=UTC),  # beyond the floor's exact range: divided as upstream
    # 6 * 10**16 - 1 us before BASE: the true division rounds up to a whole number of seconds
    # there (upstream's int(total_seconds()) says 60000000000, a floor 59999999999)
    BASE - timedelta(microseconds=6 * 10**16 - 1),
    datetime(2026, 3, 1, 11, 59, 59, 999_999, tzinfo=UTC),
]
# The last two: never late; the last beyond an int64 of microseconds (held as never)
GRACES = [None, timedelta(seconds=40), timedelta(days=3_000_000), timedelta(days=999_999_999)]


def pushed_of(entries: Iterable[tuple[int, ImageSpec]]) -> status_rows.Pushed:
    """What the queue's ``pushed`` gives for these (due, image) entries in push order."""
    listed = list(entries)
    return [due for due, _ in listed], [image for _, image in listed]


def record(name: str, reference: int, grace: int, failures: int) -> ImageRecord:
    return ImageRecord(
        name=name,
        known_since=REFERENCES[reference],
        grace=GRACES[grace],
        failures=failures,
    )


class SheetAgainstJoin(RuleBasedStateMachine):
    """With the sheet's own choice between putting changed rows in place and ``join``."""

    beyond: int | None = None  # the sheet's _JOIN_BEYOND for this machine (None: its own)
    home = LEVELS[0]  # the level every step ends with a call at

    def __init__(self) -> None:
        super().__init__()
        self.kept = status_sheet._JOIN_BEYOND
        if self.beyond is not None:
            status_sheet._JOIN_BEYOND = self.beyond
        self.index: dict[ImageSpec, tuple[int, ImageSpec]] = {}  # as the queue keeps it
        self.rows: dict[ImageSpec, Row] = {}
        self.changed: dict[ImageSpec, None] = {}
        self.sheet = Sheet()

    @rule(image=st.sampled_from(IMAGES), due=st.sampled_from(DUES))
    def push(self, image: ImageSpec, due: datetime) -> None:
        """Queued, or re-queued: a new entry, at the end of the push order."""
        self.index.pop(image, None)
        self.index[image] = (status_rows.microseconds(due), image)

    @rule(pushes=st.lists(st.tuples(st.sampled_from(IMAGES), st.sampled_from(DUES)), max_size=4))
    def push_many(self, pushes: list[tuple[ImageSpec, datetime]]) -> None:
        """Several queued between two calls, in any order of their dues."""
        for image, due in pushes:
            self.push(image, due)

    @rule(image=st.sampled_from(IMAGES))
    def leave(self, image: ImageSpec) -> None:
        self.index.pop(image, None)

    @rule(popped=st.integers(1, len(IMAGES)), later=st.sampled_from([0, 1, 5]))
    def drain(self, popped: int, later: int) -> None:
        """What a slot draining does (the sheet follows it): the first images in queue order
        popped, each queued again ``later`` minutes after the last due (0: at it)."""
        entries = sorted(self.index.values(), key=lambda entry: entry[0])
        if not entries:
            return
        due = entries[-1][0] + later * 60_000_000
        for _, image in entries[:popped]:
            del self.index[image]
        for _, image in entries[:popped]:
            self.index[image] = (due, image)

    @rule(
        image=st.sampled_from(IMAGES),
        reference=st.integers(0, len(REFERENCES) - 1),
        grace=st.integers(0, len(GRACES) - 1),
        failures=st.integers(0, 12),
        paused=st.booleans(),
    )
    def render(
        self, image: ImageSpec, reference: int, grace: int, failures: int, paused: bool
    ) -> None:
        due = BASE + timedelta(minutes=failures)
        pausing = LEVELS[1] if paused else None
        self.rows[image] = status_rows.encode(
            due, record(f"p/{image.image_id}", reference, grace, failures), pausing
        )
        self.changed[image] = None

    @rule(image=st.sampled_from(IMAGES))
    def unrender(self, image: ImageSpec) -> None:
        if self.rows.pop(image, None) is not None:
            self.changed[image] = None

    @rule(level=st.sampled_from(LEVELS), seconds=st.integers(-100, 100), us=st.integers(0, 999_999))
    def call(self, level: LevelSpec, seconds: int, us: int) -> None:
        now = BASE + timedelta(seconds=seconds, microseconds=us)
        changed, self.changed = self.changed, {}
        text = self.sheet.text(pushed_of(self.index.values()), self.rows, changed, now, level)
        expected = status_rows.join(
            pushed_of(self.index.values()), self.rows, now, level, every_image
        )
        assert text == expected

    @rule()
    def clear(self) -> None:
        self.sheet.clear()

    @rule()
    def wait(self) -> None:
        """Nothing between two calls (the sheet is built at the second in a row)."""

    def teardown(self) -> None:
        status_sheet._JOIN_BEYOND = self.kept

    @invariant()
    def at_base(self) -> None:
        """Every step ends with a call at the home level (the next call may take the sheet
        as it stands)."""
        self.call(self.home, 0, 0)


SheetAgainstJoin.TestCase.settings = settings(
    max_examples=200, stateful_step_count=30, deadline=None, derandomize=True
)
TestSheetAgainstJoin = SheetAgainstJoin.TestCase


class SheetPuttingInPlace(SheetAgainstJoin):
    """Every change put in place while the order holds, however many (8 images: with the
    sheet's own choice, ``join`` writes almost every call)."""

    beyond = 0


SheetPuttingInPlace.TestCase.settings = SheetAgainstJoin.TestCase.settings
TestSheetPuttingInPlace = SheetPuttingInPlace.TestCase


class SheetAtAPool(SheetPuttingInPlace):
    """Calls at a pool's level in a row (the sheet follows only the global level's drain)."""

    home = LEVELS[1]


SheetAtAPool.TestCase.settings = SheetAgainstJoin.TestCase.settings
TestSheetAtAPool = SheetAtAPool.TestCase


@settings(max_examples=500, derandomize=True, deadline=None)
@given(st.integers(0, 2**33 - 1), st.integers(0, 10**6 - 1))
def test_below_the_exact_range_a_floor_is_upstreams_division(seconds: int, below: int) -> None:
    """Any number of microseconds under ``EXACT_SINCE``, just under a whole second most of all:
    ``int(us / 10**6)`` (upstream, through ``total_seconds``) is ``us // 10**6``."""
    since = max(0, min(seconds * 10**6 - below, status_rows.EXACT_SINCE - 1))
    assert int(timedelta(microseconds=since).total_seconds()) == since // status_rows.MILLION


def test_the_sheet_is_kept_once_the_order_holds_follows_a_drain_and_is_dropped_when_it_moves() -> (
    None
):
    """The text is join's either way; what the sheet saves depends on its being built: at the
    second call in a row with the same order and few changes, kept while the queue moves as a
    slot draining moves it (images popped from its front, queued again behind the rest),
    dropped at any other move."""
    sheet = Sheet()
    rows = {
        image: status_rows.encode(BASE, record(f"p/{image.image_id}", 0, 1, 0), None)
        for image in IMAGES
    }
    pushed = [(status_rows.microseconds(BASE), image) for image in IMAGES]
    built = []
    for _ in range(4):
        sheet.text(pushed_of(pushed), rows, {}, BASE, LEVELS[0])
        built.append(sheet.built)
    assert built == [False, False, True, True]
    drained = [*pushed[1:], (pushed[0][0] + 60_000_000, pushed[0][1])]  # popped, queued again
    assert sheet.text(pushed_of(drained), rows, {}, BASE, LEVELS[0]) == status_rows.join(
        pushed_of(drained), rows, BASE, LEVELS[0], None
    )
    assert sheet.built
    moved = [drained[1], drained[0], *drained[2:]]  # the second image re-queued before the first
    sheet.text(pushed_of(moved), rows, {}, BASE, LEVELS[0])
    assert not sheet.built
    sheet.text(pushed_of(moved), rows, {}, BASE, LEVELS[0])
    sheet.text(pushed_of(moved), rows, dict.fromkeys(IMAGES), BASE, LEVELS[0])  # every row changed
    assert not sheet.built


def test_the_sheet_follows_only_a_drain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Moves a drain does not make, each between two calls of a built sheet: an image popped
    from the front but not queued again, its row then changed; a push order that was not the
    due order, the images before one popped (both prefixes as long, not the same images);
    images queued behind the rest out of due order, or before the last of the rest. (Rows
    put in place however many changed: with four images, one changed is too many.)"""
    monkeypatch.setattr(status_sheet, "_JOIN_BEYOND", 0)
    us = status_rows.microseconds(BASE)
    a, b, c, d = IMAGES[:4]
    rows = {
        image: status_rows.encode(BASE, record(f"p/{image.image_id}", 0, 1, 0), None)
        for image in IMAGES
    }
    minutes = [us + m * 60_000_000 for m in range(10)]
    elsewhere = IMAGES[-1]  # in pool 2
    cases = [
        # (level, pushed to build on, pushed after, changed after)
        (LEVELS[0], [(minutes[0], a), (minutes[0], b)], [(minutes[0], b)], [a]),
        (
            LEVELS[0],
            [(minutes[9], a), (minutes[0], b), (minutes[5], c), (minutes[1], d)],
            [(minutes[5], c), (minutes[1], d)],
            [],
        ),
        (LEVELS[0], [(minutes[0], a)], [(minutes[0], a), (minutes[5], b), (minutes[1], c)], []),
        (LEVELS[0], [(minutes[5], a)], [(minutes[5], a), (minutes[1], b)], []),
        (  # pool 1's rows: the first of pool 2 is none of them
            LEVELS[1],
            [(minutes[0], a), (minutes[0], elsewhere), (minutes[0], b)],
            [(minutes[0], elsewhere), (minutes[0], b)],
            [],
        ),
    ]
    for level, before, after, changed in cases:
        sheet = Sheet()
        for _ in range(3):
            sheet.text(pushed_of(before), rows, {}, BASE, level)
        assert sheet.built
        for image in changed:  # a row changed (its image gone from the queue)
            rows[image] = status_rows.encode(BASE, record("p/changed", 1, 1, 3), None)
        for _ in range(2):
            text = sheet.text(pushed_of(after), rows, dict.fromkeys(changed), BASE, level)
            assert text == status_rows.join(pushed_of(after), rows, BASE, level, None)
            changed = []


def test_the_sheet_follows_a_drain_call_after_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slot drained a few images per call, rows changed as it goes: each reply is join's,
    and the sheet stays built throughout."""
    monkeypatch.setattr(status_sheet, "_JOIN_BEYOND", 0)
    us = status_rows.microseconds(BASE)
    rows = {
        image: status_rows.encode(BASE, record(f"p/{image.image_id}", 0, 0, 0), None)  # never late
        for image in IMAGES
    }
    index = {image: (us, image) for image in IMAGES}
    sheet = Sheet()
    for _ in range(3):
        sheet.text(pushed_of(index.values()), rows, {}, BASE, LEVELS[0])
    now = BASE + timedelta(minutes=1)  # late: a row of reference 0 and grace 1 (40 s)
    for popped in (1, 2, 3, 2):  # a few images popped, queued again a minute on, changed
        for _, image in list(index.values())[:popped]:
            del index[image]
            index[image] = (us + 60_000_000, image)
            rows[image] = status_rows.encode(BASE, record("p/x", 1, 1, popped), None)
        moved = [image for _, image in list(index.values())[-popped:]]
        ended = next(iter(index))  # and one not moved: its attempt ended, it is late now
        rows[ended] = status_rows.encode(BASE, record("p/late", 0, 1, popped), None)
        text = sheet.text(
            pushed_of(index.values()), rows, dict.fromkeys([*moved, ended]), now, LEVELS[0]
        )
        assert text == status_rows.join(pushed_of(index.values()), rows, now, LEVELS[0], None)
        assert sheet.built
    # The first image gone from the queue and its row let go (not shown: rows put one by one),
    # the last one's row late (at ``now``: the rows above are not, but those "p/late")
    gone, last, now = next(iter(index)), list(index)[-1], BASE + timedelta(seconds=30)
    del index[gone], rows[gone]
    rows[last] = status_rows.encode(BASE, record("p/late", 0, 1, 0), None)
    text = sheet.text(pushed_of(index.values()), rows, dict.fromkeys([gone, last]), now, LEVELS[0])
    assert text == status_rows.join(pushed_of(index.values()), rows, now, LEVELS[0], None)
    assert sheet.built
