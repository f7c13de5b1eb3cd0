"""Per-image results through the handler: status fields, seeding, health on time, metrics."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rbd_snapsched import metrics
from rbd_snapsched.requests import MIRROR_IMAGE_MODE_SNAPSHOT
from tests.unit.harness import START, Setup

NEXT = START.replace(second=0) + timedelta(minutes=1)  # 17:56:00, the first 1m slot


def status_rows(s: Setup, level: str = "") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = s.handler.status(s.handler.resolve(level), lambda i: True)[
        "scheduled_images"
    ]
    return rows


def published(s: Setup) -> list[dict[str, dict[str, Any]]]:
    seen: list[dict[str, dict[str, Any]]] = []
    s.handler.on_health = seen.append
    return seen


def test_status_adds_results_beside_upstreams_keys() -> None:
    s = Setup()
    a = s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1m")
    s.handler.tick()
    (row,) = status_rows(s)
    assert row["schedule_time"] == "2025-12-10 17:56:00" and row["image"] == "rbd/a"
    assert row["next_run"] == "2025-12-10T17:56:00Z"
    assert row["last_success"] is None and row["last_result"] == "none"
    assert row["lateness_seconds"] == 0 and row["late"] is False and row["missed_slots"] == 0

    s.run_until(NEXT)
    (row,) = status_rows(s)
    assert row["last_success"] == "2025-12-10T17:56:00Z"
    assert row["last_attempt_slot"] == "2025-12-10T17:56:00Z"
    assert row["last_attempt_start"] == row["last_attempt_end"] == "2025-12-10T17:56:00Z"
    assert row["last_result"] == "created" and row["next_run"] == "2025-12-10T17:57:00Z"

    s.cluster.image(a).create_rc = -5
    s.run_until(NEXT + timedelta(minutes=2))
    (row,) = status_rows(s)
    assert row["last_result"] == "failed" and row["failures_in_a_row"] == 2
    assert row["last_failed_step"] == "create_snapshot" and row["last_errno"] == 5
    assert "rc=-5" in row["last_error"] and row["missed_slots"] == 2
    assert row["lateness_seconds"] == 120 and row["late"] is True


def test_last_success_is_seeded_from_the_newest_mirror_snapshot_after_a_restart() -> None:
    s = Setup()
    a = s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1h")
    s.cluster.image(a).newest_mirror_snapshot = START - timedelta(minutes=20)
    s.handler = s.make_handler()  # a restart: nothing known but what the cluster holds
    s.handler.tick()
    assert s.cluster.seeded == [a]
    (row,) = status_rows(s)
    assert row["last_success"] == "2025-12-10T17:35:21Z"
    assert row["lateness_seconds"] == 20 * 60 and row["late"] is False


def test_seeding_goes_in_batches_between_slots() -> None:
    s = Setup()
    for i in range(70):
        s.cluster.add_image(s.pool, f"img{i}")
    s.add("rbd/", "1h")
    deadline = s.handler.tick()
    assert len(s.cluster.seeded) == 32 and deadline == START  # more to read: at once
    s.handler.tick()
    assert s.handler.tick() != START and len(s.cluster.seeded) == 70


def test_late_is_raised_on_time_without_any_request_finishing() -> None:
    s = Setup()
    s.handler.set_late_factor(1.5)
    s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1h")
    health = published(s)
    s.handler.tick()
    s.cluster.image(next(iter(s.cluster.rbd.images))).create_rc = -22
    # Known at START, no snapshot: late at START + 90 minutes, told right then.
    deadline = s.handler.tick()
    assert deadline is not None
    s.run_until(START + timedelta(minutes=89))
    assert all("RBD_SNAPSCHED_LATE" not in h for h in health)
    s.run_until(START + timedelta(minutes=90))
    late = health[-1]["RBD_SNAPSCHED_LATE"]
    assert late["count"] == 1
    assert (
        late["summary"] == "1 image(s) without a mirror snapshot for more than 1.5x their interval"
    )
    assert late["detail"] == [
        "image rbd/a: no mirror snapshot for 1h30m since it became known "
        "(interval 1h00m, 2 slot(s) missed)"
    ]
    failing = health[-1]["RBD_SNAPSCHED_FAILING"]["detail"][0]
    assert failing.startswith(
        "image rbd/a: 2 attempt(s) failed in a row, last at 2025-12-10T19:00:00Z"
    )
    assert "in step create_snapshot: error when creating mirror snapshot: rc=-22" in failing


def test_late_and_failing_clear_at_the_first_success() -> None:
    s = Setup()
    a = s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1m")
    health = published(s)
    s.cluster.image(a).create_rc = -5
    s.run_until(NEXT + timedelta(minutes=3))
    assert {"RBD_SNAPSCHED_LATE", "RBD_SNAPSCHED_FAILING"} <= set(health[-1])
    s.cluster.image(a).create_rc = 0
    s.run_until(NEXT + timedelta(minutes=4))  # the slot's success...
    s.run_until(NEXT + timedelta(minutes=4, seconds=1))  # ...told within the debounce
    assert health[-1] == {}


def test_paused_images_are_not_late_their_pause_is_the_warning() -> None:
    s = Setup()
    s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1m")
    health = published(s)
    s.handler.pause(s.handler.resolve("rbd/"))
    s.run_until(NEXT + timedelta(minutes=10))
    assert set(health[-1]) == {"RBD_SNAPSCHED_PAUSED"}
    (row,) = status_rows(s)
    assert row["late"] is True and row["missed_slots"] == 11  # but status tells the truth


def test_health_is_republished_with_fresh_lateness_not_on_every_request() -> None:
    s = Setup()
    images = [s.cluster.add_image(s.pool, f"img{i}") for i in range(20)]
    for image in images:
        s.cluster.image(image).create_rc = -5
    s.add("rbd/", "1m")
    health = published(s)
    s.run_until(NEXT + timedelta(minutes=30))
    # 31 slots x 20 failed requests, but health moves with the minutes, not the requests.
    assert len(health) < 70
    assert health[-1]["RBD_SNAPSCHED_LATE"]["detail"][0].startswith(
        "image rbd/img0: no mirror snapshot for 30m"
    )


def test_detail_is_capped_and_names_the_worst_first() -> None:
    s = Setup()
    ns = [s.cluster.add_image(s.pool, f"n{i:02d}") for i in range(40)]
    old = s.cluster.add_image(s.pool, "zz-old")
    s.cluster.image(old).newest_mirror_snapshot = START - timedelta(hours=5)
    s.cluster.pools[s.pool.id].tx_peer = False
    s.add("rbd/", "1m")
    health = published(s)
    s.run_until(NEXT + timedelta(minutes=5))
    late = health[-1]["RBD_SNAPSCHED_LATE"]
    assert late["count"] == len(ns) + 1 and len(late["detail"]) == 30
    assert late["detail"][0].startswith("image rbd/zz-old: no mirror snapshot for 5h")
    assert late["detail"][-1] == "and 12 more"


def test_report_is_a_table_latest_first() -> None:
    s = Setup()
    a = s.cluster.add_image(s.pool, "a")
    s.cluster.add_image(s.pool, "b")
    s.add("rbd/", "1m")
    s.run_until(NEXT)
    s.cluster.image(a).create_rc = -5
    s.run_until(NEXT + timedelta(minutes=1))
    text = s.handler.report(s.handler.resolve(""), lambda i: True)
    header, first, second = text.splitlines()
    assert header.split() == [
        "IMAGE",
        "NEXT",
        "RUN",
        "LAST",
        "SUCCESS",
        "AGO",
        "LATE",
        "MISSED",
        "LAST",
    ]
    assert first.split()[0] == "rbd/a" and first.endswith("failed x1")
    assert second.split()[0] == "rbd/b" and second.endswith("created")


def test_metrics_sample_counts_per_pool_and_bounds_per_image_series() -> None:
    s = Setup()
    a = s.cluster.add_image(s.pool, "a")
    s.cluster.add_image(s.pool, "b", "ns")
    other = s.cluster.add_pool("other")
    s.cluster.add_image(other, "c")
    s.cluster.add_image(other, "journal", mode=MIRROR_IMAGE_MODE_SNAPSHOT + 5)
    s.add("rbd/", "1m")
    s.add("other/", "1h")
    s.cluster.image(a).create_rc = -5
    s.run_until(NEXT + timedelta(minutes=2))
    sample = s.handler.metrics(image_limit=10)
    assert sample.pools["rbd"] == metrics.PoolSample(2, 1, 1, 0, NEXT.timestamp() + 120)
    assert sample.pools["other"].images == 1 and sample.pools["other"].oldest_success is None
    assert sample.results[("rbd", "created", "created")] == 3
    assert sample.results[("rbd", "failed", "create_snapshot")] == 3
    # 6 slot requests, and other/c's catch-up at start (it has a recent snapshot: skipped)
    assert sample.latency_count == 7 and sample.known_images == 3
    assert sample.results[("other", "skipped", "recent_snapshot")] == 1
    assert sample.queue_length == 3 and sample.in_flight == 0 and sample.waiting == 0
    assert sample.heartbeat == (NEXT + timedelta(minutes=2)).timestamp()
    assert sample.last_refresh is not None and sample.refresh_duration == 0.0
    assert sample.images is not None
    by_name = {i.image: i for i in sample.images}
    assert by_name["rbd/a"].failing and by_name["rbd/a"].late
    assert by_name["rbd/ns/b"].next_run == (NEXT + timedelta(minutes=3)).timestamp()
    assert by_name["other/c"].last_success is None
    assert s.handler.metrics(image_limit=2).images is None  # 3 scheduled images > 2
    assert s.handler.metrics(image_limit=0).images is None


def test_a_snapshot_now_is_an_attempt_without_a_slot() -> None:
    s = Setup()
    a = s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1d")
    s.handler.tick()
    s.handler.snapshot_now(s.handler.resolve("rbd/a"))
    record = s.handler.image_record(a)
    assert record is not None and record.last_attempt is not None
    assert record.last_attempt.slot is None and record.last_success == START
    assert record.missed == 0


def test_a_scrape_that_sees_an_image_go_late_still_lets_health_tell_it() -> None:
    s = Setup(hold=True)  # its catch-up request never ends: nothing else publishes health
    s.handler.refresh_interval = 7 * 3600.0
    s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1h")
    health = published(s)
    s.handler.tick()
    s.clock.set(START + timedelta(hours=2, seconds=1))
    assert s.handler.metrics(10).pools["rbd"].late == 1  # the scrape advances the book...
    s.handler.tick()
    assert "RBD_SNAPSCHED_LATE" in health[-1]  # ...and the thread still raises the check


def test_the_same_factor_again_changes_nothing() -> None:
    s = Setup()
    s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1m")
    s.pool.tx_peer = False
    s.handler.tick()
    s.run_until(NEXT + timedelta(minutes=3))
    assert "RBD_SNAPSCHED_LATE" in s.handler.health_checks()
    s.handler.set_late_factor(2.0)  # config_notify for some other option
    assert "RBD_SNAPSCHED_LATE" in s.handler.health_checks()
    assert s.handler.metrics(10).pools["rbd"].late == 1
    s.handler.set_late_factor(10.0)
    s.run_until(NEXT + timedelta(minutes=3, seconds=2))
    assert "RBD_SNAPSCHED_LATE" not in s.handler.health_checks()


def test_paused_images_count_as_paused_not_late_in_metrics() -> None:
    s = Setup()
    s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1m")
    s.handler.pause(s.handler.resolve("rbd/"))
    s.run_until(NEXT + timedelta(minutes=5))
    pool = s.handler.metrics(10).pools["rbd"]
    assert (pool.images, pool.late, pool.failing, pool.paused) == (1, 0, 0, 1)


def test_paced_slots_skip_while_the_peer_lags_and_resume_when_it_syncs() -> None:
    s = Setup()
    s.driver.check_peer = True
    a = s.cluster.add_image(s.pool, "a")
    b = s.cluster.add_image(s.pool, "b")
    s.add("rbd/", "1m")
    health = published(s)
    s.cluster.image(b).sync()  # b's peer keeps up all along
    s.run_until(NEXT)  # both created: each peer now has one snapshot to sync
    assert [r["last_result"] for r in status_rows(s)] == ["created", "created"]
    s.cluster.image(b).sync()
    s.run_until(NEXT + timedelta(minutes=2))
    s.run_until(NEXT + timedelta(minutes=2, seconds=1))  # told within the debounce
    row_a, row_b = status_rows(s)
    assert row_a["last_result"] == "skipped: peer_lagging"
    assert row_a["peer_lag_skips_in_a_row"] == 2 and row_a["missed_slots"] == 2
    assert row_a["last_skip_detail"] == "peer f1e2d3c4-peer has 1 mirror snapshot(s) not synced yet"
    assert row_a["last_success"] == "2025-12-10T17:56:00Z"
    assert row_b["last_result"] == "skipped: peer_lagging"  # b synced once, then fell behind
    assert len(s.cluster.image(a).snap_ids) == 1  # nothing pushed at the lagging peer
    lagging = health[-1]["RBD_SNAPSCHED_PEER_LAGGING"]
    assert lagging["count"] == 2 and lagging["severity"] == "warning"
    assert lagging["detail"][0] == (
        "image rbd/a: 2 slot(s) skipped in a row, last at 2025-12-10T17:58:00Z: "
        "peer f1e2d3c4-peer has 1 mirror snapshot(s) not synced yet"
    )
    totals = s.handler.metrics(10).results
    assert totals[("rbd", "skipped", "peer_lagging")] == 3

    s.cluster.image(a).sync()
    s.cluster.image(b).sync()
    s.run_until(NEXT + timedelta(minutes=3))
    s.run_until(NEXT + timedelta(minutes=3, seconds=1))
    assert "RBD_SNAPSCHED_PEER_LAGGING" not in health[-1]
    assert [r["last_result"] for r in status_rows(s)] == ["created", "created"]
    assert [r["peer_lag_skips_in_a_row"] for r in status_rows(s)] == [0, 0]
    assert len(s.cluster.image(a).snap_ids) == 2


def test_pacing_off_creates_every_slot_whatever_the_peer() -> None:
    s = Setup()
    a = s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1m")
    s.run_until(NEXT + timedelta(minutes=3))
    assert len(s.cluster.image(a).snap_ids) == 4
    assert s.cluster.image(a).peer_links == {"f1e2d3c4-peer": 5}  # librbd's bound, not ours
