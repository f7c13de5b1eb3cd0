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
