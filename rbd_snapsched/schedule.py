"""Schedule values: intervals, start times, items and per-level schedules.

Pure: no rados/rbd/mgr imports. All times are timezone-aware; slots are computed in UTC.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from functools import cached_property

from dateutil import parser as date_parser

from .errors import InvalidArgument, ScheduleDecodeError

MINUTES_PER_DAY = 1440
MAX_INTERVAL_DAYS = 36500
MAX_INTERVAL_MINUTES = MAX_INTERVAL_DAYS * MINUTES_PER_DAY
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

_INTERVAL_RE = re.compile(r"([0-9]+)([dhm]?)\n?")
# A date-time start anchor (upstream main, after Tentacle): an ISO 8601 date, optionally a time
# (``T`` or a space) and a zone (``Z``, ``±HH:MM``, ``±HHMM``, ``±HH``). Checked strictly.
_ANCHOR_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?"
)
ANCHOR_FORMAT = "%Y-%m-%d %H:%M:00"  # how an anchor is stored and shown: in UTC
_UNIT_MINUTES = {"d": 1440, "h": 60, "m": 1, "": 1}
# A fixed, leap-year January default date: the date part is ignored, but this keeps inputs like
# "31" or "feb 29" from depending on today's date.
_PARSE_DEFAULT = datetime(2000, 1, 1)


def _check_interval(minutes: int, text: str) -> None:
    if minutes < 1:
        raise InvalidArgument(f"Invalid interval ({text}): must be at least 1m")
    if minutes > MAX_INTERVAL_MINUTES:
        raise InvalidArgument(f"Invalid interval ({text}): must be at most {MAX_INTERVAL_DAYS}d")


@dataclass(frozen=True)
class Interval:
    """A schedule period in whole minutes, 1 minute to 36500 days; equal when the minutes are."""

    minutes: int

    def __post_init__(self) -> None:
        _check_interval(self.minutes, f"{self.minutes}m")

    @classmethod
    def parse(cls, text: str) -> Interval:
        """Parse ``<digits>[d|h|m]`` (minutes by default, one trailing newline tolerated)."""
        match = _INTERVAL_RE.fullmatch(text)
        if match is None:
            raise InvalidArgument(f"Invalid interval ({text})")
        digits, unit = match.group(1).lstrip("0") or "0", match.group(2)
        # More than 10 significant digits is far above the maximum whatever the unit: skip int()
        # so giant digit strings cost nothing.
        too_big = len(digits) > 10
        minutes = MAX_INTERVAL_MINUTES + 1 if too_big else int(digits) * _UNIT_MINUTES[unit]
        _check_interval(minutes, text)
        return cls(minutes)

    @property
    def timedelta(self) -> timedelta:
        return timedelta(minutes=self.minutes)

    def __str__(self) -> str:
        if self.minutes % MINUTES_PER_DAY == 0:
            return f"{self.minutes // MINUTES_PER_DAY}d"
        if self.minutes % 60 == 0:
            return f"{self.minutes // 60}h"
        return f"{self.minutes}m"


def _fixed_offset(name: str | None, offset: int | None) -> tzinfo | None:
    """dateutil ``tzinfos`` hook: fixed UTC offsets only, never the host's local zone."""
    if offset is None:
        if name is None:
            return None
        raise ValueError(f"unknown time zone {name}")
    if offset % 60 != 0 or abs(offset) >= 86400:
        raise ValueError("UTC offset must be whole minutes and less than 24h")
    return timezone(timedelta(seconds=offset))


def _parse_anchor(text: str) -> datetime | None:
    """The UTC instant of a date-time anchor (whole minute); None if ``text`` has no date.

    Strict: a month, day, hour, minute or offset out of range is EINVAL, never wrapped.
    """
    match = _ANCHOR_RE.fullmatch(text.strip())
    if match is None:
        if re.match(r"\s*\d{4}-\d{1,2}-", text):
            raise InvalidArgument(f"Invalid start time {text}: not an ISO 8601 date-time")
        return None
    year, month, day, hour, minute, _seconds, zone = match.groups()
    offset = timedelta(0)
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        if hours > 23 or minutes > 59:
            raise InvalidArgument(f"Invalid start time {text}: UTC offset out of range")
        offset = timedelta(hours=hours, minutes=minutes) * (-1 if zone[0] == "-" else 1)
    try:
        local = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            tzinfo=timezone(offset),
        )
        # An offset can carry an instant past year 9999 or before year 1 (OverflowError).
        return local.astimezone(timezone.utc)
    except (ValueError, OverflowError) as e:
        raise InvalidArgument(f"Invalid start time {text}: {e}") from e


