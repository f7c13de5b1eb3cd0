"""Unit tests for rbd_snapsched.schedule: parsing, canonical strings, next-run maths, JSON."""

from __future__ import annotations

import errno
import json
import random
import re
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rbd_snapsched.errors import InvalidArgument, ScheduleDecodeError
from rbd_snapsched.schedule import (
    EPOCH,
    MAX_INTERVAL_MINUTES,
    Interval,
    Schedule,
    ScheduleItem,
    StartTime,
)

UTC = timezone.utc
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def item(interval: str, start: str = "") -> ScheduleItem:
    return ScheduleItem(Interval.parse(interval), StartTime.parse(start))


def schedule(*items: ScheduleItem) -> Schedule:
    return Schedule(frozenset(items))


def start(text: str) -> StartTime:
    parsed = StartTime.parse(text)
    assert parsed is not None
    return parsed


intervals = st.integers(1, MAX_INTERVAL_MINUTES).map(Interval)
small_intervals = st.integers(1, 3 * 1440).map(Interval)
start_times = st.builds(
    StartTime, st.integers(0, 23), st.integers(0, 59), st.none() | st.integers(-1439, 1439)
)
items = st.builds(ScheduleItem, intervals | small_intervals, st.none() | start_times)
zones: st.SearchStrategy[tzinfo] = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=-5)),
        timezone(timedelta(hours=5, minutes=45)),
        timezone(timedelta(hours=-23, minutes=-59)),
        NEW_YORK,
        BERLIN,
        ZoneInfo("Australia/Lord_Howe"),
    ]
)
nows = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(9000, 12, 31), timezones=zones
)


# --- Interval -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minutes", "canonical"),
    [
        ("1", 1, "1m"),
        ("1m", 1, "1m"),
        ("90", 90, "90m"),
        ("60m", 60, "1h"),
        ("1440m", 1440, "1d"),
        ("24h", 1440, "1d"),
        ("25h", 1500, "25h"),
        ("2d", 2880, "2d"),
        ("007h", 420, "7h"),
        ("1h\n", 60, "1h"),
        ("36500d", MAX_INTERVAL_MINUTES, "36500d"),
        (str(MAX_INTERVAL_MINUTES), MAX_INTERVAL_MINUTES, "36500d"),
    ],
)
def test_interval_parse(text: str, minutes: int, canonical: str) -> None:
    interval = Interval.parse(text)
    assert interval.minutes == minutes
    assert str(interval) == canonical
    assert interval.timedelta == timedelta(minutes=minutes)


@pytest.mark.parametrize(
    "text",
    [
        *("", "1w", "1.5h", " 1h", "1h ", "1H", "1M", "-1m", "+1m", "h", "1hm", "1 h"),
        *("1h\n\n", "\n", "\u0661h", "1d\r\n", "0x10"),
    ],
)
def test_interval_syntax_errors(text: str) -> None:
    with pytest.raises(InvalidArgument) as exc_info:
        Interval.parse(text)
    assert str(exc_info.value) == f"Invalid interval ({text})"
    assert exc_info.value.errno == errno.EINVAL


@pytest.mark.parametrize("text", ["0", "0m", "0d", "000h"])
def test_interval_zero_rejected(text: str) -> None:
    with pytest.raises(InvalidArgument, match=r"must be at least 1m$") as exc_info:
        Interval.parse(text)
    assert str(exc_info.value) == f"Invalid interval ({text}): must be at least 1m"


@pytest.mark.parametrize(
    "text",
    ["36501d", str(MAX_INTERVAL_MINUTES + 1), "876025h", "99999999999999d", "9" * 100_000 + "m"],
)
def test_interval_too_large_rejected(text: str) -> None:
    with pytest.raises(InvalidArgument) as exc_info:
        Interval.parse(text)
    assert str(exc_info.value) == f"Invalid interval ({text}): must be at most 36500d"


def test_interval_constructor_validates() -> None:
    with pytest.raises(InvalidArgument):
        Interval(0)
    with pytest.raises(InvalidArgument):
        Interval(MAX_INTERVAL_MINUTES + 1)


