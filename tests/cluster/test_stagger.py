"""Staggering on each release (the ``stagger`` module option, upstream main's PR 66758).

Upstream's qa, on a real cluster: 60 images at ``5m`` without a start time show exactly 5
distinct next-run minutes in ``rbd mirror snapshot schedule status``, 60 s apart (6 only when
the read straddles a minute boundary), each image at its own phase (CRC-32 of its ids), while
images with a start time share one slot. Then one real staggered slot, and the option off again.
Waits for one minute boundary at most (about 70 s).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

import pytest

from rbd_snapsched.schedule import stagger_key
from tests.cephcluster import Cluster
from tests.cluster.helpers import (
    EPOCH,
    PROMPT,
    Pools,
    config_restore,
    in_parallel,
    make_images,
    raw,
    sched,
    status_json,
    wait_until,
)
from tests.slots import utcnow

pytestmark = pytest.mark.ceph_cluster

STAGGER_OPTION = "mgr/rbd_snapsched/stagger"
IMAGES = 60
TIMED = ("img07", "img08")  # image-level schedules with a start time
FIVE = timedelta(minutes=5)
MINUTE = timedelta(minutes=1)


def parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)


def image_ids(cluster: Cluster, pool: str, names: list[str]) -> dict[str, str]:
    ids: dict[str, str] = {}

    def one(name: str) -> None:
        info = json.loads(cluster.run("rbd", "info", f"{pool}/{name}", "--format", "json").stdout)
        ids[name] = str(info["id"])

    in_parallel(*(partial(one, name) for name in names))
    return ids


def raw_rows(cluster: Cluster, level: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(raw(cluster, "status", level).stdout)[
        "scheduled_images"
    ]
    return rows


def read_status(cluster: Cluster, pool: str) -> tuple[dict[str, datetime], bool]:
    """Each image's schedule time from the ``rbd`` CLI, and whether the read straddled a
    minute boundary (a period boundary of some phase)."""
    before = utcnow()
    rows = status_json(cluster, "-p", pool)
    after = utcnow()
    times = {row["image"].split("/")[-1]: parse(row["schedule_time"]) for row in rows}
    straddled = before.replace(second=0, microsecond=0) != after.replace(second=0, microsecond=0)
    return times, straddled


def settled(cluster: Cluster, pool: str) -> Callable[[], bool]:
    """A predicate: every image listed at a slot still ahead, and the same as at the last
    poll (catch-up entries, queued at 'now' and gone at the thread's next pass, are over)."""
    last: dict[str, datetime] = {}

    def check() -> bool:
        times, _ = read_status(cluster, pool)
        floor = utcnow().replace(second=0, microsecond=0)
        ahead = all(t > floor - timedelta(seconds=1) for t in times.values())
        same = times == last
        last.clear()
        last.update(times)
        return len(times) == IMAGES and ahead and same

    return check


def test_stagger_spreads_60_images_over_5m_and_start_times_keep_their_slot(
    cluster: Cluster, pools: Pools
) -> None:
    pool = pools.rbd("p")
    names = [f"img{i:02d}" for i in range(IMAGES)]
    make_images(cluster, *(f"{pool}/{name}" for name in names))
    pool_id = next(
        int(p["pool_id"])
        for p in cluster.ceph_json("osd", "pool", "ls", "detail")
        if p["pool_name"] == pool
    )
    ids = image_ids(cluster, pool, names)
    phase = {name: stagger_key(pool_id, "", ids[name]) % 5 for name in names}
    cluster.run("ceph", "config", "set", "mgr", STAGGER_OPTION, "true")
    try:
        sched(cluster, "add", "-p", pool, "5m")
        for name in TIMED:
            sched(cluster, "add", "-p", pool, "--image", name, "5m", "00:02")
        wait_until(settled(cluster, pool), PROMPT + 10, "60 images at their slots")

        times, straddled = read_status(cluster, pool)
        timed = {times.pop(name) for name in TIMED}
        (shared_slot,) = timed  # one slot for both, on the start time's grid
        assert (shared_slot - EPOCH) % FIVE == 2 * MINUTE
        distinct = sorted(set(times.values()))
        assert len(distinct) == 5 or (straddled and len(distinct) == 6), (distinct, straddled)
        assert [b - a for a, b in zip(distinct, distinct[1:])] == [MINUTE] * (len(distinct) - 1)
        for name, due in times.items():  # the module's phases are the CRC-32 ones
            assert (due.minute - phase[name]) % 5 == 0, (name, due, phase[name])

        # One real staggered slot: only that minute's phase is snapshotted at it.
        now = utcnow()
        boundary = now.replace(second=0, microsecond=0) + MINUTE
        due_now = {n for n, t in times.items() if t == boundary}
        assert due_now, "every phase has a slot within 5 minutes"
        if (boundary - EPOCH) % FIVE == 2 * MINUTE:
            due_now |= set(TIMED)  # the start time's slot too
        slot = boundary.strftime("%Y-%m-%dT%H:%M:%SZ")

        def slot_done() -> bool:
            rows = {r["image"].split("/")[-1]: r for r in raw_rows(cluster, f"{pool}/")}
            return all(
                rows[n]["last_attempt_slot"] == slot and rows[n]["last_result"] == "created"
                for n in due_now
            )

        wait_until(slot_done, (boundary - now).total_seconds() + 20, f"the {slot} slot")
        rows = {r["image"].split("/")[-1]: r for r in raw_rows(cluster, f"{pool}/")}
        assert {n for n, r in rows.items() if r["last_attempt_slot"] == slot} == due_now
        following = (boundary + FIVE).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert all(rows[n]["next_run"] == following for n in due_now)

        # Off again: every image back on the shared slot at once (a runtime option).
        cluster.run("ceph", "config", "set", "mgr", STAGGER_OPTION, "false")

        def shared() -> bool:
            times, _ = read_status(cluster, pool)
            untimed = {t for n, t in times.items() if n not in TIMED}
            return len(times) == IMAGES and len(untimed) == 1

        wait_until(shared, PROMPT + 10, "one shared slot with stagger off")
        times, _ = read_status(cluster, pool)
        (still,) = {times[n] for n in TIMED}  # moved on by 5m if the slot above was theirs
        assert (still - EPOCH) % FIVE == 2 * MINUTE
        (untimed,) = {t for n, t in times.items() if n not in TIMED}
        assert untimed.minute % 5 == 0
    finally:
        config_restore(cluster, STAGGER_OPTION, "false")
