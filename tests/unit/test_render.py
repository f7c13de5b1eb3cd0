"""What an operator reads: status rows, schedule text and health checks, from plain data."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from rbd_snapsched import render
from rbd_snapsched.book import ImageRecord
from rbd_snapsched.levels import LevelSpec
from rbd_snapsched.schedule import Interval, ScheduleItem, StartTime


def test_status_keeps_upstreams_shape_in_utc() -> None:
    due = datetime(2026, 1, 2, 3, 4, 59, tzinfo=timezone.utc)
    record = ImageRecord("p/img", due - timedelta(minutes=3))
    (row,) = render.status([(due, record, None)], due)["scheduled_images"]
    assert (row["schedule_time"], row["image"]) == ("2026-01-02 03:04:00", "p/img")
    assert "paused_by" not in row
    paused = LevelSpec(1, None, None, "p/")
    assert render.status([(due, record, paused)], due)["scheduled_images"][0]["paused_by"] == "p/"
    assert render.status([], due) == {"scheduled_images": []}


def test_describe_is_what_the_rbd_cli_prints() -> None:
    assert render.describe(ScheduleItem(Interval.parse("60m"), None)) == "every 1h"
    item = ScheduleItem(Interval.parse("1d"), StartTime.parse("14:00-05:00"))
    assert render.describe(item) == "every 1d starting at 14:00:00-05:00"


def test_detail_is_capped_with_a_count_of_the_rest() -> None:
    lines = [f"line {i}" for i in range(45)]
    out = render.capped(lines)
    assert len(out) == render.DETAIL_LINES
    assert out[-1] == "and 16 more" and out[-2] == "line 28"
    assert render.capped(lines[:30]) == lines[:30]


def test_health_checks_count_and_name_what_they_warn_about() -> None:
    check = render.no_tx_peer(["b", "a"])
    assert check["count"] == 2 and check["severity"] == "warning"
    assert check["detail"][0].startswith("pool a:")
    upstream = render.rbd_support_schedules(["", "p/"])
    assert "2 mirror snapshot schedule(s)" in upstream["summary"]
    assert "the Ceph dashboard writes its schedules there" in upstream["summary"]
    assert "takeover" in upstream["detail"][0]
    assert "adopt_rbd_support_schedules true" in upstream["detail"][0]
    assert upstream["detail"][1:] == [
        "rbd_support schedule at level (global)",
        "rbd_support schedule at level p/",
    ]


def test_iso_and_schedule_time_print_the_fields_of_the_zone_they_are_given() -> None:
    """UTC times are remembered by instant (rows of one slot share them); another zone's equal
    instant must not be answered from there."""
    utc = datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=timezone.utc)
    east = utc.astimezone(timezone(timedelta(hours=2)))
    assert render.iso(utc) == "2026-01-02T03:04:05Z" == render.iso(utc)
    assert render.iso(east) == "2026-01-02T05:04:05Z"  # upstream's text, as before: its fields
    assert render.status_time(utc) == "2026-01-02 03:04:00"
    assert render.status_time(east) == "2026-01-02 05:04:00"
    assert render.iso(None) is None


def test_a_rows_times_print_the_fields_of_their_zone_as_iso_does() -> None:
    """``row_values`` answers UTC times from ``iso``'s cache itself (the status hot path): a
    time in another zone at an instant printed before in UTC still prints its own fields."""
    utc = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    east = utc.astimezone(timezone(timedelta(hours=2)))
    times = ("next_run", "last_success", "slot", "started", "finished")
    for when in (utc, east):  # the UTC instant printed (and remembered) first
        fields = dict.fromkeys(times, when)
        record = ImageRecord("p/a", when, **fields)  # type: ignore[arg-type]
        row = render.status_row(when, record, None)
        keys = ("next_run", "last_success", "last_attempt_slot", "last_attempt_start")
        printed = [row[key] for key in (*keys, "last_attempt_end")]
        assert printed == ["2026-01-02T05:04:05Z" if when is east else render.iso(utc)] * 5


def test_a_status_row_has_render_keys_and_a_paused_one_paused_by() -> None:
    """``ROW_KEYS`` and ``row_values`` are the one list of a row's keys and values (the status
    rows' templates are derived from them): ``paused_by`` only for a paused image."""
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    record = ImageRecord("p/a", now, started=now, slot=now)
    assert len(render.row_values(now, record, None)) == len(render.ROW_KEYS)
    assert set(render.ROW_KEYS) >= render.OMITTED_IF_NONE
    assert not set(render.CLOCK_KEYS) & set(render.ROW_KEYS)
    plain = render.status_row(now, record, None)
    assert set(plain) == set(render.ROW_KEYS) - {"paused_by"}
    assert plain["last_result"] == "running" and plain["last_attempt_end"] is None
    paused = render.status_row(now, record, LevelSpec(1, None, None, "p/"))
    assert paused == {**plain, "paused_by": "p/"}
    assert set(render.record_fields(record)) == set(plain) - {"schedule_time", "image"}