def test_interval_equality_by_minutes() -> None:
    assert Interval.parse("24h") == Interval.parse("1d") == Interval.parse("1440")
    assert len({Interval.parse("24h"), Interval.parse("1d"), Interval.parse("1440m")}) == 1
    assert Interval.parse("1h") != Interval.parse("61m")


@given(intervals)
def test_interval_round_trip_and_canonical(interval: Interval) -> None:
    text = str(interval)
    assert Interval.parse(text) == interval
    assert Interval.parse(f"{interval.minutes}m") == interval
    assert Interval.parse(str(interval.minutes)) == interval
    number, unit = int(text[:-1]), text[-1]
    if interval.minutes % 1440 == 0:
        assert (number, unit) == (interval.minutes // 1440, "d")
    elif interval.minutes % 60 == 0:
        assert (number, unit) == (interval.minutes // 60, "h")
    else:
        assert (number, unit) == (interval.minutes, "m")


@given(st.text() | st.from_regex(r"\A[0-9]{0,30}[dhmDHMw ]?\n?\Z"))
def test_interval_parse_never_fails_otherwise(text: str) -> None:
    try:
        interval = Interval.parse(text)
    except InvalidArgument as e:
        assert str(e).startswith(f"Invalid interval ({text})")
    else:
        assert 1 <= interval.minutes <= MAX_INTERVAL_MINUTES


# --- StartTime ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical", "utc_minute"),
    [
        ("00:15", "00:15:00", 15),
        ("12h", "12:00:00", 720),
        ("12:00 PM", "12:00:00", 720),
        ("1:2", "01:02:00", 62),
        ("12:00:30", "12:00:00", 720),
        ("14:00-05:00", "14:00:00-05:00", 19 * 60),
        ("14:00:00-05:00", "14:00:00-05:00", 19 * 60),
        ("14:00+05:00", "14:00:00+05:00", 9 * 60),
        ("23:00-01:00", "23:00:00-01:00", 0),
        ("05:30+05:30", "05:30:00+05:30", 0),
        ("19:00Z", "19:00:00+00:00", 19 * 60),
        ("12:00 UTC", "12:00:00+00:00", 720),
        ("00:00+23:59", "00:00:00+23:59", 1),
    ],
)
def test_start_time_parse(text: str, canonical: str, utc_minute: int) -> None:
    parsed = start(text)
    assert str(parsed) == canonical
    assert parsed.utc_minute == utc_minute
    assert str(start(canonical)) == canonical


def test_start_time_empty_means_none() -> None:
    assert StartTime.parse("") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dummy", "Invalid start time dummy: Unknown string format: dummy"),
        ("25:00", "Invalid start time 25:00: hour must be in 0..23: 25:00"),
        ("12:00 EST", "Invalid start time 12:00 EST: unknown time zone EST"),
        ("12:00+2400", "Invalid start time 12:00+2400: "),
        ("12:00+9999", "Invalid start time 12:00+9999: "),
        ("99999999999999999999", "Invalid start time 99999999999999999999: "),
        (" ", "Invalid start time  : "),
    ],
)
def test_start_time_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as exc_info:
        StartTime.parse(text)
    assert str(exc_info.value).startswith(message)
    assert exc_info.value.errno == errno.EINVAL


def test_start_time_equality_by_utc_instant() -> None:
    assert start("14:00-05:00") == start("19:00Z") == start("19:00") == start("20:00+01:00")
    assert len({start("14:00-05:00"), start("19:00Z"), start("19:00")}) == 1
    assert start("19:00") != start("19:01")
    assert start("19:00") != "19:00"
    assert str(start("14:00-05:00")) == "14:00:00-05:00"  # text kept for display


@pytest.mark.parametrize(("hour", "minute", "offset"), [(24, 0, None), (0, 60, 0), (0, 0, 1440)])
def test_start_time_constructor_validates(hour: int, minute: int, offset: int | None) -> None:
    with pytest.raises(ValueError):
        StartTime(hour, minute, offset)


