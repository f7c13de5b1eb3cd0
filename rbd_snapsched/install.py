"""Install rbd_snapsched into a running cluster's mgrs, or take it out again.

    python3 -m rbd_snapsched.install install   [--module-path DIR]
    python3 -m rbd_snapsched.install uninstall [--module-path DIR]

Run it on the mgr host (for several mgr hosts, copy the directory to each first; see the
README). ``install`` copies this package into the mgr module path (default: the cluster's
``mgr_module_path``, normally /usr/share/ceph/mgr) and enables the module with ``--force``:
that changes the enabled set, so every mgr, active and standby, respawns and loads it already
enabled, with no moment where the schedule commands fail with EOPNOTSUPP. ``uninstall`` removes
the directory and disables the module; the mgrs respawn without it and rbd_support answers
the commands again. The ``ceph`` CLI is used as is: set CEPH_CONF/CEPH_ARGS to pick a cluster.

Standard library only: it runs outside the mgr.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

NAME = "rbd_snapsched"
PACKAGE_DIR = Path(__file__).resolve().parent
PROBE = ["rbd", "mirror", "snapshot", "schedule", "takeover", "--dry-run"]


class InstallError(RuntimeError):
    pass


def ceph(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ceph", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise InstallError(f"ceph {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def module_path(given: Path | None) -> Path:
    if given is not None:
        return given
    return Path(ceph("config", "get", "mgr", "mgr_module_path").stdout.strip())


def wait_until(what: str, check: bool, timeout: float = 120) -> None:
    """Poll the active mgr until our module answers (``check``) or stops answering."""
    deadline = time.monotonic() + timeout
    while (ceph(*PROBE, check=False).returncode == 0) != check:
        if time.monotonic() > deadline:
            raise InstallError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(1)


def install(path: Path) -> None:
    if not path.is_dir():
        raise InstallError(f"mgr module path {path} is not a directory")
    dest = path / NAME
    staging = path / f".{NAME}.new"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(PACKAGE_DIR, staging, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    upgrade = dest.exists() or dest.is_symlink()
    if dest.is_symlink() or dest.is_file():
        dest.unlink()
    elif dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    print(f"copied {PACKAGE_DIR} to {dest}")
    enabled = NAME in json.loads(ceph("mgr", "module", "ls", "--format", "json").stdout).get(
        "enabled_modules", []
    )
    if enabled:
        # Already enabled: the enabled set does not change, so restart the active mgr to load
        # the new code (standbys load it when they next start).
        active = json.loads(ceph("mgr", "dump", "--format", "json").stdout)["active_name"]
        ceph("mgr", "fail", active)
        print(f"upgraded: restarted the active mgr ({active})")
    else:
        # --force: the running mgrs do not know the module yet; the respawn loads it enabled.
        ceph("mgr", "module", "enable", NAME, "--force")
        print(f"enabled {NAME}: the mgrs respawn and load it")
    wait_until(f"{NAME} to answer", check=True)
    print(f"{NAME} answers the rbd mirror snapshot schedule commands")
    if not upgrade:
        dry_run = ceph(*PROBE).stdout.strip()
        if not dry_run.startswith("nothing to take over"):
            print("rbd_support still holds schedules (their images stay its own until moved):")
            print("\n".join(f"  {line}" for line in dry_run.splitlines()))
            print("move them with: ceph rbd mirror snapshot schedule takeover")


def uninstall(path: Path) -> None:
    dest = path / NAME
    listing = ceph("rbd", "mirror", "snapshot", "schedule", "list", check=False)
    levels = json.loads(listing.stdout) if listing.returncode == 0 and listing.stdout else {}
    if dest.is_symlink() or dest.is_file():
        dest.unlink()
    elif dest.exists():
        shutil.rmtree(dest)
    print(f"removed {dest}")
    ceph("mgr", "module", "disable", NAME)
    wait_until(f"{NAME} to be gone from the mgrs", check=False)
    print(f"disabled {NAME}: rbd_support answers the schedule commands again")
    if levels:
        print(f"{len(levels)} level(s) keep their schedules in {NAME}'s storage, now unused.")
        print("To hand them to rbd_support (mind: it reads start times as mgr-local time):")
        for entry in levels.values():
            for item in entry["schedule"]:
                start = f" {item['start_time']}" if item.get("start_time") else ""
                name = entry["name"]
                print(f"  ceph rbd mirror snapshot schedule add '{name}' {item['interval']}{start}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("action", choices=("install", "uninstall"))
    parser.add_argument(
        "--module-path", type=Path, help="the mgrs' module path (default: mgr_module_path)"
    )
    args = parser.parse_args(argv)
    try:
        path = module_path(args.module_path)
        if args.action == "install":
            install(path)
        else:
            uninstall(path)
    except (InstallError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
