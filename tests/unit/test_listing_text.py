"""The ``list`` reply written in pieces (listing_text.py): byte for byte ``respond`` of the
same levels, for any names, schedules and pauses."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rbd_snapsched import listing_text, render
from rbd_snapsched.commands import respond
from rbd_snapsched.levels import LevelSpec
from rbd_snapsched.pauses import Pauses
from rbd_snapsched.schedule import Interval, Schedule, ScheduleItem, StartTime

names = st.text(st.characters(codec="utf-8"), max_size=10)  # quotes, backslashes, NUL, é
schedules = st.lists(
    st.builds(
        ScheduleItem,
        st.sampled_from([Interval.parse(text) for text in ("1m", "90m", "1h", "2d")]),
        st.none() | st.sampled_from([StartTime.parse(text) for text in ("14:00-05:00", "00:15")]),
    ),
    min_size=1,
    max_size=3,
).map(lambda items: Schedule(frozenset(items)))
levels = st.builds(
    LevelSpec,
    st.integers(1, 3),
    st.none() | st.sampled_from(["", "ns"]),
    st.none() | st.text("abcdef0123", min_size=1, max_size=4),
    names,
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    st.lists(st.tuples(levels, st.sampled_from([0, 1, 2]), st.booleans()), max_size=8),
    st.lists(schedules, min_size=3, max_size=3),
)
def test_the_text_is_what_respond_writes(
    chosen: list[tuple[LevelSpec, int, bool]], shared: list[Schedule]
) -> None:
    """Levels sharing a schedule (one written shape), or not; some paused (another shape)."""
    since = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    selected = [(level, shared[k]) for level, k, _ in chosen]
    pauses = Pauses({level: since for level, _, paused in chosen if paused})
    listed = render.listing(selected, pauses)
    assert listing_text.text(listed) == respond(listed)


def test_nothing_listed_and_entries_of_other_kinds() -> None:
    assert listing_text.text({}) == respond({}) == "{}"
    odd: dict[str, Any] = {"1": {"name": "p/", "schedule": [], "count": 3, "flag": None}}
    assert listing_text.text(odd) == respond(odd)
    assert listing_text.text({"1": "x"}) == respond({"1": "x"})  # type: ignore[dict-item]