@given(start_times)
def test_start_time_round_trip(value: StartTime) -> None:
    parsed = start(str(value))
    assert (parsed.hour, parsed.minute, parsed.offset_minutes) == (
        value.hour,
        value.minute,
        value.offset_minutes,
    )
    assert str(parsed) == str(value)
    assert 0 <= parsed.utc_minute < 1440
    assert re.fullmatch(r"\d\d:\d\d:00([+-]\d\d:\d\d)?", str(value))


@given(st.text(max_size=40) | st.from_regex(r"\A\d{1,3}:\d{1,3}(:\d\d)?([+-]\d{1,4}|Z| \w+)?\Z"))
def test_start_time_parse_never_fails_otherwise(text: str) -> None:
    try:
        parsed = StartTime.parse(text)
    except InvalidArgument as e:
        assert str(e).startswith(f"Invalid start time {text}: ")
    else:
        assert parsed is None or 0 <= parsed.utc_minute < 1440


# --- ScheduleItem.next_run ----------------------------------------------------------------------

NOW = utc(2025, 12, 10, 17, 55, 21)


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([("1h", "")], utc(2025, 12, 10, 18, 0)),
        ([("1h", "19:00Z")], utc(2025, 12, 10, 18, 0)),
        ([("1d", "23:00-01:00")], utc(2025, 12, 11, 0, 0)),
        ([("1d", "14:00:00-05:00")], utc(2025, 12, 10, 19, 0)),
        ([("1d", "14:00+05:00")], utc(2025, 12, 11, 9, 0)),
        ([("7m", ""), ("3m", "")], utc(2025, 12, 10, 17, 56)),
        ([("1d", "01:30")], utc(2025, 12, 11, 1, 30)),
        ([("1d", "01:30"), ("1d", "18:00")], utc(2025, 12, 10, 18, 0)),
    ],
)
def test_worked_examples(entries: list[tuple[str, str]], expected: datetime) -> None:
    sched = schedule(*(item(interval, start) for interval, start in entries))
    result = sched.next_run(NOW)
    assert result == expected
    assert result.tzinfo is UTC
    # The same instant given in other zones gives the same slot.
    assert sched.next_run(NOW.astimezone(timezone(timedelta(hours=-5)))) == expected
    assert sched.next_run(NOW.astimezone(BERLIN)) == expected


@pytest.mark.parametrize(
    ("interval", "start", "now", "expected"),
    [
        ("1h", "", utc(2025, 12, 10, 18, 0), utc(2025, 12, 10, 19, 0)),  # on a slot: the next one
        ("1h", "", utc(2025, 12, 10, 17, 59, 59, 999999), utc(2025, 12, 10, 18, 0)),
        ("1d", "00:30", utc(1969, 12, 31, 23, 59), utc(1970, 1, 1, 0, 30)),
        ("1d", "19:00", utc(1970, 1, 1), utc(1970, 1, 1, 19, 0)),
        ("1d", "19:00", utc(1900, 6, 1, 20), utc(1900, 6, 2, 19, 0)),
        ("36500d", "", utc(2025, 1, 1), utc(2069, 12, 7)),
        ("36500d", "23:59", utc(9000, 12, 31, 23, 59, 59), utc(9065, 4, 15, 23, 59)),
        ("1m", "", utc(9000, 12, 31, 23, 59, 59, 999999), utc(9001, 1, 1)),
    ],
)
def test_next_run_edges(interval: str, start: str, now: datetime, expected: datetime) -> None:
    assert item(interval, start).next_run(now) == expected


def test_next_run_negative_offset_now() -> None:
    now = datetime(2025, 12, 10, 12, 55, 21, tzinfo=timezone(timedelta(hours=-5)))
    assert item("1d", "19:00Z").next_run(now) == utc(2025, 12, 10, 19, 0)
    assert item("1d", "14:00-05:00").next_run(now) == utc(2025, 12, 10, 19, 0)


