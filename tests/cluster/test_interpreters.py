"""The module in each interpreter mode of its release's ceph-mgr, and how long it takes to load.

Pacific and Reef run every mgr module in a subinterpreter of its own: their only mode. Tentacle
20.2.2+ runs modules in the main interpreter unless ``mgr_subinterpreter_modules`` names them
(every other cluster test runs it so, its default), and raises a health error for a module
slower to load than ``mgr_module_load_expiration``. Here each release's modes run a real
minute slot: Tentacle's default and ``mgr_subinterpreter_modules = *``, the others their one
mode. The time ceph-mgr took to import our module and to construct it is read from its own log
and printed, beside the expiration where the release has one.

Bounded: per mode one mgr restart (at most 3 x 180 s, about 10 s here) and one slot (at most
2 x 60 s + 30 s).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from tests.cephcluster import Cluster
from tests.cluster.helpers import (
    MgrLog,
    Pools,
    checks,
    last_snap_id,
    make_images,
    sched,
    wait_for_snapshots,
)

pytestmark = pytest.mark.ceph_cluster

MODES_OPTION = "mgr_subinterpreter_modules"
EXPIRATION_OPTION = "mgr_module_load_expiration"
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)[+-]\d{4} ")


def _stamp(line: str) -> datetime | None:
    found = STAMP.match(line)
    if found is None:
        return None
    return datetime.strptime(found.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)


def load_times(lines: list[str]) -> tuple[timedelta, timedelta]:
    """From the mgr log of one start: how long the import of our module took (from its
    ``Loading python module 'rbd_snapsched'`` line to the next line, which starts the next
    module or what follows), and from the mgr's activation to our class constructed."""
    stamped = [(when, line) for line in lines if (when := _stamp(line)) is not None]
    at = next(i for i, (_, line) in enumerate(stamped) if "python module 'rbd_snapsched'" in line)
    imported = stamped[at + 1][0] - stamped[at][0]
    activated = next(when for when, line in stamped if "I am now activating" in line)
    constructed = next(
        when for when, line in stamped if "Constructed class from module: rbd_snapsched" in line
    )
    return imported, constructed - activated


def modes(cluster: Cluster) -> list[str | None]:
    """None: the release's default; ``*``: every module in a subinterpreter (Tentacle)."""
    has_option = cluster.run("ceph", "config", "help", MODES_OPTION, check=False).returncode == 0
    return [None, "*"] if has_option else [None]


def test_each_interpreter_mode_schedules_and_loads_well_inside_the_expiration(
    cluster: Cluster, pools: Pools
) -> None:
    pool = pools.rbd("p")
    image = f"{pool}/img"
    make_images(cluster, image)
    sched(cluster, "add", "-p", pool, "1m")
    expiration = None
    if cluster.run("ceph", "config", "help", EXPIRATION_OPTION, check=False).returncode == 0:
        value = cluster.run("ceph", "config", "get", "mgr", EXPIRATION_OPTION).stdout.strip()
        expiration = timedelta(milliseconds=float(value))
    try:
        for mode in modes(cluster):
            if mode is not None:
                cluster.run("ceph", "config", "set", "mgr", MODES_OPTION, mode)
            log = MgrLog(cluster)
            cluster.restart_mgr()
            imported, constructed = load_times(log.new_lines())
            print(
                f"{cluster.release} {MODES_OPTION}={mode or '(default)'}: import "
                f"{imported.total_seconds():.3f} s, activation to constructed "
                f"{constructed.total_seconds():.3f} s, expiration "
                f"{expiration.total_seconds() if expiration else '(none)'} s"
            )
            if expiration is not None:
                assert imported + constructed < expiration / 4, (imported, constructed)
            found = wait_for_snapshots(cluster, {image: last_snap_id(cluster, image)})
            assert image in found
            failed = {k: v for k, v in checks(cluster).items() if k.startswith("MGR_MODULE")}
            assert failed == {}, (mode, failed)
    finally:
        if len(modes(cluster)) > 1:
            cluster.run("ceph", "config", "rm", "mgr", MODES_OPTION)
            cluster.restart_mgr()
