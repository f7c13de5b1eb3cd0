"""Per-pool authorization on each release (SPEC.md decision 5): a client whose mgr caps name one
pool sees and changes that pool's schedules only; one with plain ``profile rbd`` is refused by the
mgr itself.

No minute slots: it runs in seconds. It makes its own pools and removes the global schedule it
adds.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.cephcluster import Cluster
from tests.cluster.helpers import (
    PROMPT,
    SCHED,
    Pools,
    ls_r_json,
    make_images,
    sched,
    status_images,
    wait_until,
)

pytestmark = pytest.mark.ceph_cluster

EACCES = 13


def test_restricted_client_sees_and_changes_only_its_pool(
    cluster: Cluster, pools: Pools, no_global_schedule_after: None
) -> None:
    """SPEC.md decision 5: per-pool caps are enforced by the module.

    ``client.<r1>`` has ``mgr 'profile rbd pool=P1, allow module rbd_snapsched with pool=P1
    rw'``: it may change P1's schedules only, and sees only P1's. ``client.<r2>`` has the plain
    ``profile rbd pool=P1``, which only grants module rbd_support (measured), so the mgr itself
    refuses our commands with EACCES before the module sees them.
    """
    p1, p2 = pools.create("p1", "p2")
    make_images(cluster, f"{p1}/img", f"{p2}/img")
    users = {"r1": "snapsched_r1", "r2": "snapsched_r2"}
    mgr_caps = {
        "r1": f"profile rbd pool={p1}, allow module rbd_snapsched with pool={p1} rw",
        "r2": f"profile rbd pool={p1}",
    }
    keyrings: dict[str, Path] = {}
    try:
        for who, user in users.items():
            keyrings[who] = cluster.root / f"{user}.keyring"  # seen by the release's CLIs
            cluster.run(
                "ceph",
                "auth",
                "get-or-create",
                f"client.{user}",
                "mon",
                "profile rbd",
                "osd",
                f"profile rbd pool={p1}",
                "mgr",
                mgr_caps[who],
                "-o",
                str(keyrings[who]),
            )

        def as_(who: str, *args: str) -> subprocess.CompletedProcess[str]:
            return cluster.run(
                *SCHED, *args, "--id", users[who], "--keyring", str(keyrings[who]), check=False
            )

        def refused(proc: subprocess.CompletedProcess[str], message: str) -> None:
            assert proc.returncode == EACCES, (proc.returncode, proc.stderr)
            match = re.search(r"failed: \(13\) Permission denied: (.*)$", proc.stderr, re.M)
            assert match, proc.stderr
            assert match.group(1).startswith(message), proc.stderr

        # The administrator schedules p2 and the global level.
        sched(cluster, "add", "-p", p2, "1h")
        sched(cluster, "add", "1d", "03:21")

        # r1 may change its own pool...
        assert as_("r1", "add", "-p", p1, "1h").returncode == 0
        assert as_("r1", "add", "-p", p1, "--image", "img", "2h").returncode == 0
        assert as_("r1", "rm", "-p", p1, "--image", "img", "2h").returncode == 0
        assert as_("r1", "add", "-p", p1, "--image", "img", "3h").returncode == 0
        # ... not another pool, nor the global level.
        refused(as_("r1", "add", "-p", p2, "1h"), f"not authorized on pool={p2}, namespace=None")
        refused(as_("r1", "rm", "-p", p2), f"not authorized on pool={p2}, namespace=None")
        refused(as_("r1", "add", "1h"), "not authorized on pool=None, namespace=None")
        refused(as_("r1", "rm"), "not authorized on pool=None, namespace=None")
        assert as_("r1", "ls", "-p", p2).returncode == EACCES

        # r1 sees only its pool's schedules and images.
        listed = as_("r1", "ls", "-R", "--format", "json")
        assert listed.returncode == 0, listed.stderr
        rows = [(r["pool"], r["namespace"], r["image"]) for r in json.loads(listed.stdout)]
        assert rows == [(p1, "-", "-"), (p1, "", "img")]

        def r1_status() -> list[str]:
            proc = as_("r1", "status", "--format", "json")
            assert proc.returncode == 0, proc.stderr
            return sorted(entry["image"] for entry in json.loads(proc.stdout))

        # (The global schedule also covers other tests' pools on the shared cluster.)
        wait_until(
            lambda: {f"{p1}/img", f"{p2}/img"} <= set(status_images(cluster)),
            PROMPT,
            "the administrator's `status` to list both pools' images",
        )
        assert r1_status() == [f"{p1}/img"]

        # r2: refused by the mgr's own cap check, not by the module.
        for args in (("add", "-p", p1, "1h"), ("ls", "-R"), ("status",)):
            proc = as_("r2", *args)
            assert proc.returncode in (EACCES, 74), (args, proc.returncode, proc.stderr)
            assert "(13) Permission denied" in proc.stderr, (args, proc.stderr)
            assert "not authorized on" not in proc.stderr, (args, proc.stderr)

        # Nothing r1 or r2 tried changed the administrator's schedules.
        admin_rows = [
            (r["pool"], r["namespace"], r["image"], [i["interval"] for i in r["items"]])
            for r in ls_r_json(cluster)
            if r["pool"] in (p1, p2, "-")
        ]
        assert admin_rows == [
            ("-", "-", "-", ["1d"]),
            (p1, "-", "-", ["1h"]),
            (p1, "", "img", ["3h"]),
            (p2, "-", "-", ["1h"]),
        ]
    finally:
        for user in users.values():
            cluster.run("ceph", "auth", "rm", f"client.{user}", check=False)