@dataclass(frozen=True, eq=False)
class StartTime:
    """When a schedule's slots start: a time of day, or a date-time anchor.

    A time of day has an optional UTC offset (``None``: no zone given, meaning UTC); its slots
    are phased from the epoch plus that time. An ``anchor`` (aware UTC, whole minute) is the
    first slot itself: none before it, then every interval. Two start times are equal when they
    fire at the same instants; the given hour, minute and offset are kept for display.
    """

    hour: int
    minute: int
    offset_minutes: int | None = None
    anchor: datetime | None = None

    def __post_init__(self) -> None:
        if not (0 <= self.hour < 24 and 0 <= self.minute < 60):
            raise ValueError(f"invalid time of day {self.hour}:{self.minute}")
        if self.offset_minutes is not None and abs(self.offset_minutes) >= MINUTES_PER_DAY:
            raise ValueError(f"invalid UTC offset of {self.offset_minutes} minutes")
        if self.anchor is not None and self.anchor.utcoffset() != timedelta(0):
            raise ValueError("an anchor must be an aware UTC datetime")

    @classmethod
    def at(cls, anchor: datetime) -> StartTime:
        utc = anchor.astimezone(timezone.utc).replace(second=0, microsecond=0)
        return cls(utc.hour, utc.minute, None, utc)

    @classmethod
    def parse(cls, text: str) -> StartTime | None:
        """Parse a start time; ``''`` means none.

        With a date (``2100-01-01T19:00Z``, ``2020-01-14T04:30+05:30``, ``2100-01-01``) it is
        a date-time anchor, checked strictly and kept in UTC. Without one it is a time of day,
        parsed leniently with dateutil as upstream does: seconds are dropped, and a zone name
        other than UTC/GMT/Z is refused rather than silently read as UTC.
        """
        if text == "":
            return None
        anchor = _parse_anchor(text)
        if anchor is not None:
            return cls.at(anchor)
        try:
            parsed = date_parser.parse(text, default=_PARSE_DEFAULT, tzinfos=_fixed_offset)
        except Exception as e:  # dateutil raises ParserError, ValueError, OverflowError, ...
            raise InvalidArgument(f"Invalid start time {text}: {e}") from e
        offset = parsed.utcoffset()
        offset_minutes = None if offset is None else offset // timedelta(minutes=1)
        return cls(parsed.hour, parsed.minute, offset_minutes)

    @property
    def utc_minute(self) -> int:
        """Minute of the UTC day (0..1439) at which this start time falls."""
        return (self.hour * 60 + self.minute - (self.offset_minutes or 0)) % MINUTES_PER_DAY

    @property
    def key(self) -> tuple[int, int]:
        """What equality and order use: (0, UTC minute of day) or (1, anchor minute)."""
        if self.anchor is None:
            return (0, self.utc_minute)
        return (1, (self.anchor - EPOCH) // timedelta(minutes=1))

    def __str__(self) -> str:
        if self.anchor is not None:
            return self.anchor.strftime(ANCHOR_FORMAT)
        text = f"{self.hour:02d}:{self.minute:02d}:00"
        if self.offset_minutes is None:
            return text
        sign = "-" if self.offset_minutes < 0 else "+"
        hours, minutes = divmod(abs(self.offset_minutes), 60)
        return f"{text}{sign}{hours:02d}:{minutes:02d}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StartTime):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)


def stagger_key(pool_id: int, namespace: str, image_id: str) -> int:
    """An image's stable staggering key: CRC-32 of ``<pool id>/<namespace>/<image id>``.

    Deterministic across processes, hosts and Python versions (unlike ``hash()``), and it
    survives renames (ids, not names). Adding or removing other images never changes it.
    """
    return zlib.crc32(f"{pool_id}/{namespace}/{image_id}".encode())


def stagger_offset(key: int, interval: Interval) -> int:
    """The phase of an image's slots, in whole minutes, ``0 <= offset < interval``.

    With staggering on, an item without a start time fires at ``epoch + offset + k *
    interval`` instead of ``epoch + k * interval``: images spread over the interval.
    """
    return key % interval.minutes


@dataclass(frozen=True)
class ScheduleItem:
    """One ``every <interval> [starting at <start_time>]`` entry."""

    interval: Interval
    start_time: StartTime | None = None

    @property
    def sort_key(self) -> tuple[int, int, int]:
        start = (-1, -1) if self.start_time is None else self.start_time.key
        return (self.interval.minutes, *start)

    def next_run(self, now: datetime, offset: int = 0) -> datetime:
        """The earliest slot strictly after the aware ``now``: aware UTC, whole minute.

        Slots are ``anchor + k * interval`` for integer k, the anchor being the epoch plus the
        start time's UTC minute; for a date-time anchor, k >= 0 (the anchor is the first slot).
        Without a start time the anchor is the epoch plus ``offset`` minutes (staggering); an
        item with a start time ignores ``offset`` and keeps its slot.
        Raises ValueError for a naive ``now``.
        """
        if now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        if self.start_time is not None and self.start_time.anchor is not None:
            anchor = self.start_time.anchor
            if now < anchor:
                return anchor
            step = self.interval.timedelta
            return anchor + ((now - anchor) // step + 1) * step
        # Integer microseconds since the epoch: exact, and floor division also handles times
        # before the anchor.
        since_epoch = now - EPOCH
        now_us = (since_epoch.days * 86400 + since_epoch.seconds) * 10**6 + since_epoch.microseconds
        anchor_minute = offset if self.start_time is None else self.start_time.utc_minute
        period = self.interval.minutes
        slots = (now_us - anchor_minute * 60 * 10**6) // (period * 60 * 10**6) + 1
        return EPOCH + timedelta(minutes=anchor_minute + slots * period)


@dataclass(frozen=True)
class Schedule:
    """The immutable set of items scheduled at one level, iterated in a stable order."""

    items: frozenset[ScheduleItem] = field(default_factory=frozenset)

    def with_item(self, item: ScheduleItem) -> Schedule:
        """Add ``item``; a no-op (keeping the existing text) if an equal item is present."""
        return self if item in self.items else Schedule(self.items | {item})

    def without(self, interval: Interval | None, start_time: StartTime | None) -> Schedule:
        """Remove everything (``interval`` None) or the one equal item; no match: unchanged."""
        if interval is None:
            return Schedule()
        item = ScheduleItem(interval, start_time)
        return Schedule(self.items - {item}) if item in self.items else self

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[ScheduleItem]:
        return iter(sorted(self.items, key=lambda item: item.sort_key))

    def next_run(self, now: datetime, stagger: int | None = None) -> datetime:
        """The earliest next run over all items; ValueError if the schedule is empty.

        ``stagger`` (an image's :func:`stagger_key`, or its phase modulo ``stagger_period``)
        shifts each item without a start time by :func:`stagger_offset` minutes; None: no shift.
        """
        if not self.items:
            raise ValueError("an empty schedule has no next run")
        if stagger is None:
            return min(item.next_run(now) for item in self.items)
        return min(
            item.next_run(now, stagger_offset(stagger, item.interval)) for item in self.items
        )

    @cached_property
    def stagger_period(self) -> int:
        """The lcm of the intervals (minutes) of the items without a start time (1 if none).

        ``next_run(now, key)`` equals ``next_run(now, key % stagger_period)``: images whose keys
        agree modulo it share their next runs, so the scheduler computes them once per phase.
        """
        return math.lcm(1, *(i.interval.minutes for i in self.items if i.start_time is None))

    def items_for_json(self) -> list[dict[str, str | None]]:
        return [
            {
                "interval": str(item.interval),
                "start_time": None if item.start_time is None else str(item.start_time),
            }
            for item in self
        ]

    def to_json(self) -> str:
        """The stored record: a JSON list of ``{interval, start_time}``, indent 4, sorted keys."""
        return json.dumps(self.items_for_json(), indent=4, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Schedule:
        """Decode a stored record (ours or rbd_support's); ScheduleDecodeError if malformed."""
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise ScheduleDecodeError(f"schedule record is not valid JSON: {e}") from e
        if not isinstance(raw, list):
            raise ScheduleDecodeError(
                f"schedule record must be a JSON list, not {type(raw).__name__}"
            )
        schedule = cls()
        for index, entry in enumerate(raw):
            if not isinstance(entry, dict):
                raise ScheduleDecodeError(f"schedule item {index} is not a JSON object: {entry!r}")
            interval = entry.get("interval")
            start_time = entry.get("start_time")
            if not isinstance(interval, str):
                raise ScheduleDecodeError(f"schedule item {index} has no string 'interval'")
            if start_time is not None and not isinstance(start_time, str):
                raise ScheduleDecodeError(
                    f"schedule item {index}: 'start_time' must be a string or null"
                )
            try:
                item = ScheduleItem(Interval.parse(interval), StartTime.parse(start_time or ""))
            except InvalidArgument as e:
                raise ScheduleDecodeError(f"schedule item {index}: {e}") from e
            schedule = schedule.with_item(item)
        return schedule


class NextRuns:
    """Next runs after one ``now``, computed once per schedule (per (schedule, phase) when
    staggered): most images share a few schedules, and staggered ones a few phases of each."""

    __slots__ = ("_now", "_phased", "_plain", "_stagger")

    def __init__(self, now: datetime, *, stagger: bool) -> None:
        self._now = now
        self._stagger = stagger
        self._plain: dict[Schedule, datetime] = {}
        self._phased: dict[tuple[Schedule, int], datetime] = {}

    def __call__(self, image: tuple[int, str, str], schedule: Schedule) -> datetime:
        """``image`` is (pool id, namespace, image id): an ``ImageSpec``."""
        if not self._stagger:  # the hot path: one dict lookup
            due = self._plain.get(schedule)
            if due is None:
                due = self._plain[schedule] = schedule.next_run(self._now)
            return due
        phase = stagger_key(*image) % schedule.stagger_period
        due = self._phased.get((schedule, phase))
        if due is None:
            due = self._phased[schedule, phase] = schedule.next_run(self._now, phase)
        return due
