"""Helpers shared by the cluster tests that drive the schedule commands through the CLIs.

Test modules import from here, never from one another (tests/unit/test_layout.py). Polling is
``tests/polling.py`` and minute slots ``tests/slots.py``; ``wait_until``, ``next_slot``,
``EPOCH``, ``mirror_snapshots`` are re-exported from them. Plain functions, ``MgrLog`` and the
``Pools`` class; the fixtures built on them (``pools``, ``no_global_schedule_after``) are in
``tests/cluster/conftest.py``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from functools import partial
from typing import Any

from tests.cephcluster import Cluster
from tests.polling import wait_until as wait_until
from tests.slots import EPOCH as EPOCH
from tests.slots import mirror_snapshots as mirror_snapshots
from tests.slots import next_slot as next_slot

SCHED = ("rbd", "mirror", "snapshot", "schedule")
RAW = ("ceph", "rbd", "mirror", "snapshot", "schedule")
OUR_OID = "rbd_snapsched_mirror_snapshot_schedule"
OUR_OPTION = "mgr/rbd_snapsched/mirror_snapshot_schedule"
MAX_CONCURRENT_OPTION = "mgr/rbd_snapsched/max_concurrent_snap_create"

PROMPT = 5.0  # seconds: how soon `status` must reflect add/remove (upstream: up to 60 s)
SLOT = 75.0  # seconds: one minute slot plus the snapshot's few seconds
SLOT_WAIT = 2 * 60 + 30  # seconds: the next minute slot, a spare one, and slack


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


# -- mirror snapshots, health, the mgr log ------------------------------------------------------


def last_snap_id(cluster: Cluster, spec: str) -> int:
    return max((int(snap["id"]) for snap in mirror_snapshots(cluster, spec)), default=-1)


def new_primary_snapshots(cluster: Cluster, spec: str, after_id: int) -> list[dict[str, Any]]:
    return [
        snap
        for snap in mirror_snapshots(cluster, spec)
        if int(snap["id"]) > after_id and snap["namespace"]["state"] == "primary"
    ]


def is_complete(cluster: Cluster, spec: str, snap_id: int) -> bool:
    """Whether the image's mirror snapshot ``snap_id`` exists and is marked complete."""
    return any(
        snap["id"] == snap_id and snap["namespace"]["complete"] is True
        for snap in mirror_snapshots(cluster, spec)
    )


def snap_time(snap: dict[str, Any]) -> datetime:
    """A snapshot's creation time (the rbd CLI prints it in local time: TZ=UTC is set)."""
    return datetime.strptime(snap["timestamp"], "%a %b %d %H:%M:%S %Y").replace(tzinfo=timezone.utc)


def wait_for_snapshots(
    cluster: Cluster, baseline: dict[str, int], timeout: float = SLOT_WAIT
) -> dict[str, dict[str, Any]]:
    """Wait until every image of ``baseline`` has a primary mirror snapshot newer than its
    baseline id; the first new one of each."""
    found: dict[str, dict[str, Any]] = {}

    def all_have_one() -> bool:
        for spec, after_id in baseline.items():
            if spec not in found and (snaps := new_primary_snapshots(cluster, spec, after_id)):
                found[spec] = snaps[0]
        return len(found) == len(baseline)

    wait_until(all_have_one, timeout, f"a new primary mirror snapshot on each of {list(baseline)}")
    return found


class MgrLog:
    """The lines the mgr logs from now on."""

    def __init__(self, cluster: Cluster) -> None:
        self.path = cluster.log_dir / "mgr.x.log"
        self.offset = self.path.stat().st_size

    def new_lines(self) -> list[str]:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            return f.read().decode(errors="replace").splitlines()

    def errors_naming(self, *words: str) -> list[str]:
        """Our module's ERROR lines that mention any of ``words``."""
        return [
            line
            for line in self.new_lines()
            if "[rbd_snapsched ERROR" in line and any(word in line for word in words)
        ]


def module_client_addr(cluster: Cluster) -> str | None:
    """Our module's librados client, as the mgr map lists it and the blocklist takes it; None
    while it has none registered (between a blocklisting and its new client)."""
    for client in cluster.ceph_json("mgr", "dump").get("active_clients", []):
        if client.get("name") == "rbd_snapsched":
            addr = client["addrvec"][0]
            return f"{addr['addr']}/{addr['nonce']}"
    return None


def checks(cluster: Cluster) -> dict[str, Any]:
    found: dict[str, Any] = cluster.ceph_json("health", "detail").get("checks", {})
    return found


def raw_status(cluster: Cluster, level: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(raw(cluster, "status", level).stdout)[
        "scheduled_images"
    ]
    return rows


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:  # not listening (yet)
        return 0, str(e)


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
