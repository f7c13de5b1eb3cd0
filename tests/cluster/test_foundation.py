"""The module loads in a real ceph-mgr and answers the schedule commands through the CLIs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cephcluster import Cluster
from tests.runtime_rpc import Remote

pytestmark = pytest.mark.ceph_cluster

UPSTREAM_SIGNATURES = [
    [
        "add",
        {"name": "level_spec", "type": "CephString"},
        {"name": "interval", "type": "CephString"},
        {"name": "start_time", "req": "false", "type": "CephString"},
    ],
    [
        "remove",
        {"name": "level_spec", "type": "CephString"},
        {"name": "interval", "req": "false", "type": "CephString"},
        {"name": "start_time", "req": "false", "type": "CephString"},
    ],
    ["list", {"name": "level_spec", "req": "false", "type": "CephString"}],
    ["status", {"name": "level_spec", "req": "false", "type": "CephString"}],
]


def test_module_enabled_and_healthy(cluster: Cluster) -> None:
    modules = cluster.ceph_json("mgr", "module", "ls")
    assert "rbd_snapsched" in modules["enabled_modules"]
    assert cluster.health() == "HEALTH_OK"
    assert "MGR_MODULE_ERROR" not in cluster.ceph_json("health", "detail").get("checks", {})


def _plain(word: Any) -> Any:
    """A signature word with ``req`` as Pacific's mon dumps it: Reef and Tentacle dump
    ``"req": false`` where Pacific dumps ``"req": "false"`` for the same declaration."""
    if isinstance(word, dict) and isinstance(word.get("req"), bool):
        return {**word, "req": str(word["req"]).lower()}
    return word


def test_commands_declared_with_upstream_signatures(remote_client: Remote) -> None:
    ret, out, err = remote_client.call(
        "mgr_command", json.dumps({"prefix": "get_command_descriptions"}), b""
    )
    assert ret == 0, err
    prefix = ["rbd", "mirror", "snapshot", "schedule"]
    sigs: list[list[Any]] = [
        [_plain(word) for word in d["sig"][len(prefix) :]]
        for d in json.loads(out).values()
        if d["sig"][: len(prefix)] == prefix
    ]
    # Ours and rbd_support's: the same four signatures, declared twice; plus our own commands.
    level = {"name": "level_spec", "type": "CephString"}
    ours = [
        ["takeover", {"name": "dry_run", "req": "false", "type": "CephBool"}],
        ["pause", level],
        ["resume", level],
        ["snapshot-now", level],
        ["snapshot-now-status", level, {"name": "requested_at", "type": "CephString"}],
        [
            "explain",
            {**level, "req": "false"},
            {"name": "count", "req": "false", "type": "CephInt"},
        ],
        ["report", {**level, "req": "false"}],
    ]
    expected = [*UPSTREAM_SIGNATURES, *UPSTREAM_SIGNATURES, *ours]

    def key(sig: Any) -> str:
        return json.dumps(sig, sort_keys=True)

    assert sorted(map(key, sigs)) == sorted(map(key, expected))


def test_empty_listings_through_the_cli(cluster: Cluster) -> None:
    assert (
        cluster.run("ceph", "rbd", "mirror", "snapshot", "schedule", "list").stdout.rstrip("\n")
        == "{}"
    )
    status = json.loads(
        cluster.run("ceph", "rbd", "mirror", "snapshot", "schedule", "status").stdout
    )
    assert status == {"scheduled_images": []}
    table = cluster.run("rbd", "mirror", "snapshot", "schedule", "ls", "-R").stdout
    assert table.split() == ["POOL", "NAMESPACE", "IMAGE", "SCHEDULE"]
    assert (
        cluster.run(
            "rbd", "mirror", "snapshot", "schedule", "ls", "-R", "--format", "json"
        ).stdout.strip()
        == "[]"
    )
    status_table = cluster.run("rbd", "mirror", "snapshot", "schedule", "status").stdout
    assert status_table.split() == ["SCHEDULE", "TIME", "IMAGE"]
    # Non-recursive ls of a level without a schedule fails, as upstream.
    assert cluster.run("rbd", "mirror", "snapshot", "schedule", "ls", check=False).returncode != 0
