"""What the module tells about cluster faults: stalled snapshot requests (and their
recovery), its client's blocklisted addresses, monitor elections."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta
from typing import Any

import pytest

from rbd_snapsched.cluster import client_addrs, mon_election
from rbd_snapsched.watchdog import STALL_AFTER
from tests.unit.harness import START, Setup


def _lines(caplog: pytest.LogCaptureFixture, needle: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if needle in r.getMessage()]


def test_stalled_requests_are_told_once_and_their_recovery_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = Setup(hold=True, max_concurrent=2)
    for i in range(3):
        s.cluster.add_image(s.pool, f"img{i}")
    s.add("rbd/", "1m")
    caplog.set_level(logging.WARNING)
    s.run_until(START + timedelta(minutes=1))  # the slot: two in flight, one waiting
    slot = START.replace(second=0) + timedelta(minutes=1)  # when the requests started
    s.handler.watch()
    s.clock.set(slot + STALL_AFTER - timedelta(seconds=1))
    s.handler.watch()
    assert _lines(caplog, "stalled") == []
    s.clock.set(slot + STALL_AFTER + timedelta(seconds=5))
    s.handler.watch()
    s.handler.watch()
    (told,) = _lines(caplog, "stalled")
    assert told.startswith("snapshot requests stalled: 2 in flight and 1 waiting")
    assert "none finished for 35s" in told
    s.driver.release(1)
    (moving,) = _lines(caplog, "moving again")
    assert moving == "snapshot requests moving again after 35s stalled"
    s.driver.release()
    s.handler.watch()
    assert len(_lines(caplog, "stalled")) == 2  # the warning and its recovery, nothing more


def test_requests_started_after_idle_count_from_their_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = Setup(hold=True)
    s.cluster.add_image(s.pool, "img")
    s.add("rbd/", "1h")
    caplog.set_level(logging.WARNING)
    s.clock.advance(timedelta(minutes=30))  # idle for long: no stall counted from before
    s.handler.snapshot_now(s.handler.resolve("rbd/"))
    s.clock.advance(timedelta(seconds=5))
    s.handler.watch()
    assert _lines(caplog, "stalled") == []


def test_client_addrs_as_the_blocklist_names_them() -> None:
    assert client_addrs("127.0.0.1:0/3236960941") == {"127.0.0.1:0/3236960941"}
    assert client_addrs("[v2:10.0.0.1:0/5,v1:10.0.0.1:0/5]") == {"10.0.0.1:0/5"}
    assert client_addrs("[any:[::1]:0/7]") == {"[::1]:0/7"}
    assert client_addrs("") == frozenset()


def test_mon_election_reads_epoch_and_quorum_names() -> None:
    status = {
        "election_epoch": 5,
        "quorum": [0, 2],
        "monmap": {
            "mons": [{"rank": 0, "name": "a"}, {"rank": 1, "name": "b"}, {"rank": 2, "name": "c"}]
        },
    }
    assert mon_election(status) == (5, ["a", "c"])
    assert mon_election({"json": json.dumps(status)}) == (5, ["a", "c"])  # as the mgr gives it
    assert mon_election({}) is None
    assert mon_election(None) is None
    assert mon_election({"election_epoch": "x"}) is None


def test_a_pass_waiting_on_the_cluster_is_told_once_and_its_end_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = Setup()
    s.cluster.add_image(s.pool, "img")
    s.add("rbd/", "1m")
    caplog.set_level(logging.WARNING)
    blocked, release = threading.Event(), threading.Event()
    pools = s.cluster.rbd_pools

    def slow_pools() -> Any:
        blocked.set()
        release.wait(10)
        return pools()

    s.cluster.rbd_pools = slow_pools  # type: ignore[method-assign]
    s.handler.request_refresh()
    thread = threading.Thread(target=s.handler.tick)
    thread.start()
    assert blocked.wait(10)
    s.handler.watch()
    assert _lines(caplog, "stuck") == []
    s.clock.advance(STALL_AFTER + timedelta(seconds=2))
    s.handler.watch()
    s.handler.watch()
    (told,) = _lines(caplog, "stuck")
    assert told.startswith("scheduler thread stuck: its pass has waited on the cluster for 32s")
    release.set()
    thread.join(10)
    assert _lines(caplog, "passing again") == ["scheduler thread passing again after 32s stuck"]
    s.handler.tick()
    s.handler.watch()
    assert len(_lines(caplog, "stuck")) == 2