def test_next_run_rejects_naive_now() -> None:
    with pytest.raises(ValueError):
        item("1h").next_run(datetime(2025, 12, 10, 17, 55))
    with pytest.raises(ValueError):
        Schedule().next_run(NOW)


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        # New York, spring forward on 2025-03-09 (EST -05:00 -> EDT -04:00).
        (datetime(2025, 3, 8, 12, 0, tzinfo=NEW_YORK), utc(2025, 3, 8, 19, 0)),
        (datetime(2025, 3, 9, 12, 0, tzinfo=NEW_YORK), utc(2025, 3, 9, 19, 0)),
        # New York, fall back on 2025-11-02.
        (datetime(2025, 11, 1, 12, 0, tzinfo=NEW_YORK), utc(2025, 11, 1, 19, 0)),
        (datetime(2025, 11, 2, 12, 0, tzinfo=NEW_YORK), utc(2025, 11, 2, 19, 0)),
        # Berlin, spring forward on 2025-03-30 and fall back on 2025-10-26.
        (datetime(2025, 3, 29, 21, 0, tzinfo=BERLIN), utc(2025, 3, 30, 19, 0)),
        (datetime(2025, 10, 26, 19, 30, tzinfo=BERLIN), utc(2025, 10, 26, 19, 0)),
        (datetime(2025, 10, 26, 20, 30, tzinfo=BERLIN), utc(2025, 10, 27, 19, 0)),
    ],
)
def test_daily_start_time_ignores_dst(local: datetime, expected: datetime) -> None:
    for text in ("19:00", "14:00-05:00", "21:00+02:00"):
        assert item("1d", text).next_run(local) == expected


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        # 01:30 happens twice in New York on 2025-11-02: EDT (05:30Z), then EST (06:30Z).
        (datetime(2025, 11, 2, 1, 30, tzinfo=NEW_YORK, fold=0), utc(2025, 11, 2, 6, 0)),
        (datetime(2025, 11, 2, 1, 30, tzinfo=NEW_YORK, fold=1), utc(2025, 11, 2, 7, 0)),
        # 02:30 happens twice in Berlin on 2025-10-26: CEST (00:30Z), then CET (01:30Z).
        (datetime(2025, 10, 26, 2, 30, tzinfo=BERLIN, fold=0), utc(2025, 10, 26, 1, 0)),
        (datetime(2025, 10, 26, 2, 30, tzinfo=BERLIN, fold=1), utc(2025, 10, 26, 2, 0)),
        # Berlin skips from 02:00 to 03:00 on 2025-03-30: 01:59:30 CET is 00:59:30Z.
        (datetime(2025, 3, 30, 1, 59, 30, tzinfo=BERLIN), utc(2025, 3, 30, 1, 0)),
    ],
)
def test_hourly_ambiguous_local_times(local: datetime, expected: datetime) -> None:
    assert item("1h").next_run(local) == expected


@pytest.mark.parametrize("zone", [NEW_YORK, BERLIN])
def test_hourly_runs_are_evenly_spaced_across_dst(zone: ZoneInfo) -> None:
    hourly = item("1h")
    previous = hourly.next_run(datetime(2025, 3, 8, tzinfo=zone))
    for _ in range(24 * 250):  # through both 2025 DST changes
        following = hourly.next_run(previous.astimezone(zone))
        assert following - previous == timedelta(hours=1)
        previous = following


@given(items, nows)
def test_next_run_invariants(entry: ScheduleItem, now: datetime) -> None:
    result = entry.next_run(now)
    now_utc = now.astimezone(UTC)
    assert result.tzinfo is UTC
    assert result.second == result.microsecond == 0
    assert now_utc < result <= now_utc + entry.interval.timedelta
    anchor_minute = 0 if entry.start_time is None else entry.start_time.utc_minute
    assert (result - EPOCH - timedelta(minutes=anchor_minute)) % entry.interval.timedelta == (
        timedelta(0)
    )
    assert entry.next_run(now_utc) == result


@given(st.lists(items, min_size=1, max_size=5), nows)
def test_schedule_next_run_is_minimum(entries: list[ScheduleItem], now: datetime) -> None:
    assert schedule(*entries).next_run(now) == min(entry.next_run(now) for entry in entries)


# --- ScheduleItem / Schedule --------------------------------------------------------------------


def test_item_equality() -> None:
    assert item("1d", "14:00-05:00") == item("24h", "19:00Z")
    assert hash(item("1d", "14:00-05:00")) == hash(item("24h", "19:00Z"))
    assert item("1d", "19:00") != item("1d")
    assert item("1d", "00:00") != item("1d")
    assert item("1d") != item("1h")


