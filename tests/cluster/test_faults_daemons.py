"""Daemon faults on real clusters of the host release: the only OSD stopped across a slot, the
mon restarted across a slot, the active mgr SIGKILLed while a slot drains (a standby takes
over), the module's client blocklisted 10 times in a row while 200 images are in flight.

After each fault ``fault_checks.check_after_fault`` runs the same checks: schedules intact,
scheduler alive, scheduling resumed within one slot of the recovery, at most one mirror
snapshot per image per slot, no image handle or ioctx left open, and a clear module line for
the fault in the mgr log.

Each test has a throwaway cluster of its own (it kills daemons). To keep the file within
about 8 minutes, the next test's cluster boots and gets its pool, images and ``1m`` schedule
while the current test waits for its slots (``Preparer``: at most two clusters at a time).
Every wait is bounded and says what it waited for.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from tests.cephcluster import Cluster, _alive
from tests.cluster.fault_checks import (
    SLOT,
    MgrLogs,
    active_mgr,
    check_after_fault,
    check_fault_logged,
    create_images,
    keep_osd_data_across_restart,
    start_osd,
    stop_osd,
    take_baseline,
)
from tests.cluster.helpers import module_client_addr, sched, wait_until
from tests.slots import next_minute, sleep_until

pytestmark = [pytest.mark.ceph_cluster, pytest.mark.faults]

POOL = "faults"
OPTION = "mgr/rbd_snapsched/"
LEVEL = re.compile(r"\[rbd_snapsched (\w+) ")
BEACON_GRACE = 10  # seconds: the mon fails a silent mgr over after this (default 30)


@dataclass(frozen=True)
class Setup:
    """What a fault test's cluster gets before the test starts."""

    images: int
    standby_mgrs: int = 0
    max_concurrent: int | None = None
    osd_keeps_data: bool = False  # the OSD is stopped and started: keep its memstore
    beacon_grace: int | None = None


SETUPS = {
    "test_the_only_osd_stopped_across_a_slot": Setup(images=20, osd_keeps_data=True),
    "test_the_mon_restarted_across_a_slot": Setup(images=20),
    "test_active_mgr_killed_while_a_slot_drains": Setup(
        images=100, standby_mgrs=1, beacon_grace=BEACON_GRACE
    ),
    "test_client_blocklisted_ten_times_with_200_images_in_flight": Setup(
        images=200, max_concurrent=200
    ),
}


@dataclass
class Prepared:
    cluster: Cluster
    specs: list[str]
    seconds: float  # boot and set-up


def prepare(setup: Setup) -> Prepared:
    began = time.monotonic()
    cluster = Cluster.boot(standby_mgrs=setup.standby_mgrs)
    try:
        if setup.osd_keeps_data:
            keep_osd_data_across_restart(cluster)
        if setup.beacon_grace is not None:
            cluster.run(
                "ceph", "config", "set", "mon", "mon_mgr_beacon_grace", str(setup.beacon_grace)
            )
        if setup.max_concurrent is not None:
            cluster.run(
                "ceph", "config", "set", "mgr", OPTION + "max_concurrent_snap_create",
                str(setup.max_concurrent),
            )  # fmt: skip
        cluster.create_rbd_pool(POOL)
        specs = create_images(cluster, POOL, setup.images)
        sched(cluster, "add", "-p", POOL, "1m")
        wait_until(
            lambda: scheduled_images(cluster) == setup.images,
            60,
            f"all {setup.images} images in `status`",
        )
    except BaseException:
        cluster.teardown()
        raise
    return Prepared(cluster, specs, time.monotonic() - began)


def scheduled_images(cluster: Cluster) -> int:
    out = cluster.run("ceph", "rbd", "mirror", "snapshot", "schedule", "status", check=False)
    if out.returncode != 0:
        return -1
    return len(json.loads(out.stdout)["scheduled_images"])


