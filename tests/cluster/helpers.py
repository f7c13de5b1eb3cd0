"""Helpers shared by the cluster tests that drive the schedule commands through the CLIs.

Plain functions and the ``Pools`` class; the fixtures built on them (``pools``,
``no_global_schedule_after``) are in ``tests/cluster/conftest.py``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

from tests.cephcluster import Cluster

SCHED = ("rbd", "mirror", "snapshot", "schedule")
RAW = ("ceph", "rbd", "mirror", "snapshot", "schedule")
OUR_OID = "rbd_snapsched_mirror_snapshot_schedule"
OUR_OPTION = "mgr/rbd_snapsched/mirror_snapshot_schedule"
MAX_CONCURRENT_OPTION = "mgr/rbd_snapsched/max_concurrent_snap_create"

PROMPT = 5.0  # seconds: how soon `status` must reflect add/remove (upstream: up to 60 s)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``pred`` every 0.2 s; fail with ``what`` unless true within ``timeout`` s.

    Returns the seconds it took.
    """
    start = time.monotonic()
    while not pred():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - start


def in_parallel(*calls: Callable[[], object]) -> None:
    """Run slow CLI calls (pool init, mirror enable: about 1-2 s each) side by side."""
    with ThreadPoolExecutor(max_workers=8) as executor:
        for future in [executor.submit(call) for call in calls]:
            future.result()


# -- the schedule commands ----------------------------------------------------------------------


def sched(cluster: Cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``rbd mirror snapshot schedule ARGS``."""
    return cluster.run(*SCHED, *args, check=check)


def raw(cluster: Cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``ceph rbd mirror snapshot schedule ARGS``: the mgr command itself."""
    return cluster.run(*RAW, *args, check=check)


def raw_list(cluster: Cluster, level: str = "") -> dict[str, Any]:
    result: dict[str, Any] = json.loads(raw(cluster, "list", level).stdout)
    return result


def ls_r_json(cluster: Cluster, *opts: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(
        sched(cluster, "ls", "-R", *opts, "--format", "json").stdout
    )
    return rows


def status_json(cluster: Cluster, *opts: str) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = json.loads(
        sched(cluster, "status", *opts, "--format", "json").stdout
    )
    return entries


def status_images(cluster: Cluster, *opts: str) -> list[str]:
    """The images ``status`` lists, in its order (by schedule time)."""
    return [entry["image"] for entry in status_json(cluster, *opts)]


def next_slot(now: datetime, period: timedelta, start: timedelta = timedelta(0)) -> datetime:
    """The first slot strictly after ``now`` of ``period`` anchored at the epoch + ``start``."""
    anchor = EPOCH + start
    return anchor + ((now - anchor) // period + 1) * period


# -- storage and options ------------------------------------------------------------------------


def omap_keys(cluster: Cluster, pool: str, oid: str) -> list[str] | None:
    """The object's omap keys; None if the object does not exist."""
    proc = cluster.run("rados", "-p", pool, "listomapkeys", oid, check=False)
    if proc.returncode != 0:
        assert "No such file or directory" in proc.stderr, proc.stderr
        return None
    return sorted(proc.stdout.split())


def config_get(cluster: Cluster, option: str) -> str:
    return cluster.run("ceph", "config", "get", "mgr", option).stdout.strip()


def config_restore(cluster: Cluster, option: str, default: str) -> None:
    """Put a module option back to its default.

    ``config rm`` alone leaves Pacific's mgr serving the removed value to the module until it
    restarts (measured), so set the default first.
    """
    cluster.run("ceph", "config", "set", "mgr", option, default)
    cluster.run("ceph", "config", "rm", "mgr", option)


# -- pools, namespaces, images ------------------------------------------------------------------


def make_namespace(cluster: Cluster, pool: str, namespace: str, *, image_mode: bool = True) -> None:
    cluster.run("rbd", "namespace", "create", f"{pool}/{namespace}")
    if image_mode:
        cluster.run("rbd", "mirror", "pool", "enable", f"{pool}/{namespace}", "image")


def make_image(cluster: Cluster, spec: str, mirror: str | None = "snapshot") -> None:
    """A 1 MiB image, mirroring enabled in mode ``mirror`` (None: not enabled)."""
    cluster.run("rbd", "create", "--size", "1M", spec)
    if mirror is not None:
        cluster.run("rbd", "mirror", "image", "enable", spec, mirror)


def make_images(cluster: Cluster, *specs: str, mirror: str | None = "snapshot") -> None:
    in_parallel(*(partial(make_image, cluster, spec, mirror) for spec in specs))


def pool_prefix(module: str, test: str, most: int = 32) -> str:
    """``<module>_<test>_`` for pools of test ``test`` in module ``module`` (dotted name),
    ``test_`` prefixes dropped. Past ``most`` characters it is cut and ends in a hash of the
    whole, so it stays short and unique."""
    base = module.rpartition(".")[2].removeprefix("test_") + "_" + test.removeprefix("test_")
    if len(base) > most:
        digest = hashlib.sha256(base.encode()).hexdigest()[:6]
        base = base[: most - len(digest) - 1] + "_" + digest
    return base + "_"


class Pools:
    """Pools made by one test, named after it and deleted when it ends."""

    def __init__(self, cluster: Cluster, prefix: str) -> None:
        self.cluster = cluster
        self.prefix = prefix
        self.names: list[str] = []

    def create(self, *rbd: str, plain: Sequence[str] = ()) -> list[str]:
        """RBD pools (mirror mode image, with a tx peer), then pools without the rbd
        application, made in parallel; their names, in that order."""
        names = [self.prefix + suffix for suffix in (*rbd, *plain)]
        self.names.extend(names)
        in_parallel(
            *(partial(self.cluster.create_rbd_pool, name) for name in names[: len(rbd)]),
            *(
                partial(self.cluster.run, "ceph", "osd", "pool", "create", name, "8")
                for name in names[len(rbd) :]
            ),
        )
        return names

    def rbd(self, suffix: str) -> str:
        """One RBD pool (mirror mode image, with a tx peer)."""
        return self.create(suffix)[0]

    def delete(self, name: str) -> None:
        self.cluster.run(
            "ceph", "osd", "pool", "rm", name, name, "--yes-i-really-really-mean-it", check=False
        )

    def delete_all(self) -> None:
        in_parallel(*(partial(self.delete, name) for name in self.names))