def test_with_item_equal_is_noop() -> None:
    first = schedule().with_item(item("1d", "14:00-05:00"))
    second = first.with_item(item("24h", "19:00Z"))
    assert second is first
    assert [str(i.start_time) for i in second] == ["14:00:00-05:00"]
    assert len(first.with_item(item("1d"))) == 2


def test_without() -> None:
    sched = schedule(item("1h"), item("1h", "00:15"), item("1d", "14:00-05:00"))
    assert not sched.without(None, None)
    assert not sched.without(None, start("00:15"))  # start ignored without interval
    assert list(sched.without(Interval.parse("1h"), None)) == [
        item("1h", "00:15"),
        item("1d", "14:00-05:00"),
    ]
    assert list(sched.without(Interval.parse("60m"), start("00:15"))) == [
        item("1h"),
        item("1d", "14:00-05:00"),
    ]
    assert len(sched.without(Interval.parse("1440m"), start("19:00Z"))) == 2
    assert sched.without(Interval.parse("1d"), None) is sched
    assert sched.without(Interval.parse("2h"), start("00:15")) is sched


def test_schedule_container_protocol() -> None:
    assert not Schedule()
    assert len(Schedule()) == 0
    sched = schedule(item("1d", "01:30"), item("1h"), item("1d"), item("1h", "00:15"))
    assert sched
    assert len(sched) == 4
    assert [(str(i.interval), str(i.start_time)) for i in sched] == [
        ("1h", "None"),
        ("1h", "00:15:00"),
        ("1d", "None"),
        ("1d", "01:30:00"),
    ]


@given(st.lists(items, max_size=6), st.randoms())
def test_order_is_deterministic(entries: list[ScheduleItem], rnd: random.Random) -> None:
    shuffled = list(entries)
    rnd.shuffle(shuffled)
    forward, backward = Schedule(), Schedule()
    for entry in entries:
        forward = forward.with_item(entry)
    for entry in reversed(shuffled):
        backward = backward.with_item(entry)
    assert forward == backward
    assert list(forward) == list(backward)
    keys = [entry.sort_key for entry in forward]
    assert keys == sorted(keys)


# --- JSON ---------------------------------------------------------------------------------------


def test_to_json_format() -> None:
    sched = schedule(item("1440m", "14:00-05:00"), item("60"))
    assert sched.items_for_json() == [
        {"interval": "1h", "start_time": None},
        {"interval": "1d", "start_time": "14:00:00-05:00"},
    ]
    assert sched.to_json() == (
        "[\n"
        "    {\n"
        '        "interval": "1h",\n'
        '        "start_time": null\n'
        "    },\n"
        "    {\n"
        '        "interval": "1d",\n'
        '        "start_time": "14:00:00-05:00"\n'
        "    }\n"
        "]"
    )
    assert Schedule().to_json() == "[]"


def test_from_json_accepts_upstream_records() -> None:
    record = json.dumps(
        [
            {"interval": "1d", "start_time": "14:00:00-05:00"},
            {"interval": "1h", "start_time": None},
            {"interval": "90m"},
            {"interval": "2d", "start_time": ""},
            {"interval": "24h", "start_time": "19:00:00+00:00"},  # equal to the first: dropped
        ]
    )
    sched = Schedule.from_json(record)
    assert sched == schedule(item("1d", "14:00-05:00"), item("1h"), item("90m"), item("2d"))
    assert [str(i.start_time) for i in sched if i.interval.minutes == 1440] == ["14:00:00-05:00"]
    assert Schedule.from_json("[]") == Schedule()


