"""Pause and resume: persisted beside the schedules, honoured at every slot, shown everywhere."""

from __future__ import annotations

import errno
import json
import logging
from datetime import timedelta

import pytest

from rbd_snapsched.errors import NotFound
from rbd_snapsched.levels import LevelSpec
from rbd_snapsched.pauses import Pauses, PauseStore, covers
from rbd_snapsched.store import SCHEDULE_OID, ScheduleStore
from tests.fake_cluster import FakeOmap, FakeOption
from tests.unit.harness import START, Setup

LOG = logging.getLogger("test_pauses")


@pytest.fixture
def s() -> Setup:
    return Setup()


def test_a_paused_pool_gets_no_scheduled_snapshots_until_resumed(s: Setup) -> None:
    a = s.cluster.add_image(s.pool, "a")
    b = s.cluster.add_image(s.pool, "b", "ns")
    s.add("rbd/", "1m")
    s.handler.tick()
    out = s.handler.pause(s.handler.resolve("rbd/"))
    assert out == "paused rbd/: 2 scheduled image(s) under it"
    s.run_until(START + timedelta(minutes=10))
    assert s.created() == {}
    # Paused images keep their slots: status shows them, and which pause holds them.
    rows = s.handler.status(s.handler.resolve(""), lambda image: True)["scheduled_images"]
    assert [(r["image"], r["paused_by"]) for r in rows] == [("rbd/a", "rbd/"), ("rbd/ns/b", "rbd/")]
    assert s.handler.health_checks()["RBD_SNAPSCHED_PAUSED"]["detail"] == [
        "level rbd/ paused since 2025-12-10 17:55:00 UTC "
        "(ceph rbd mirror snapshot schedule resume 'rbd/')"
    ]
    s.handler.resume(s.handler.resolve("rbd/"))
    assert "RBD_SNAPSCHED_PAUSED" not in s.handler.health_checks()
    s.run_until(START + timedelta(minutes=12))
    assert s.created() == {a: 2, b: 2}


def test_a_pause_covers_only_what_lies_under_it(s: Setup) -> None:
    a = s.cluster.add_image(s.pool, "a")
    b = s.cluster.add_image(s.pool, "b", "ns")
    s.add("", "1m")
    s.handler.tick()
    s.handler.pause(s.handler.resolve("rbd/ns/"))
    s.run_until(START + timedelta(minutes=3))
    assert s.created() == {a: 3}
    assert covers(s.handler.resolve("rbd//"), a) and not covers(s.handler.resolve("rbd//"), b)
    assert covers(s.handler.resolve("rbd/"), b) and covers(s.handler.resolve(""), b)


def test_pauses_survive_a_restart_and_stay_out_of_the_schedule_records(s: Setup) -> None:
    s.cluster.add_image(s.pool, "a")
    s.add("rbd/", "1m")
    before = dict(s.pool.objects.get(SCHEDULE_OID, {}))
    s.handler.pause(s.handler.resolve("rbd/"))
    s.handler.pause(s.handler.resolve("rbd/"))  # twice: same pause, first time kept
    assert dict(s.pool.objects.get(SCHEDULE_OID, {})) == before
    stored = json.loads(s.pause_option.get() or "")
    assert stored == {s.handler.resolve("rbd/").id: {"name": "rbd/", "since": START.isoformat()}}
    # A new handler (mgr restart, failover, blocklist recovery) reads the pause back.
    s.clock.advance(timedelta(minutes=5))
    s.handler = s.make_handler()
    s.handler.tick()
    s.run_until(START + timedelta(minutes=10))
    assert s.created() == {}
    listed = s.handler.list_schedules(s.handler.resolve(""), lambda level: True)
    assert listed[s.handler.resolve("rbd/").id]["paused_since"] == START.isoformat()


def test_resume_of_a_level_that_is_not_paused_is_enoent_and_changes_nothing(
    s: Setup,
) -> None:
    s.cluster.add_image(s.pool, "a")
    s.handler.pause(s.handler.resolve("rbd/"))
    stored = s.pause_option.get()
    with pytest.raises(NotFound) as e:
        s.handler.resume(s.handler.resolve("rbd/ns/"))
    assert e.value.errno == errno.ENOENT and str(e.value) == "level rbd/ns/ is not paused"
    assert s.pause_option.get() == stored


def test_pauses_of_levels_that_are_gone_are_dropped_and_corrupt_ones_skipped() -> None:
    s = Setup()
    other = s.cluster.add_pool("other")
    s.handler.pause(s.handler.resolve("other/"))
    s.handler.pause(s.handler.resolve("rbd/"))
    s.cluster.remove_pool(other)
    store = PauseStore(s.pause_option, s.cluster, LOG)
    assert [level.name for level, _ in store.load()] == ["rbd/"]
    assert list(json.loads(s.pause_option.get() or "")) == [
        s.handler.resolve("rbd/").id
    ]  # rewritten
    s.pause_option.set(json.dumps({"junk": {"since": "x"}, s.handler.resolve("rbd/").id: {}}))
    assert not store.load()
    s.pause_option.set("not json")
    assert store.load() == Pauses()


def test_store_is_unused_by_schedules(s: Setup) -> None:
    # The schedule store never sees the pause option: its records keep rbd_support's format.
    store = ScheduleStore(FakeOmap(s.cluster, SCHEDULE_OID), FakeOption(), s.cluster, LOG)
    s.handler.pause(LevelSpec.global_level())
    assert list(store.load(s.cluster.rbd_pools()).catalog) == []
