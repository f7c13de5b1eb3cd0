"""Images in use (issue 12 part 3): a running client, like a VM, holds the image's exclusive lock.

The writer is a librbd client in the release's runtime (``WRITER`` below) writing 4 KiB blocks
and printing its progress and whether it owns the exclusive lock. librbd asks the lock owner to
create a mirror snapshot for us (a notify); a responsive owner does so and keeps writing. One that
does not answer (here SIGSTOPped) makes librbd retry without an error; ``snap_create_timeout``
bounds how long that holds a ``max_concurrent_snap_create`` slot.

Minute slots make these slow: each waits for two or three slots (bounds stated per wait).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.cephcluster import Cluster
from tests.cluster.helpers import (
    MAX_CONCURRENT_OPTION,
    PROMPT,
    SLOT_WAIT,
    MgrLog,
    Pools,
    config_restore,
    fetch,
    last_snap_id,
    make_images,
    new_primary_snapshots,
    next_slot,
    raw_status,
    sched,
    snap_time,
    status_json,
    wait_for_snapshots,
    wait_until,
)
from tests.slots import sleep_until

pytestmark = pytest.mark.ceph_cluster

TIMEOUT_OPTION = "mgr/rbd_snapsched/snap_create_timeout"
BOUND = 20  # seconds: snap_create_timeout while the owner is stopped
MINUTE = timedelta(minutes=1)
IMAGE_SIZE = "8M"

WRITER = r"""
import json, signal, sys, threading, time
import rados, rbd

conf, pool, name = sys.argv[1:4]
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
client = rados.Rados(conffile=conf)
client.connect()
ioctx = client.open_ioctx(pool)
image = rbd.Image(ioctx, name)
size = image.size()
block = b"w" * 4096
written, error, told = 0, None, 0.0

def owner():
    try:
        return image.is_exclusive_lock_owner()
    except Exception as e:
        return repr(e)

while not stop.is_set():
    try:
        image.write(block, (written * 4096) % size)
        written += 1
    except Exception as e:
        error = repr(e)
        break
    now = time.time()
    if now - told >= 0.5:
        print(json.dumps({"written": written, "owner": owner(), "t": now}), flush=True)
        told = now
    time.sleep(0.01)  # about 100 writes a second: a busy VM, not a benchmark on 2 cores
print(json.dumps({"written": written, "owner": owner(), "t": time.time(), "error": error,
                  "end": True}), flush=True)
for close in (image.close, ioctx.close, client.shutdown):
    try:
        close()
    except Exception:
        pass
"""


def note(text: str) -> None:
    """An observation worth reading in the test output (``-s``)."""
    print(f"[in_use] {text}", file=sys.stderr, flush=True)


class Writer:
    """A librbd client writing to one image in the cluster's release runtime."""

    def __init__(self, cluster: Cluster, pool: str, image: str) -> None:
        self.spec = f"{pool}/{image}"
        self.proc = subprocess.Popen(
            cluster.argv("/usr/bin/python3", "-c", WRITER, str(cluster.conf), pool, image),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.reports: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                report = json.loads(line)
                with self._lock:
                    self.reports.append(report)

    @property
    def last(self) -> dict[str, Any]:
        with self._lock:
            return dict(self.reports[-1]) if self.reports else {"written": 0, "owner": False}

    @property
    def written(self) -> int:
        return int(self.last["written"])

    def owner_seen(self, since: float) -> set[object]:
        """The lock ownership it reported since ``since`` (epoch seconds)."""
        with self._lock:
            return {r["owner"] for r in self.reports if r["t"] >= since}

    def wait_owning(self, timeout: float = 30) -> None:
        wait_until(
            lambda: self.last.get("owner") is True and self.written > 0,
            timeout,
            f"the writer of {self.spec} to own its exclusive lock and write",
        )

    def wait_progress(self, timeout: float = 15) -> None:
        """Wait until it has written more than it has now."""
        start = self.written
        wait_until(lambda: self.written > start, timeout, f"{self.spec}'s writer to write on")

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self, timeout: float = 30) -> dict[str, Any]:
        """Resume if stopped, ask it to close the image and exit; its last report."""
        if self.proc.poll() is None:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        if self.proc.stderr is not None:
            err = self.proc.stderr.read()
            self.proc.stderr.close()
            if err.strip():
                note(f"writer stderr: {err.strip()[-500:]}")
        return self.last