class Preparer:
    """Boots and sets up the clusters of the collected tests in file order, one ahead of the
    test that runs: at most two clusters at a time (the running test's and the next one's)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.slots = threading.Semaphore(2)
        self.executor = ThreadPoolExecutor(2)
        self.futures: dict[str, Future[Prepared]] = {}

    def _prepare(self, name: str) -> Prepared:
        self.slots.acquire()
        try:
            return prepare(SETUPS[name])
        except BaseException:
            self.slots.release()
            raise

    def start(self, name: str) -> None:
        if name not in self.futures:
            self.futures[name] = self.executor.submit(self._prepare, name)

    def take(self, name: str) -> Prepared:
        self.start(name)
        later = self.names[self.names.index(name) + 1 :] if name in self.names else []
        if later:
            self.start(later[0])
        return self.futures.pop(name).result()

    def release(self, prepared: Prepared) -> None:
        try:
            prepared.cluster.teardown()
        finally:
            self.slots.release()

    def close(self) -> None:
        for future in self.futures.values():
            future.cancel()
        for future in self.futures.values():
            with contextlib.suppress(BaseException):
                if not future.cancelled():
                    self.release(future.result())
        self.executor.shutdown(wait=True)


@pytest.fixture(scope="module")
def preparer(request: pytest.FixtureRequest) -> Iterator[Preparer]:
    names = [item.name for item in request.session.items if item.name in SETUPS]
    made = Preparer(names)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def prepared(preparer: Preparer, request: pytest.FixtureRequest) -> Iterator[Prepared]:
    """This test's own cluster: booted, its pool, images and `1m` schedule set up."""
    taken = preparer.take(request.node.name)
    print(f"[fault] {request.node.name}: boot and set-up took {taken.seconds:.0f}s")
    try:
        yield taken
    except BaseException:
        print(taken.cluster.log_tails(40))
        raise
    finally:
        preparer.release(taken)


# -- timing ---------------------------------------------------------------------------------


def at_second(second: float, least: float = 0.0) -> float:
    """Sleep until the wall clock's seconds within the minute are ``second``, at least
    ``least`` s from now; returns that moment (epoch s)."""
    now = time.time()
    target = now - now % SLOT + second
    while target < now + least:
        target += SLOT
    time.sleep(target - now)
    return target


def wait_in_flight(url: str, least: int, timeout: float) -> float:
    """Wait until the endpoint ``url`` (the active mgr's, found before the slot) reports at
    least ``least`` requests in flight, polling every 20 ms: a slot's 200 requests may all
    end within two seconds, so nothing slower (a CLI call per poll took 0.5-1.9 s under load
    and missed them) may sit in the loop. On a timeout the message lists the first and last
    polls: when each started, how long it took, what it got."""
    polls: list[str] = []
    seen: list[float] = []
    start = time.monotonic()

    def enough() -> bool:
        began = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                text = answer.read().decode()
        except (OSError, ValueError, urllib.error.URLError) as e:
            polls.append(f"{began - start:.1f}s+{time.monotonic() - began:.1f}s: {e!r}")
            return False
        samples = dict(
            line.split(" ", 1) for line in text.splitlines()
            if line.startswith("rbd_snapsched_") and "{" not in line
        )  # fmt: skip
        got = samples.get("rbd_snapsched_requests_in_flight")
        value = None if got is None else float(got)
        refreshed = samples.get("rbd_snapsched_last_refresh_timestamp_seconds", "-")
        polls.append(
            f"{began - start:.1f}s+{time.monotonic() - began:.1f}s: {value} (refresh took "
            f"{samples.get('rbd_snapsched_refresh_duration_seconds', '-')} s, ended at "
            f"{refreshed}, queue {samples.get('rbd_snapsched_queue_length', '-')})"
        )
        if value is not None:
            seen.append(value)
        return value is not None and value >= least

    try:
        wait_until(enough, timeout, f"{least} snapshot requests in flight", interval=0.02)
    except AssertionError as e:
        raise AssertionError(f"{e}; polls: {polls[:6]} … {polls[-4:]}") from None
    return seen[-1]


def pgs_active(cluster: Cluster) -> bool:
    status = cluster.ceph_json("status")
    pgmap = status["pgmap"]
    states = {s["state_name"]: int(s["count"]) for s in pgmap.get("pgs_by_state", [])}
    return bool(states.get("active+clean", 0) == int(pgmap["num_pgs"]) > 0)


# -- the faults ------------------------------------------------------------------------------


def test_the_only_osd_stopped_across_a_slot(prepared: Prepared) -> None:
    cluster = prepared.cluster
    at_second(40, least=5)
    baseline = take_baseline(cluster, [POOL])
    logs = MgrLogs(cluster)
    stopped = at_second(50)
    stop_osd(cluster)
    slot = next_minute(stopped)  # its requests hang: the OSD holds every object
    sleep_until(slot + 40)
    start_osd(cluster)
    wait_until(lambda: pgs_active(cluster), 60, "every PG active+clean again")
    recovered = time.time()
    print(f"[fault] osd.0 down {recovered - stopped:.0f}s, across the slot at {slot:.0f}")
    check_after_fault(
        cluster,
        baseline,
        recovered_at=recovered,
        logs=logs,
        # The slot's requests hang, or the scheduler thread itself waits in a refresh that
        # fell due during the outage: either is told once, and its end once.
        log_pattern=r"snapshot requests stalled|scheduler thread stuck",
        log_level="WARNING",
        most_log_lines=2,
    )
    check_fault_logged(logs, r"snapshot requests moving again|scheduler thread passing again")


