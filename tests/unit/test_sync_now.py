"""Sync now for DR tooling: ``snapshot-now``'s machine-readable answer and
``snapshot-now-status``, against the fake cluster and an injected clock (sync.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from rbd_snapsched import sync
from rbd_snapsched.commands import respond
from rbd_snapsched.errors import InvalidArgument
from tests.unit.harness import START, Setup

SECOND = timedelta(seconds=1)


def test_requested_at_is_the_next_whole_second_and_no_request_starts_before_it() -> None:
    s = Setup(hold=True)
    a = s.cluster.add_image(s.pool, "a")
    s.clock.set(START + timedelta(milliseconds=300))
    requested = s.handler.snapshot_now(s.handler.resolve("rbd/"))
    assert requested.requested_at == START + SECOND
    # The handler waited for it on the clock before any request started.
    assert s.clock.waits[-1] == START + SECOND
    assert s.driver.started == [a]
    on_a_second = Setup()
    on_a_second.cluster.add_image(on_a_second.pool, "a")
    assert on_a_second.handler.snapshot_now(on_a_second.handler.resolve("")).requested_at == START
    assert on_a_second.clock.waits == []  # already a whole second: no wait


def test_the_json_answer_names_what_was_asked_and_what_was_skipped_and_why() -> None:
    s = Setup(hold=True, max_concurrent=1)
    s.cluster.add_image(s.pool, "a")
    s.cluster.add_image(s.pool, "b", "ns")
    other = s.cluster.add_pool("other")
    s.cluster.add_image(other, "c")
    other.tx_peer = False
    s.add("other/", "1d")  # a refresh learns that its pool has no tx peer
    s.handler.tick()
    first = s.handler.snapshot_now(s.handler.resolve(""))
    again = s.handler.snapshot_now(s.handler.resolve(""))
    assert json.loads(respond(first.json())) == {
        "level": "",
        "requested_at": "2025-12-10T17:55:21Z",
        "images": 3,
        "requested": ["rbd/a", "rbd/ns/b"],
        "skipped": [{"image": "other/c", "reason": "no_tx_peer"}],
        "running": 1,
    }
    assert again.json()["requested"] == []
    assert again.json()["skipped"] == [
        {"image": "other/c", "reason": "no_tx_peer"},
        {"image": "rbd/a", "reason": "in_flight"},
        {"image": "rbd/ns/b", "reason": "in_flight"},
    ]
    assert first.text() == (
        "snapshot requested for 2 image(s) under (global) (1 in pools without a tx peer, "
        "skipped); 1 request(s) running now"
    )


def test_status_is_pending_until_each_image_has_a_snapshot_taken_since() -> None:
    s = Setup(hold=True, max_concurrent=1)
    a = s.cluster.add_image(s.pool, "a")
    b = s.cluster.add_image(s.pool, "b")
    s.cluster.rbd.images[a].newest_mirror_snapshot = START - timedelta(hours=1)
    level = s.handler.resolve("rbd/")
    requested = s.handler.snapshot_now(level)
    status = s.handler.sync_status(level, requested.requested_at)
    assert (status.pending, status.done, status.complete) == (("rbd/a", "rbd/b"), (), False)
    s.clock.advance(2 * SECOND)
    s.driver.release()  # a's snapshot is taken, then b starts
    status = s.handler.sync_status(level, requested.requested_at)
    assert status.done == (("rbd/a", START + 2 * SECOND),) and status.pending == ("rbd/b",)
    s.driver.release()
    status = s.handler.sync_status(level, requested.requested_at)
    assert status.complete and [image for image, _ in status.done] == ["rbd/a", "rbd/b"]
    assert status.json() == {
        "level": "rbd/",
        "since": "2025-12-10T17:55:21Z",
        "images": 2,
        "complete": True,
        "done": [
            {"image": "rbd/a", "snapshot_time": "2025-12-10T17:55:23Z"},
            {"image": "rbd/b", "snapshot_time": "2025-12-10T17:55:23Z"},
        ],
        "pending": [],
        "failed": [],
    }
    assert status.text() == (
        "2 of 2 image(s) under rbd/ have a mirror snapshot taken since 2025-12-10T17:55:21Z"
    )
    assert s.cluster.rbd.images[b].snap_ids  # from the images themselves


def test_a_snapshot_from_before_the_request_does_not_count() -> None:
    s = Setup(hold=True)
    a = s.cluster.add_image(s.pool, "a")
    s.cluster.rbd.images[a].newest_mirror_snapshot = START - SECOND
    level = s.handler.resolve("rbd/a")
    requested = s.handler.snapshot_now(level)
    assert s.handler.sync_status(level, requested.requested_at).pending == ("rbd/a",)
    later = s.handler.sync_status(level, requested.requested_at - 2 * SECOND)
    assert later.done == (("rbd/a", START - SECOND),)


def test_a_failed_request_since_is_named_with_its_error_for_a_scheduled_image() -> None:
    s = Setup()
    a = s.cluster.add_image(s.pool, "a")
    s.cluster.rbd.images[a].newest_mirror_snapshot = START - timedelta(days=1)
    s.add("rbd/", "1d")
    s.handler.tick()
    s.cluster.rbd.images[a].create_rc = -16
    level = s.handler.resolve("rbd/")
    requested = s.handler.snapshot_now(level)
    status = s.handler.sync_status(level, requested.requested_at)
    assert status.pending == () and not status.complete
    ((image, error),) = status.failed
    assert image == "rbd/a" and error.startswith("failed")
    assert "rbd/a (failed" in status.text()
    # A failure from before the request is not this request's: pending again after one.
    assert s.handler.sync_status(level, requested.requested_at + SECOND).pending == ("rbd/a",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-06T19:30:12Z", datetime(2026, 12, 6, 19, 30, 12, tzinfo=timezone.utc)),
        ("2026-12-06T19:30:12", datetime(2026, 12, 6, 19, 30, 12, tzinfo=timezone.utc)),
        ("2026-12-06T21:30:12+02:00", datetime(2026, 12, 6, 19, 30, 12, tzinfo=timezone.utc)),
        (" 2026-12-06 19:30:12z ", datetime(2026, 12, 6, 19, 30, 12, tzinfo=timezone.utc)),
    ],
)
def test_requested_at_parses_as_printed_and_as_iso_8601(text: str, expected: datetime) -> None:
    assert sync.parse_since(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "19:30", "2026-13-01T00:00:00Z", "1e9"])
def test_a_bad_requested_at_is_einval_with_the_form_to_use(text: str) -> None:
    with pytest.raises(InvalidArgument, match="expected a date-time like 2026-12-06T19:30:12Z"):
        sync.parse_since(text)