@contextlib.contextmanager
def writing(cluster: Cluster, pool: str, image: str) -> Iterator[Writer]:
    writer = Writer(cluster, pool, image)
    try:
        writer.wait_owning()
        yield writer
    finally:
        writer.stop()


def metric(cluster: Cluster, name: str) -> float | None:
    """One unlabelled sample of our metrics endpoint (None: not there, or not answering)."""
    code, body = fetch(cluster.metrics_url())
    if code != 200:
        return None
    match = re.search(rf"^{name} (\S+)$", body, re.M)
    return float(match.group(1)) if match else None


def nothing_open(cluster: Cluster) -> bool:
    return all(
        metric(cluster, f"rbd_snapsched_{n}") == 0
        for n in ("open_images", "open_ioctxs", "requests_timed_out_in_flight")
    )


def row(cluster: Cluster, spec: str) -> dict[str, Any]:
    """``spec``'s status row through the mgr command, with our extra keys (the rbd CLI drops
    them)."""
    (found,) = [r for r in raw_status(cluster, spec.split("/")[0] + "/") if r["image"] == spec]
    return found


def parse(when: str | None) -> datetime | None:
    return None if when is None else datetime.fromisoformat(when.replace("Z", "+00:00"))


@pytest.fixture
def snap_create_timeout(cluster: Cluster) -> Iterator[None]:
    """A low bound (BOUND) and one request at a time, during the test; defaults after."""
    cluster.run("ceph", "config", "set", "mgr", TIMEOUT_OPTION, str(BOUND))
    cluster.run("ceph", "config", "set", "mgr", MAX_CONCURRENT_OPTION, "1")
    try:
        yield
    finally:
        config_restore(cluster, TIMEOUT_OPTION, "60")
        config_restore(cluster, MAX_CONCURRENT_OPTION, "10")


