"""Catch-up: a newly known image whose newest mirror snapshot is older than its interval gets
one snapshot at once (module start, failover, blocklist recovery, promotion), then its slots."""

from __future__ import annotations

from datetime import timedelta

from rbd_snapsched.requests import OutcomeKind
from tests.unit.harness import START, Setup


def kinds(s: Setup) -> list[OutcomeKind]:
    return [outcome.kind for _, outcome in s.driver.outcomes]


def test_an_image_behind_its_interval_gets_one_snapshot_at_start_then_its_slots() -> None:
    s = Setup()
    image = s.cluster.add_image(s.pool, "a")
    s.cluster.rbd.images[image].newest_mirror_snapshot = START - timedelta(days=3)
    s.add("rbd/", "1d")
    s.handler.tick()  # the first pass: discovery, then the catch-up, at START
    assert s.created() == {image: 1}  # one, not one per missed day
    assert s.status() == [("2025-12-11 00:00:00", "rbd/a")]
    s.run_until(START + timedelta(days=1))
    assert s.created() == {image: 2}  # then its slot


def test_an_image_with_a_recent_snapshot_waits_for_its_slot() -> None:
    s = Setup()
    image = s.cluster.add_image(s.pool, "a")
    s.cluster.rbd.images[image].newest_mirror_snapshot = START - timedelta(hours=3)
    s.add("rbd/", "1d")
    s.handler.tick()
    assert s.created() == {} and kinds(s) == [OutcomeKind.SKIPPED_RECENT]


def test_no_catch_up_when_the_slot_is_within_a_minute() -> None:
    s = Setup()
    image = s.cluster.add_image(s.pool, "a")
    s.cluster.rbd.images[image].newest_mirror_snapshot = START - timedelta(days=3)
    s.add("rbd/", "1m")
    s.handler.tick()
    assert s.driver.started == []  # the slot at 17:56 comes anyway
    s.run_until(START + timedelta(minutes=1))
    assert s.created() == {image: 1}


def test_a_restart_catches_up_and_a_promotion_too() -> None:
    s = Setup()
    image = s.cluster.add_image(s.pool, "a", primary=False)
    s.add("rbd/", "1h")
    s.handler.tick()
    assert s.status() == []  # not primary: not ours to snapshot
    fake = s.cluster.rbd.images[image]
    fake.primary = True  # promoted, but its newest mirror snapshot is old (no promote one)
    fake.newest_mirror_snapshot = START - timedelta(hours=2)
    s.clock.advance(timedelta(minutes=2))
    s.handler.refresh()
    s.handler.tick()
    assert s.created() == {image: 1}
    # A new handler (mgr restart): the snapshot just taken is recent, nothing more.
    fake.newest_mirror_snapshot = s.clock.now()
    s.handler = s.make_handler()
    s.handler.tick()
    assert s.created() == {image: 1}
    assert kinds(s)[-1] is OutcomeKind.SKIPPED_RECENT


def test_paused_images_wait_for_resume_to_catch_up() -> None:

    s = Setup()
    image = s.cluster.add_image(s.pool, "a")
    s.cluster.rbd.images[image].newest_mirror_snapshot = START - timedelta(days=3)
    s.add("rbd/", "1d")
    s.handler.pause(s.handler.resolve("rbd/"))
    s.handler.tick()
    assert s.created() == {}
    s.handler.resume(s.handler.resolve("rbd/"))
    s.run_until(START + timedelta(days=1))
    assert s.created() == {image: 1}  # at its slot: the pause held the catch-up


def test_a_catch_up_held_by_a_pause_does_not_turn_the_next_slot_into_a_check() -> None:
    # The 60-minute soak at seed 1407149993 (2026-12-07): the client was blocklisted while a
    # namespace was paused; the new handler marked its images for the catch-up check, the
    # pause held them, and after the resume each image's next slot was taken as that check
    # (a snapshot within the interval: skipped). Three images lost their 07:55 slot.
    s = Setup()
    image = s.cluster.add_image(s.pool, "a", "ns")
    s.cluster.rbd.images[image].newest_mirror_snapshot = START - timedelta(minutes=2)
    s.add("rbd/ns/", "5m")
    s.handler.pause(s.handler.resolve("rbd/ns/"))
    s.handler.tick()  # newly known: due a catch-up check now, held by the pause
    s.run_until(START + timedelta(seconds=8))
    s.handler.resume(s.handler.resolve("rbd/ns/"))
    s.run_until(START.replace(minute=0, hour=18, second=30))
    assert kinds(s) == [OutcomeKind.CREATED]  # the 18:00 slot, not a skipped check
    s.run_until(START.replace(minute=5, hour=18, second=30))
    assert s.created() == {image: 2}
