"""Living beside rbd_support: install into a cluster that has schedules, take them over, uninstall.

Uses its own cluster, booted like a packaged one: stock modules only (rbd_support), an active
and a standby mgr. Waits for three minute slots at most (bounded: about 4 minutes in all).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.cephcluster import Cluster
from tests.slots import sleep_past_next_minute

pytestmark = pytest.mark.ceph_cluster

SCHEDULE = ("rbd", "mirror", "snapshot", "schedule")
IMAGES = ("legacy/a", "legacy/b", "legacy/ns1/c")


@pytest.fixture(scope="module")
def packaged(release: str) -> Iterator[Cluster]:
    cluster = Cluster.boot(with_module=False, standby_mgrs=1, release=release)
    try:
        # Installs, upgrades and failovers respawn mgrs, and Pacific's mgr sometimes dies of
        # Ceph's cephx race as it starts: restarted as systemd would (revive_crashed_mgrs).
        with cluster.supervised_mgrs():
            yield cluster
    finally:
        cluster.teardown()


def installer(
    cluster: Cluster, action: str, *flags: str, src: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python3 -m rbd_snapsched.install ACTION`` from ``src`` (default: the checkout), with the
    release's own python3 and ceph CLI, on the host or in the release's chroot."""
    proc = subprocess.run(
        cluster.argv(
            "/usr/bin/python3",
            "-m",
            "rbd_snapsched.install",
            action,
            "--module-path",
            str(cluster.module_path),
            *flags,
            env={"PYTHONPATH": str(src or cluster.module_src)},
        ),
        cwd="/",  # not the checkout: `python3 -m` puts the cwd before PYTHONPATH
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr + cluster.log_tails(60)
    return proc


def listing(cluster: Cluster) -> list[dict[str, object]]:
    out = cluster.run(*SCHEDULE, "ls", "-R", "--format", "json").stdout
    return sorted(json.loads(out), key=json.dumps)


def mirror_snapshot_minutes(cluster: Cluster, image: str) -> list[str]:
    """The minute (UTC, HH:MM) of each mirror snapshot of ``image``."""
    snaps = json.loads(cluster.run("rbd", "snap", "ls", "--all", "--format", "json", image).stdout)
    return [
        datetime.strptime(s["timestamp"], "%a %b %d %H:%M:%S %Y").strftime("%H:%M")
        for s in snaps
        if s.get("namespace", {}).get("type") == "mirror"
    ]


def health_checks(cluster: Cluster) -> dict[str, object]:
    checks: dict[str, object] = cluster.ceph_json("health", "detail").get("checks", {})
    return checks


def diagnose(cluster: Cluster) -> str:
    status = cluster.run(*SCHEDULE, "status", check=False).stdout
    logs = [
        line
        for mgr in cluster.mgr_ids
        for line in (cluster.log_dir / f"mgr.{mgr}.log").read_text().splitlines()
        if "rbd_snapsched" in line or ("rbd_support" in line and "Mirror" in line)
    ]
    return status + "\n".join(logs[-40:])


def wait_until_next_minute(margin: float = 20) -> str:
    return sleep_past_next_minute(margin).strftime("%H:%M")


def test_install_take_over_and_uninstall(packaged: Cluster) -> None:
    c = packaged
    c.create_rbd_pool("legacy")
    c.run("rbd", "namespace", "create", "legacy/ns1")
    c.run("rbd", "mirror", "pool", "enable", "legacy/ns1", "image")
    for image in IMAGES:
        c.run("rbd", "create", "--size", "16M", image)
        c.run("rbd", "mirror", "image", "enable", image, "snapshot")
    # Schedules made by the stock rbd_support (our module is not on the mgrs' path yet).
    c.run(*SCHEDULE, "add", "-p", "legacy", "1m")
    c.run(*SCHEDULE, "add", "-p", "legacy/ns1", "--image", "c", "1m")
    c.run(*SCHEDULE, "add", "1d", "01:30")
    theirs = listing(c)
    assert len(theirs) == 3
    assert "RBD_SNAPSCHED" not in c.run("ceph", "health", "detail").stdout

    out = installer(c, "install").stdout
    assert "rbd_snapsched answers" in out and "would move" in out
    assert "rbd_snapsched" in c.ceph_json("mgr", "module", "ls")["enabled_modules"]
    # Ours answers now, holds nothing yet, and warns that rbd_support still holds schedules.
    assert listing(c) == []
    # The warning comes with the module's first refresh, and reaches the mons with the mgr's
    # next report (every few seconds): wait for it, at most 20 s.
    deadline = time.monotonic() + 20
    while "RBD_SNAPSCHED_RBD_SUPPORT_SCHEDULES" not in (checks := health_checks(c)):
        assert time.monotonic() < deadline, f"no rbd_support warning: {checks}"
        time.sleep(0.5)
    warning = json.dumps(checks["RBD_SNAPSCHED_RBD_SUPPORT_SCHEDULES"])
    assert "rbd_support still holds 3" in warning and "takeover" in warning
    status = json.loads(c.run(*SCHEDULE, "status", "--format", "json").stdout)
    assert status == []  # their images stay theirs alone: nothing doubled

    dry = c.run("ceph", *SCHEDULE, "takeover", "--dry-run").stdout
    assert dry.count("would move") == 3, dry
    assert listing(c) == []

    moved = c.run("ceph", *SCHEDULE, "takeover").stdout
    assert moved.count("moved ") == 3, moved
    assert listing(c) == theirs
    # The warning clears with the rescan takeover triggers, and reaches the mons with the
    # mgr's next report (every few seconds).
    deadline = time.monotonic() + 20
    while "RBD_SNAPSCHED_RBD_SUPPORT_SCHEDULES" in health_checks(c):
        assert time.monotonic() < deadline, "the rbd_support warning did not clear"
        time.sleep(0.5)
    again = c.run("ceph", *SCHEDULE, "takeover").stdout
    assert again.startswith("nothing to take over"), again
    # rbd_support's storage is empty: its object has no keys and its option is unset.
    keys = c.run(
        "rados", "-p", "legacy", "listomapkeys", "rbd_mirror_snapshot_schedule", check=False
    ).stdout
    assert keys.strip() == ""
    option = c.run("ceph", "config", "get", "mgr", "mgr/rbd_support/mirror_snapshot_schedule")
    assert option.stdout.strip() == ""
    # The standby mgr loaded it too: fail over and it still answers with the same schedules.
    active = c.ceph_json("mgr", "dump")["active_name"]
    c.run("ceph", "mgr", "fail", active)
    deadline = time.monotonic() + 60
    while c.run("ceph", *SCHEDULE, "takeover", "--dry-run", check=False).returncode:
        assert time.monotonic() < deadline, "no mgr answered after failover"
        time.sleep(1)
    assert listing(c) == theirs

    # Exactly one new mirror snapshot per image per slot, over two slots: not two.
    wait_until_next_minute()
    slots = [wait_until_next_minute(), wait_until_next_minute()]
    for image in IMAGES:
        minutes = mirror_snapshot_minutes(c, image)
        for slot in slots:
            assert minutes.count(slot) == 1, (image, slot, minutes, diagnose(c))

    out = installer(c, "uninstall").stdout
    assert "rbd_support answers" in out
    assert "ceph rbd mirror snapshot schedule add 'legacy/' 1m" in out
    assert "rbd_snapsched" not in c.ceph_json("mgr", "module", "ls")["enabled_modules"]
    # rbd_support answers again: it holds nothing now, and our takeover command is gone.
    assert listing(c) == []
    assert c.run("ceph", *SCHEDULE, "takeover", check=False).returncode == 22
    assert c.health() == "HEALTH_OK"


# -- restricted clients and upgrades ----------------------------------------------------------

CSI_CAPS = {"mon": "profile rbd", "osd": "profile rbd pool=capsa", "mgr": "profile rbd pool=capsa"}


def make_client(cluster: Cluster, name: str, caps: dict[str, str]) -> str:
    """A client with ``caps`` and its keyring in the cluster directory; the keyring's path."""
    keyring = cluster.root / f"{name}.keyring"
    args = [part for svc, cap in caps.items() for part in (svc, cap)]
    cluster.run("ceph", "auth", "get-or-create", name, *args, "-o", str(keyring))
    return str(keyring)


def stored_caps(cluster: Cluster, name: str) -> dict[str, str]:
    entry = cluster.ceph_json("auth", "get", name)
    caps: dict[str, str] = (entry[0] if isinstance(entry, list) else entry)["caps"]
    return caps


def test_restricted_client_keeps_its_pool_across_install_and_uninstall(packaged: Cluster) -> None:
    c = packaged
    assert "rbd_snapsched" not in c.ceph_json("mgr", "module", "ls")["enabled_modules"]
    for pool in ("capsa", "capsb"):
        c.create_rbd_pool(pool)
    keyring = make_client(c, "client.csi", CSI_CAPS)

    def as_csi(*args: str) -> subprocess.CompletedProcess[str]:
        return c.run(*SCHEDULE, *args, "--id", "csi", "--keyring", keyring, check=False)

    assert as_csi("add", "-p", "capsa", "1d").returncode == 0  # rbd_support answers
    assert as_csi("rm", "-p", "capsa", "1d").returncode == 0

    dry = installer(c, "install", "--extend-caps", "--dry-run").stdout
    assert "client.csi: mgr caps 'profile rbd pool=capsa'" in dry, dry
    assert "needs: allow module rbd_snapsched with pool=capsa rw" in dry
    assert "would run: ceph auth caps client.csi" in dry
    assert "client.admin" not in dry  # allow *: keeps every command
    assert stored_caps(c, "client.csi") == CSI_CAPS  # a dry run changes nothing
    assert "rbd_snapsched" not in c.ceph_json("mgr", "module", "ls")["enabled_modules"]

    out = installer(c, "install", "--extend-caps").stdout
    assert "running: ceph auth caps client.csi" in out, out
    assert stored_caps(c, "client.csi") == {
        **CSI_CAPS,
        "mgr": "profile rbd pool=capsa, allow module rbd_snapsched with pool=capsa rw",
    }
    # Through our module now: its own pool works, and only that.
    assert as_csi("add", "-p", "capsa", "1d").returncode == 0
    assert omap_keys_of(c, "capsa", "rbd_snapsched_mirror_snapshot_schedule") != []
    assert as_csi("ls", "-p", "capsa").stdout.strip() == "every 1d"
    for args in (("add", "-p", "capsb", "1d"), ("add", "1d"), ("ls", "-p", "capsb")):
        refused = as_csi(*args)
        assert refused.returncode == 13, (args, refused.stderr)
    assert as_csi("rm", "-p", "capsa", "1d").returncode == 0

    out = installer(c, "uninstall", "--restore-caps").stdout
    assert "client.csi: removed allow module rbd_snapsched with pool=capsa rw" in out, out
    assert stored_caps(c, "client.csi") == CSI_CAPS
    assert as_csi("add", "-p", "capsa", "1d").returncode == 0  # rbd_support again
    assert as_csi("rm", "-p", "capsa", "1d").returncode == 0
    c.run("ceph", "auth", "rm", "client.csi")


def omap_keys_of(cluster: Cluster, pool: str, oid: str) -> list[str]:
    return cluster.run("rados", "-p", pool, "listomapkeys", oid, check=False).stdout.split()


COMMAND_DESCRIPTIONS = """
import json, sys, rados
c = rados.Rados(conffile=sys.argv[1]); c.connect()
ret, out, err = c.mgr_command(json.dumps({"prefix": "get_command_descriptions"}), b"")
assert ret == 0, err
print(json.dumps([d["help"] for d in json.loads(out).values()]))
"""


def command_help(cluster: Cluster) -> list[str]:
    """Every command's help text, as the active mgr declares them (the release's librados)."""
    proc = subprocess.run(
        cluster.argv("/usr/bin/python3", "-c", COMMAND_DESCRIPTIONS, str(cluster.conf)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    helps: list[str] = json.loads(proc.stdout)
    return helps


def test_upgrade_reaches_the_standby_too(packaged: Cluster) -> None:
    c = packaged
    installer(c, "install")
    # The install respawned every mgr: the upgrade below must find the standby registered, or
    # there is no standby for it to reach. A standby registers once ceph-mgr has loaded every
    # stock module, which is Ceph's start-up, not ours: bounded by MGR_START_TIMEOUT as every
    # mgr start of the suite (61 s measured three times with the suite in a fresh root).
    c.wait_standbys()
    marker = "Show rbd mirror snapshot schedule status (upgraded)"
    new = c.root / "upgrade-src"
    shutil.copytree(c.module_src / "rbd_snapsched", new / "rbd_snapsched")
    module_py = new / "rbd_snapsched" / "module.py"
    text = module_py.read_text()
    assert text.count('desc="Show rbd mirror snapshot schedule status"') == 1
    module_py.write_text(text.replace('"Show rbd mirror snapshot schedule status"', repr(marker)))
    assert marker not in command_help(c)

    out = installer(c, "install", src=new).stdout
    assert "upgraded: every mgr restarted" in out, out
    assert out.count("restarted mgr ") >= 2  # the active and the standby
    assert marker in command_help(c)
    # Whichever mgr is active next runs the new code: fail over and look again. The upgrade
    # restarted the standby too: fail over only once it is registered again, or the failed
    # mgr simply comes back active (bounded: MGR_START_TIMEOUT, then 60 s).
    c.wait_standbys()
    active = c.ceph_json("mgr", "dump")["active_name"]
    c.run("ceph", "mgr", "fail", active)
    deadline = time.monotonic() + 60
    while c.ceph_json("mgr", "dump").get("active_name") in (active, ""):
        assert time.monotonic() < deadline, "the standby did not take over"
        time.sleep(1)
    while c.run(*SCHEDULE, "status", check=False).returncode != 0:
        assert time.monotonic() < deadline, "no mgr answered after failover"
        time.sleep(1)
    assert marker in command_help(c)
    installer(c, "uninstall")