def test_a_writer_holding_the_lock_gets_a_snapshot_each_slot_and_writes_on(
    cluster: Cluster, pools: Pools, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer holds the exclusive lock across three slots of a ``1m`` schedule: one primary
    mirror snapshot per slot, each at its slot, created by the owner on librbd's request, and
    the writer's progress grows after each (it is never blocked for long, nor blocklisted).

    Bounded waits: the writer owning its lock 30 s; each slot 2 x 60 s + 30 s.
    """
    monkeypatch.setenv("TZ", "UTC")  # `rbd snap ls` prints timestamps in local time
    pool = pools.rbd("w")
    spec = f"{pool}/vm"
    cluster.run("rbd", "create", "--size", IMAGE_SIZE, spec)
    cluster.run("rbd", "mirror", "image", "enable", spec, "snapshot")
    log = MgrLog(cluster)
    with writing(cluster, pool, "vm") as writer:
        began = time.time()
        sched(cluster, "add", "-p", pool, "1m")
        wait_until(
            lambda: [r["image"] for r in status_json(cluster, "-p", pool)] == [spec],
            PROMPT,
            f"`status` to list {spec}",
        )
        seen: list[datetime] = []
        durations: list[float] = []
        after = last_snap_id(cluster, spec)
        for _ in range(3):
            found = wait_for_snapshots(cluster, {spec: after}, SLOT_WAIT)[spec]
            created = snap_time(found)
            assert created.second < 15, f"{created} is not at a minute slot"
            assert not seen or created - seen[-1] >= MINUTE - timedelta(seconds=15), seen
            seen.append(created)
            after = int(found["id"])
            before = writer.written
            writer.wait_progress()
            assert writer.proc.poll() is None, writer.last
            assert "error" not in writer.last, writer.last
            wait_until(
                lambda: row(cluster, spec)["last_result"] == "created",
                30,
                "the module to record the snapshot",
            )
            got = row(cluster, spec)
            start, end = parse(got["last_attempt_start"]), parse(got["last_attempt_end"])
            assert start is not None and end is not None
            durations.append((end - start).total_seconds())
            note(
                f"{cluster.release}: snapshot {after} at {created:%H:%M:%S}, request took "
                f"{durations[-1]:.0f}s (second granularity), writer at {before} -> "
                f"{writer.written} blocks"
            )
        owners = writer.owner_seen(began)
        note(f"{cluster.release}: writer's lock ownership reported over the slots: {owners}")
        assert owners == {True}, "the writer lost its exclusive lock to a snapshot request"
    assert len({t.replace(second=0) for t in seen}) == 3, seen
    assert all(d < BOUND for d in durations), durations
    assert [
        line
        for line in log.new_lines()
        if "[rbd_snapsched ERROR" in line or "[rbd_snapsched WARNING" in line
    ] == []
    wait_until(lambda: nothing_open(cluster), 30, "no image or ioctx left open")


# How long the owner stays stopped: until the timeout line (resumed well within its watch's 30 s,
# osd_client_watch_timeout), or past its watch's expiry (librbd then blocklists it and breaks
# its lock itself).
RESUMED_AT_TIMEOUT = "resumed_at_timeout"
STOPPED_PAST_WATCH = "stopped_past_watch"
STOP_PAST_WATCH = 45  # seconds after the slot


@pytest.mark.parametrize("owner", [RESUMED_AT_TIMEOUT, STOPPED_PAST_WATCH])
def test_an_unresponsive_lock_owner_times_out_releases_the_slot_and_the_next_slot_retries(
    cluster: Cluster,
    pools: Pools,
    snap_create_timeout: None,
    monkeypatch: pytest.MonkeyPatch,
    owner: str,
) -> None:
    """The lock owner is SIGSTOPped just before a slot, with ``max_concurrent_snap_create`` 1
    and ``snap_create_timeout`` BOUND. Its image's request is first in the slot (its pool's
    schedule was added first), so the other pool's image waits for the one slot: it gets its
    snapshot BOUND s after the slot, when the stuck request is given up (one warning line;
    status says failed, ETIMEDOUT, create_snapshot). The stuck request ends later, with a
    snapshot: once the resumed owner answers librbd's retry, or once librbd, the owner's watch
    expired, blocklists it and breaks its lock. Its image is not asked twice meanwhile; the
    next slot snapshots both; nothing is left open.

    Bounded waits: setup 30 s; the slot under 60 + 12 s away; the timeout line BOUND + 30 s
    after the slot; the late end 60 s after resuming; the next slot 2 x 60 s + 30 s.
    """
    monkeypatch.setenv("TZ", "UTC")
    vm_pool, idle_pool = pools.create("vm", "idle")
    vm, idle = f"{vm_pool}/vm", f"{idle_pool}/idle"
    make_images(cluster, idle)
    cluster.run("rbd", "create", "--size", IMAGE_SIZE, vm)
    cluster.run("rbd", "mirror", "image", "enable", vm, "snapshot")
    with writing(cluster, vm_pool, "vm") as writer:
        # vm's level first: in each slot it is dispatched first, idle behind it.
        sched(cluster, "add", "-p", vm_pool, "1m")
        wait_until(
            lambda: [r["image"] for r in status_json(cluster, "-p", vm_pool)] == [vm],
            PROMPT,
            f"`status` to list {vm}",
        )
        sched(cluster, "add", "-p", idle_pool, "1m")
        wait_until(
            lambda: [r["image"] for r in status_json(cluster, "-p", idle_pool)] == [idle],
            PROMPT,
            f"`status` to list {idle}",
        )

        now = datetime.now(timezone.utc)
        slot = next_slot(now, MINUTE)
        if slot - now < timedelta(seconds=12):
            slot += MINUTE
        # Nothing is in flight when the owner stops: the previous slot (if any) is long over.
        sleep_until(slot - timedelta(seconds=1))
        baseline = {vm: last_snap_id(cluster, vm), idle: last_snap_id(cluster, idle)}
        log = MgrLog(cluster)
        writer.pause()
        stopped = datetime.now(timezone.utc)
        timeout_lines: list[str] = []
        try:

            def timed_out() -> bool:
                timeout_lines[:] = [
                    line
                    for line in log.new_lines()
                    if "[rbd_snapsched WARNING" in line
                    and f"{vm}: snapshot request timed out" in line
                ]
                return bool(timeout_lines)

            waited = wait_until(
                timed_out,
                (slot - stopped).total_seconds() + BOUND + 30,
                "the stuck request's timeout line",
            )
            told = datetime.now(timezone.utc)
            if owner == STOPPED_PAST_WATCH:
                sleep_until(slot + timedelta(seconds=STOP_PAST_WATCH))
        finally:
            writer.resume()
        resumed = datetime.now(timezone.utc)
        asked = time.monotonic()
        got = row(cluster, vm)
        note(
            f"{cluster.release} {owner}: owner stopped {stopped:%H:%M:%S}, slot {slot:%H:%M:%S},"
            f" timeout line seen {told:%H:%M:%S} (after {waited:.0f}s), resumed "
            f"{resumed:%H:%M:%S}: {timeout_lines[0].split('] ', 1)[-1]}; status read in "
            f"{time.monotonic() - asked:.1f}s: {got['last_result']} {got['last_error']}"
        )
        assert len(timeout_lines) == 1, timeout_lines
        assert f"timed out after {BOUND}s when creating mirror snapshot" in timeout_lines[0]
        assert told - slot >= timedelta(seconds=BOUND - 1), (told, slot)
        assert told - slot < timedelta(seconds=BOUND + 20), (told, slot)
        if got["last_result"] == "failed":  # unless the late end came first
            assert got["last_errno"] == 110 and got["last_failed_step"] == "create_snapshot", got
            assert "timed out after" in got["last_error"], got

        # The slot was released: idle, behind vm in the slot, got its snapshot at the bound.
        idle_snap = wait_for_snapshots(cluster, {idle: baseline[idle]}, BOUND + 30)[idle]
        idle_at = snap_time(idle_snap)
        note(
            f"{cluster.release} {owner}: {idle} snapshot at {idle_at:%H:%M:%S} "
            f"({(idle_at - slot).total_seconds():.0f}s after the slot)"
        )
        assert idle_at >= slot + timedelta(seconds=BOUND - 2), (idle_at, slot)
        assert idle_at < slot + timedelta(seconds=BOUND + 20), (idle_at, slot)

        # The stuck request ends, with a snapshot: counted, its image's last success.
        def ended() -> bool:
            return bool(row(cluster, vm)["last_result"] != "failed")

        wait_until(ended, 60, f"{vm}'s timed-out request to end")
        got = row(cluster, vm)
        late = [line for line in log.new_lines() if "snapshot request that timed out ended" in line]
        note(
            f"{cluster.release} {owner}: {[line.split('] ', 1)[-1] for line in late]}; status "
            f"{got['last_result']}, last success {got['last_success']}, attempt "
            f"{got['last_attempt_start']} - {got['last_attempt_end']}"
        )
        assert got["last_result"] == "created", got
        late_snaps = new_primary_snapshots(cluster, vm, baseline[vm])
        assert len(late_snaps) == 1, late_snaps  # one request in that slot, none twice
        assert metric(cluster, "rbd_snapsched_requests_timed_out_in_flight") == 0
        blocklist = cluster.run("ceph", "osd", "blocklist", "ls", check=False)
        survived = True
        try:
            writer.wait_progress(20)
        except AssertionError:
            survived = False
        note(
            f"{cluster.release} {owner}: writer after resuming: written on: {survived}; last "
            f"report {writer.last}; blocklist: {blocklist.stdout.strip()!r}"
        )
        if owner == RESUMED_AT_TIMEOUT:
            assert survived, writer.last  # it answered librbd's retry, and writes on

        # The next slot snapshots both again, on time.
        following = slot + MINUTE
        found = wait_for_snapshots(
            cluster, {vm: int(late_snaps[0]["id"]), idle: int(idle_snap["id"])}, SLOT_WAIT
        )
        for spec, snap in found.items():
            at = snap_time(snap)
            note(f"{cluster.release} {owner}: next slot: {spec} snapshot at {at:%H:%M:%S}")
            assert following <= at < following + timedelta(seconds=15), (spec, at, following)
    wait_until(lambda: nothing_open(cluster), 30, "no image or ioctx left open")
    warnings = [
        line
        for line in log.new_lines()
        if "[rbd_snapsched WARNING" in line or "[rbd_snapsched ERROR" in line
    ]
    assert len(warnings) == 1, warnings  # the one timeout line