def test_the_mon_restarted_across_a_slot(prepared: Prepared) -> None:
    cluster = prepared.cluster
    at_second(45, least=5)
    baseline = take_baseline(cluster, [POOL])
    logs = MgrLogs(cluster)
    stopped = at_second(55)
    cluster._stop("mon.a")
    # Snapshot ids come from the mon: the slot's requests wait for it.
    sleep_until(next_minute(stopped) + 10)
    cluster._spawn("mon.a", "ceph-mon", "-i", "a")
    wait_until(cluster._has_quorum, 60, "the mon back in quorum")
    recovered = time.time()
    print(f"[fault] mon.a down {recovered - stopped:.0f}s")
    check_after_fault(
        cluster,
        baseline,
        recovered_at=recovered,
        logs=logs,
        log_pattern=r"monitor election",
        log_level="INFO",
    )


def test_active_mgr_killed_while_a_slot_drains(prepared: Prepared) -> None:
    cluster = prepared.cluster
    killed = active_mgr(cluster)
    url = cluster.metrics_url(killed)
    at_second(45, least=5)
    baseline = take_baseline(cluster, [POOL])
    logs = MgrLogs(cluster)
    sleep_until(next_minute(time.time()))
    # 100 images at 10 at a time: mid-drain, some done, 10 in flight, the rest waiting.
    in_flight = wait_in_flight(url, 10, 20)
    pid = cluster._pid(f"mgr.{killed}")
    assert pid is not None and _alive(pid)
    os.kill(pid, signal.SIGKILL)
    down = time.time()
    wait_until(
        lambda: active_mgr(cluster) not in (killed, ""),
        BEACON_GRACE + 60,
        f"a standby to take over from mgr {killed}",
    )
    wait_until(cluster.module_answers, 90, "rbd_snapsched on the new active mgr")
    recovered = time.time()
    print(
        f"[fault] mgr.{killed} killed with {in_flight:.0f} requests in flight; "
        f"{active_mgr(cluster)} active after {recovered - down:.0f}s"
    )
    check_after_fault(
        cluster,
        baseline,
        recovered_at=recovered,
        logs=logs,
        log_pattern=rf"taking over from mgr {killed}\b",
        log_level="INFO",
        most_log_lines=1,
    )


def test_client_blocklisted_ten_times_with_200_images_in_flight(prepared: Prepared) -> None:
    """Upstream tracker 63028: blocklisting rbd_support's client again and again segfaulted
    the mgr. Here each blocklisting hits the client the module made after the previous one."""
    cluster = prepared.cluster
    pid = cluster._pid("mgr.x")
    crashes = cluster.root / "crash"
    url = cluster.metrics_url(active_mgr(cluster))
    at_second(45, least=5)
    baseline = take_baseline(cluster, [POOL])
    logs = MgrLogs(cluster)
    sleep_until(next_minute(time.time()))
    in_flight = wait_in_flight(url, 100, 20)
    began = time.time()
    blocklisted: list[str] = []
    for _ in range(10):
        addr = module_client_addr(cluster)
        assert addr is not None, "rbd_snapsched registered no rados client"
        cluster.run("ceph", "osd", "blocklist", "add", addr)
        blocklisted.append(addr)
        wait_until(
            lambda: module_client_addr(cluster) not in (*blocklisted, None),
            60,
            f"a new rados client of rbd_snapsched after blocklisting #{len(blocklisted)} {addr}",
        )
    recovered = time.time()
    print(f"[fault] 10 blocklistings in {recovered - began:.0f}s, from {in_flight:.0f} in flight")
    assert pid is not None and _alive(pid), "the mgr died"
    assert cluster.ceph_json("mgr", "dump")["active_name"] == "x"
    crashed = sorted(p.name for p in crashes.glob("*")) if crashes.exists() else []
    assert not crashed, f"crashes recorded: {crashed}"
    check_after_fault(
        cluster,
        baseline,
        recovered_at=recovered,
        logs=logs,
        log_pattern=r"blocklisted",
        log_level="WARNING",
    )
    assert pid is not None and _alive(pid), "the mgr died after the blocklistings"
    levels = Counter(m.group(1) for m in map(LEVEL.search, logs.module_lines(".")) if m)
    print(f"[fault] module lines meanwhile, by level: {dict(levels)}")
    for line in logs.module_lines(r"\[rbd_snapsched (ERROR|CRITICAL) ")[:5]:
        print(f"[fault]   {line}")
