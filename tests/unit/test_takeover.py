"""Coexisting with rbd_support: its images are not ours until its schedules are taken over."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest

from rbd_snapsched.errors import SnapSchedError
from rbd_snapsched.levels import LevelSpec
from rbd_snapsched.schedule import Schedule
from rbd_snapsched.store import SCHEDULE_OID, UPSTREAM_SCHEDULE_OID
from tests.unit.harness import START, Setup

HOURLY = b'[{"interval": "1h", "start_time": null}]'


def upstream_records(s: Setup) -> dict[str, bytes]:
    return s.pool.objects.get(UPSTREAM_SCHEDULE_OID, {})


class UpstreamRemover:
    """What the module does through rbd_support's own remove command."""

    def __init__(self, s: Setup) -> None:
        self.s = s
        self.removed: list[LevelSpec] = []

    def __call__(self, level: LevelSpec) -> str:
        self.s.upstream.save(level, Schedule())
        self.removed.append(level)
        return ""


@pytest.fixture
def s() -> Setup:
    return Setup()


def test_images_rbd_support_schedules_are_left_to_it(s: Setup) -> None:
    a = s.cluster.add_image(s.pool, "a")
    b = s.cluster.add_image(s.pool, "b", "ns")
    s.pool.objects[UPSTREAM_SCHEDULE_OID] = {f"{s.pool.id}/ns": HOURLY}
    health: list[dict[str, dict[str, object]]] = []
    s.handler.on_health = health.append
    s.add("rbd/", "1m")
    s.run_until(START + timedelta(minutes=3))
    assert Counter(s.driver.started) == Counter({a: 3})  # b is rbd_support's
    assert [name for _, name in s.status()] == ["rbd/a"]
    check = health[-1]["RBD_SNAPSCHED_RBD_SUPPORT_SCHEDULES"]
    assert check["count"] == 1
    assert "ceph rbd mirror snapshot schedule takeover" in str(check["detail"])
    assert b not in s.driver.started


def test_takeover_moves_every_level_then_clears_the_warning(s: Setup) -> None:
    a = s.cluster.add_image(s.pool, "a")
    s.cluster.add_image(s.pool, "b", "ns")
    s.pool.objects[UPSTREAM_SCHEDULE_OID] = {
        f"{s.pool.id}/ns": HOURLY,
        f"{s.pool.id}//{a.image_id}": b'[{"interval": "1d", "start_time": "14:00:00-05:00"}]',
        f"{s.pool.id}//gone": HOURLY,  # stale: reported, not copied
    }
    s.upstream_option.value = '[{"interval": "1m", "start_time": null}]'
    s.add("rbd/ns/", "2h")  # ours already has this level: items are merged
    health: list[dict[str, dict[str, object]]] = []
    s.handler.on_health = health.append
    s.handler.tick()
    assert health[-1]

    dry = s.handler.take_over(dry_run=True, remove_upstream=lambda level: "")
    assert dry[:3] == [
        "would move (global): every 1m",
        "would move rbd/a: every 1d starting at 14:00:00-05:00",
        "  note: rbd/a: start times now fire in UTC, offsets applied correctly "
        "(rbd_support used mgr-local time and added the offset)",
    ]
    assert dry[3:] == [
        "would move rbd/ns/: every 1h",
        "not copied: pool rbd key '1//gone': its level no longer exists "
        "(image gone does not exist in rbd/)",
    ]
    assert len(upstream_records(s)) == 3 and s.upstream_option.value  # dry run: nothing moved

    remover = UpstreamRemover(s)
    lines = s.handler.take_over(dry_run=False, remove_upstream=remover)
    assert [line.split(":")[0] for line in lines if not line.startswith(" ")] == [
        "moved (global)",
        "moved rbd/a",
        "moved rbd/ns/",
        "not copied",
    ]
    assert {level.name for level in remover.removed} == {"", "rbd/a", "rbd/ns/"}
    assert set(upstream_records(s)) == {f"{s.pool.id}//gone"} and s.upstream_option.value is None
    ours = s.handler.list_schedules(LevelSpec.global_level(), lambda level: True)
    assert {e["name"]: e["schedule"] for e in ours.values()} == {
        "": [{"interval": "1m", "start_time": None}],
        "rbd/a": [{"interval": "1d", "start_time": "14:00:00-05:00"}],
        "rbd/ns/": [
            {"interval": "1h", "start_time": None},
            {"interval": "2h", "start_time": None},
        ],
    }
    assert json.loads(s.pool.objects[SCHEDULE_OID][f"{s.pool.id}/ns"]) == [
        {"interval": "1h", "start_time": None},
        {"interval": "2h", "start_time": None},
    ]
    s.handler.tick()
    assert health[-1] == {}  # the stale key is rbd_support's to prune; nothing live is left
    assert [name for _, name in s.status()] == ["rbd/ns/b", "rbd/a"]
    # Idempotent: a second run finds nothing live to move.
    again = s.handler.take_over(dry_run=False, remove_upstream=remover)
    assert [line for line in again if line.startswith("moved")] == []


def test_interrupted_takeover_loses_nothing_and_doubles_nothing(s: Setup) -> None:
    a = s.cluster.add_image(s.pool, "a")
    s.pool.objects[UPSTREAM_SCHEDULE_OID] = {f"{s.pool.id}": b'[{"interval": "1m"}]'}

    def crash(level: LevelSpec) -> str:
        raise SnapSchedError("mgr failed over mid-takeover")

    with pytest.raises(SnapSchedError):
        s.handler.take_over(dry_run=False, remove_upstream=crash)
    # Ours was written, theirs kept: the image stays rbd_support's alone.
    assert f"{s.pool.id}" in s.pool.objects[SCHEDULE_OID]
    assert f"{s.pool.id}" in upstream_records(s)
    s.run_until(START + timedelta(minutes=3))
    assert a not in s.driver.started
    # A rerun completes it; from then on the image is ours.
    s.handler.take_over(dry_run=False, remove_upstream=UpstreamRemover(s))
    assert upstream_records(s) == {}
    s.run_until(START + timedelta(minutes=6))
    assert Counter(s.driver.started)[a] == 3


def test_adopt_moves_what_rbd_support_holds_once_and_then_does_nothing(s: Setup) -> None:
    """``adopt_rbd_support_schedules``: a schedule the dashboard writes to rbd_support's storage
    is moved into ours after the refresh that finds it, by takeover's rules; then, with nothing
    held, no I/O at all."""
    s.cluster.add_image(s.pool, "b", "ns")
    remover = UpstreamRemover(s)
    s.handler.tick()
    assert s.handler.adopt_upstream(remover) == []  # nothing held: nothing done
    s.pool.objects[UPSTREAM_SCHEDULE_OID] = {f"{s.pool.id}/ns": HOURLY}  # the dashboard
    s.handler.request_refresh()
    s.handler.tick()
    assert s.status() == []  # rbd_support's until adopted
    assert s.handler.adopt_upstream(remover) == ["moved rbd/ns/: every 1h"]
    assert [level.name for level in remover.removed] == ["rbd/ns/"]
    s.handler.tick()  # the refresh takeover asks for
    assert [name for _, name in s.status()] == ["rbd/ns/b"]
    assert s.handler.adopt_upstream(remover) == [] and len(remover.removed) == 1
