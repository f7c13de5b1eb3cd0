"""``store.ModuleOption`` keeps the option contract inside a real ceph-mgr.

The unit tests fake the mgr's module option calls (``test_option_module.MgrOptions``); here
the same contract (``tests/contract/option.py``) runs in a real mgr of each release, through the
test-only module ``tests/mgr_probe/snapsched_probe``, over the options ``ModuleOption`` serves in
production: its own, ours (schedule, paused levels) and rbd_support's schedule, read across
modules; and a write the mon refuses (an option no module declares) raises, nothing stored.
A cluster of its own: the contract writes those options.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cephcluster import Cluster
from tests.cluster.helpers import wait_until

pytestmark = pytest.mark.ceph_cluster

PROBE = Path(__file__).resolve().parent.parent / "mgr_probe" / "snapsched_probe"
STORED = (
    "snapsched_probe/probe_value",
    "rbd_snapsched/mirror_snapshot_schedule",
    "rbd_snapsched/paused_levels",
    "rbd_support/mirror_snapshot_schedule",
)
REFUSED = "rbd_snapsched/no_such_option"


def probe_outcome(cluster: Cluster) -> dict[str, str] | None:
    proc = cluster.run(
        "ceph", "config-key", "get", "mgr/snapsched_probe/option_contract", check=False
    )
    if proc.returncode != 0:
        return None
    outcome: dict[str, str] = json.loads(proc.stdout)
    return outcome


def test_module_option_keeps_the_contract_in_a_real_mgr(release: str) -> None:
    with Cluster.boot(release=release, extra_modules=[PROBE]) as cluster:
        # Bounded: the probe runs once its mgr is active, a few seconds after boot, and tries
        # rbd_support's option up to three times, 10 s apart (the probe's serve says why).
        wait_until(lambda: probe_outcome(cluster) is not None, 90, "the probe's outcome")
        outcome = probe_outcome(cluster)
        assert outcome == dict.fromkeys((*STORED, REFUSED), "kept"), outcome
        # The values went through the mon: each option is left cleared, as "" (never removed).
        for key in STORED:
            got = cluster.run("ceph", "config", "get", "mgr", f"mgr/{key}").stdout.strip()
            assert got == "", (key, got)