@given(st.lists(items, max_size=6))
def test_json_round_trip(entries: list[ScheduleItem]) -> None:
    sched = schedule(*entries)
    text = sched.to_json()
    decoded = Schedule.from_json(text)
    assert decoded == sched
    assert decoded.to_json() == text
    assert json.loads(text) == sched.items_for_json()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not valid JSON"),
        ("not json", "not valid JSON"),
        ("[" * 100_000, "not valid JSON"),
        ("{}", "must be a JSON list, not dict"),
        ("null", "must be a JSON list, not NoneType"),
        ('"1h"', "must be a JSON list, not str"),
        ("[1]", "item 0 is not a JSON object"),
        ('[{"start_time": null}]', "item 0 has no string 'interval'"),
        ('[{"interval": "1h"}, {"interval": 60}]', "item 1 has no string 'interval'"),
        ('[{"interval": "0m"}]', "item 0: Invalid interval (0m): must be at least 1m"),
        ('[{"interval": "1w"}]', "item 0: Invalid interval (1w)"),
        ('[{"interval": "1h", "start_time": 5}]', "item 0: 'start_time' must be a string or null"),
        (
            '[{"interval": "1h", "start_time": "dummy"}]',
            "item 0: Invalid start time dummy: Unknown string format: dummy",
        ),
    ],
)
def test_from_json_errors(text: str, message: str) -> None:
    with pytest.raises(ScheduleDecodeError) as exc_info:
        Schedule.from_json(text)
    assert message in str(exc_info.value)


# -- date-time start anchors (upstream main, after Tentacle) -----------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("2100-01-01T19:00Z", "2100-01-01 19:00:00"),  # upstream qa
        ("2020-01-14T04:30+05:30", "2020-01-13 23:00:00"),  # upstream qa: offset applied
        ("2026-01-01T06:00:00", "2026-01-01 06:00:00"),  # no zone: UTC; seconds dropped
        ("2026-01-01 06:00", "2026-01-01 06:00:00"),  # as stored and shown
        ("2100-01-01", "2100-01-01 00:00:00"),
        ("2026-03-01T00:30-0100", "2026-03-01 01:30:00"),
    ],
)
def test_date_time_anchors_are_kept_in_utc(text: str, shown: str) -> None:
    parsed = start(text)
    assert parsed.anchor is not None and str(parsed) == shown
    assert start(shown) == parsed and str(start(shown)) == shown  # the record round-trips


@pytest.mark.parametrize(
    "text",
    [
        "2020-13-14T04:30",
        "2020-01-32T04:30",
        "2020-02-30T04:30",
        "2020-01-14T25:30",
        "2020-01-14T04:60",
        "2020-01-14T04:30+24:00",
        "2020-01-14T04:30+05:60",
        "2020-1-14T04:30",
        "2020-01-14T04:30 PM",
        "0000-01-01",
        "99999-01-01",
        # Valid local date-times whose UTC instant is out of datetime's range.
        "9999-12-31T23:59-05:00",
        "0001-01-01T00:00+05:00",
    ],
)
def test_bad_date_time_anchors_are_einval(text: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        StartTime.parse(text)
    assert e.value.errno == errno.EINVAL and text in str(e.value)


def test_an_anchor_is_the_first_slot_then_every_interval() -> None:
    item = ScheduleItem(Interval.parse("1h"), start("2100-01-01T19:00Z"))
    now = datetime(2026, 12, 2, 7, 13, tzinfo=timezone.utc)
    assert item.next_run(now) == datetime(2100, 1, 1, 19, 0, tzinfo=timezone.utc)
    past = ScheduleItem(Interval.parse("1d"), start("2020-01-14T04:30+05:30"))
    assert past.next_run(now) == datetime(2026, 12, 2, 23, 0, tzinfo=timezone.utc)
    at_slot = datetime(2026, 12, 2, 23, 0, tzinfo=timezone.utc)
    assert past.next_run(at_slot) == datetime(2026, 12, 3, 23, 0, tzinfo=timezone.utc)


def test_an_anchor_is_not_the_time_of_day_it_falls_on() -> None:
    anchor = start("2020-01-13T23:00Z")
    time_of_day = start("23:00Z")
    assert anchor != time_of_day
    schedule = Schedule().with_item(ScheduleItem(Interval.parse("1d"), anchor))
    schedule = schedule.with_item(ScheduleItem(Interval.parse("1d"), time_of_day))
    assert len(schedule) == 2
    assert Schedule.from_json(schedule.to_json()) == schedule
