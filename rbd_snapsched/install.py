"""Install rbd_snapsched into a running cluster's mgrs, or take it out again.

    python3 -m rbd_snapsched.install install   [--module-path DIR] [--extend-caps] [--dry-run]
    python3 -m rbd_snapsched.install uninstall [--module-path DIR] [--restore-caps] [--dry-run]

Run it on the mgr host (for several mgr hosts, copy the directory to each first; see the
README). The Debian package runs it as ``rbd-snapsched install|uninstall`` (``packaged``): it
then links the module into the mgr module path instead of copying it, and records the link in
``/var/lib/rbd-snapsched/links`` for the package's prerm. ``install``:

1. finds every client whose mgr caps give it the schedule commands through rbd_support only
   (``profile rbd pool=…``, as ceph-csi, Rook and OpenStack clients are set up): once our module
   answers those commands the mgr refuses such a client with EACCES. It names them and the grant
   each needs; ``--extend-caps`` adds ``allow module rbd_snapsched with pool=… [namespace=…]``
   (same pools, namespaces and permission as the rbd profile, nothing wider) *before* the module
   is enabled, so they never see an EACCES;
2. copies this package into the mgr module path (default: the ``mgr_module_path`` the running
   mgrs report), or, from the Debian package, links it there;
3. enables the module with ``--force``: that changes the enabled set, so every mgr, active and
   standby, respawns and loads it already enabled, with no moment where the schedule commands
   fail with EOPNOTSUPP. Over an enabled module (an upgrade) it fails the mgrs over one by one
   until each has restarted on the new code, standbys included.

``uninstall`` disables the module and removes the directory (rbd_support answers the commands
again); ``--restore-caps`` then removes the rbd_snapsched grants. ``--dry-run`` prints what
either would do and changes nothing. The ``ceph`` CLI is used as is: set CEPH_CONF/CEPH_ARGS to
pick a cluster.

Standard library only: it runs outside the mgr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .caps import CapsError, missing_grants, with_grants, without_ours

NAME = "rbd_snapsched"
PACKAGE_DIR = Path(__file__).resolve().parent
# Where the Debian package records the links it made (one line each: the module path, a tab,
# the CEPH_CONF it was installed with or nothing), so its prerm can hand the commands back.
STATE_DIR = Path("/var/lib/rbd-snapsched")
LINKS = "links"
CEPH_TIMEOUT = 120.0  # seconds: one ceph CLI call (it waits for a monitor without end)
PROBE = ["rbd", "mirror", "snapshot", "schedule", "takeover", "--dry-run"]
SERVICES = ("mon", "osd", "mds", "mgr")


class InstallError(RuntimeError):
    pass


def ceph(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(
            ["ceph", *args], capture_output=True, text=True, check=False, timeout=CEPH_TIMEOUT
        )
    except subprocess.TimeoutExpired as e:
        raise InstallError(f"ceph {' '.join(args)} timed out after {CEPH_TIMEOUT:.0f}s") from e
    if check and proc.returncode != 0:
        raise InstallError(f"ceph {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def ceph_json(*args: str) -> Any:
    return json.loads(ceph(*args, "--format", "json").stdout)


def module_path(given: Path | None) -> Path:
    """``given``, else the module path the running mgrs report (``ceph config show``: it
    includes a ``mgr module path`` set in ceph.conf, which ``ceph config get`` does not see),
    else the cluster's configured one."""
    if given is not None:
        return given
    active, standbys = mgr_names(ceph_json("mgr", "dump"))
    paths: dict[str, list[str]] = {}
    for name in [n for n in (active, *standbys) if n]:
        shown = ceph("config", "show", f"mgr.{name}", "mgr_module_path", check=False)
        if shown.returncode == 0 and shown.stdout.strip():
            paths.setdefault(shown.stdout.strip(), []).append(name)
    if len(paths) > 1:
        seen = "; ".join(f"{p} ({', '.join(names)})" for p, names in sorted(paths.items()))
        raise InstallError(f"the mgrs' module paths differ: {seen}; pass --module-path")
    if paths:
        return Path(next(iter(paths)))
    return Path(ceph("config", "get", "mgr", "mgr_module_path").stdout.strip())


def wait_until(what: str, check: bool, timeout: float = 120) -> None:
    """Poll the active mgr until our module answers (``check``) or stops answering."""
    deadline = time.monotonic() + timeout
    while (ceph(*PROBE, check=False).returncode == 0) != check:
        if time.monotonic() > deadline:
            raise InstallError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(1)


# -- caps ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CapsChange:
    entity: str
    caps: dict[str, str]  # every service's caps, as stored
    new_mgr: str
    grants: list[str]  # the grants added (install) or removed (uninstall)

    def command(self) -> list[str]:
        """``ceph auth caps`` replaces every service's caps: all of them are passed."""
        caps = {**self.caps, "mgr": self.new_mgr}
        args = [part for svc in SERVICES if caps.get(svc) for part in (svc, caps[svc])]
        args += [p for svc, cap in caps.items() if svc not in SERVICES for p in (svc, cap)]
        return ["auth", "caps", self.entity, *args]

    def shell(self) -> str:
        return "ceph " + " ".join(_quote(a) for a in self.command())


def _quote(arg: str) -> str:
    return arg if arg and all(c.isalnum() or c in "._-/=" for c in arg) else f"'{arg}'"


def auth_entries() -> list[dict[str, Any]]:
    dump = ceph_json("auth", "ls")
    entries: list[dict[str, Any]] = dump.get("auth_dump", dump) if isinstance(dump, dict) else dump
    return [e for e in entries if str(e.get("entity", "")).startswith("client.")]


def caps_to_extend() -> tuple[list[CapsChange], list[str]]:
    """Clients that would lose the schedule commands, with the caps that keep them; and the
    clients whose mgr caps could not be read (left alone)."""
    changes: list[CapsChange] = []
    unreadable: list[str] = []
    for entry in auth_entries():
        caps = {str(k): str(v) for k, v in entry.get("caps", {}).items()}
        try:
            grants = missing_grants(caps.get("mgr", ""))
        except CapsError as e:
            unreadable.append(f"{entry['entity']}: {e}")
            continue
        if grants:
            texts = [g.text() for g in grants]
            changes.append(
                CapsChange(entry["entity"], caps, with_grants(caps["mgr"], grants), texts)
            )
    return changes, unreadable


def caps_to_restore() -> list[CapsChange]:
    changes: list[CapsChange] = []
    for entry in auth_entries():
        caps = {str(k): str(v) for k, v in entry.get("caps", {}).items()}
        try:
            mgr, removed = without_ours(caps.get("mgr", ""))
        except CapsError:
            continue
        if removed:
            changes.append(CapsChange(entry["entity"], caps, mgr, removed))
    return changes


def report_caps(changes: list[CapsChange], unreadable: list[str], *, apply: bool) -> None:
    for change in changes:
        print(
            f"{change.entity}: mgr caps '{change.caps.get('mgr', '')}' reach the schedule "
            f"commands through rbd_support only: EACCES once {NAME} answers them"
        )
        print(f"  needs: {'; '.join(change.grants)}")
        print(f"  {'running' if apply else 'would run'}: {change.shell()}")
    for line in unreadable:
        print(f"warning: caps not understood, left alone: {line}")


def apply_caps(changes: list[CapsChange]) -> None:
    for change in changes:
        ceph(*change.command())
        stored = ceph_json("auth", "get", change.entity)
        entry = stored[0] if isinstance(stored, list) else stored
        if entry.get("caps", {}).get("mgr") != change.new_mgr:
            raise InstallError(f"{change.entity}: mgr caps not updated: {entry.get('caps')}")


# -- mgr restarts ---------------------------------------------------------------------------


def mgr_names(dump: dict[str, Any]) -> tuple[str, list[str]]:
    return str(dump.get("active_name", "")), [str(s["name"]) for s in dump.get("standbys", [])]


def restart_every_mgr(timeout: float = 180) -> None:
    """Fail the mgrs over one at a time until every one has restarted (and so re-read its
    module path): a failed active respawns as a standby, a standby takes over. ``ceph mgr
    fail`` of a standby does not restart it (measured), hence the round of failovers."""
    active, standbys = mgr_names(ceph_json("mgr", "dump"))
    pending = {active, *standbys}
    deadline = time.monotonic() + timeout
    for _ in range(2 * len(pending) + 2):
        if not pending:
            return
        dump = ceph_json("mgr", "dump")
        active = str(dump.get("active_name", ""))
        gid = dump.get("active_gid")
        ceph("mgr", "fail", active)
        pending.discard(active)
        print(f"restarted mgr {active} (failed over)", flush=True)
        # Wait for a new active that is available, and for the failed one to be back.
        while True:
            if time.monotonic() > deadline:
                raise InstallError(f"timed out after {timeout:.0f}s restarting the mgrs")
            time.sleep(1)
            dump = ceph_json("mgr", "dump")
            now_active, now_standbys = mgr_names(dump)
            back = active in now_standbys or (now_active == active and dump["active_gid"] != gid)
            if dump.get("available") and dump.get("active_gid") != gid and back:
                break
    if pending:
        raise InstallError(f"mgrs not restarted: {', '.join(sorted(pending))}")


# -- the Debian package's links -------------------------------------------------------------


def read_links(state_dir: Path) -> list[tuple[str, str]]:
    """The links the package recorded: (module path, CEPH_CONF or "") each."""
    try:
        text = (state_dir / LINKS).read_text()
    except FileNotFoundError:
        return []
    return [
        (path, conf)
        for path, _, conf in (line.partition("\t") for line in text.splitlines())
        if path
    ]


def write_links(state_dir: Path, links: list[tuple[str, str]]) -> None:
    """Replace the record at once (the prerm may be reading the old one); none: no file."""
    target = state_dir / LINKS
    if not links:
        target.unlink(missing_ok=True)
        return
    state_dir.mkdir(parents=True, exist_ok=True)
    staging = state_dir / f".{LINKS}.new"
    staging.write_text("".join(f"{path}\t{conf}\n" for path, conf in links))
    os.replace(staging, target)


def record_link(state_dir: Path, path: Path) -> None:
    conf = os.environ.get("CEPH_CONF", "")
    conf = os.path.abspath(conf) if conf else ""  # the prerm runs from another directory
    if any(c in str(path) + conf for c in "\t\n"):
        raise InstallError(f"cannot record {path} (CEPH_CONF {conf!r}): a tab or newline in it")
    links = [link for link in read_links(state_dir) if link[0] != str(path)]
    write_links(state_dir, [*links, (str(path), conf)])


def forget_link(state_dir: Path, path: Path) -> None:
    links = read_links(state_dir)
    if any(link[0] == str(path) for link in links):
        write_links(state_dir, [link for link in links if link[0] != str(path)])


def remove_entry(dest: Path) -> None:
    if dest.is_symlink() or dest.is_file():
        dest.unlink()
    elif dest.exists():
        shutil.rmtree(dest)


def put_module(path: Path, *, link: bool) -> str:
    """Put this package at ``path/NAME``: a copy, or a link to it; replaced in one rename where
    the old entry is of the same kind. Says what it did."""
    dest = path / NAME
    staging = path / f".{NAME}.new"
    remove_entry(staging)
    if link:
        staging.symlink_to(PACKAGE_DIR, target_is_directory=True)
        if not dest.is_symlink():
            remove_entry(dest)  # a copy made from a clone: a link cannot replace it in a rename
        os.replace(staging, dest)
        return f"linked {dest} -> {PACKAGE_DIR}"
    shutil.copytree(PACKAGE_DIR, staging, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    remove_entry(dest)
    staging.rename(dest)
    return f"copied {PACKAGE_DIR} to {dest}"


# -- install / uninstall --------------------------------------------------------------------


def install(
    path: Path,
    *,
    extend_caps: bool,
    dry_run: bool,
    link: bool = False,
    state_dir: Path = STATE_DIR,
) -> None:
    """``link``: link the module into ``path`` (the Debian package's copy stays where dpkg put
    it, and upgrades with the package) and record the link in ``state_dir``; else copy it."""
    if not path.is_dir():
        raise InstallError(f"mgr module path {path} is not a directory")
    changes, unreadable = caps_to_extend()
    report_caps(changes, unreadable, apply=extend_caps and not dry_run)
    if changes and not extend_caps:
        print(
            f"WARNING: {len(changes)} client(s) above will get EACCES on the schedule commands; "
            "rerun with --extend-caps to extend their caps first (--dry-run shows the commands)"
        )
    dest = path / NAME
    upgrade = dest.exists() or dest.is_symlink()
    enabled = NAME in ceph_json("mgr", "module", "ls").get("enabled_modules", [])
    if dry_run:
        print(f"would {'link' if link else 'copy'} {PACKAGE_DIR} {'at' if link else 'to'} {dest}")
        if enabled:
            print("would restart every mgr (one failover at a time) to load the new code")
        else:
            print(f"would enable {NAME} (every mgr respawns and loads it)")
        return
    if extend_caps:
        apply_caps(changes)
    if link:
        record_link(state_dir, path)  # first: the prerm must know of every link it may find
    print(put_module(path, link=link))
    if enabled:
        # The enabled set does not change, so nothing respawns by itself: restart every mgr,
        # standbys too, or a standby would take over later with the old code.
        restart_every_mgr()
        print("upgraded: every mgr restarted on the new code")
    else:
        # --force: the running mgrs do not know the module yet; the respawn loads it enabled.
        ceph("mgr", "module", "enable", NAME, "--force")
        print(f"enabled {NAME}: the mgrs respawn and load it")
    wait_until(f"{NAME} to answer", check=True)
    print(f"{NAME} answers the rbd mirror snapshot schedule commands")
    if not upgrade:
        dry = ceph(*PROBE).stdout.strip()
        if not dry.startswith("nothing to take over"):
            print("rbd_support still holds schedules (their images stay its own until moved):")
            print("\n".join(f"  {line}" for line in dry.splitlines()))
            print("move them with: ceph rbd mirror snapshot schedule takeover")


def uninstall(
    path: Path, *, restore_caps: bool, dry_run: bool, state_dir: Path | None = None
) -> None:
    """``state_dir``: forget the package's record of ``path`` once the module is out."""
    dest = path / NAME
    restore = caps_to_restore()
    if dry_run:
        print(f"would disable {NAME} and remove {dest}")
        for change in restore:
            verb = "would run" if restore_caps else "could run (--restore-caps)"
            print(f"{change.entity}: {verb}: {change.shell()}")
        return
    listing = ceph("rbd", "mirror", "snapshot", "schedule", "list", check=False)
    levels = json.loads(listing.stdout) if listing.returncode == 0 and listing.stdout else {}
    remove_entry(dest)
    print(f"removed {dest}")
    ceph("mgr", "module", "disable", NAME)
    wait_until(f"{NAME} to be gone from the mgrs", check=False)
    print(f"disabled {NAME}: rbd_support answers the schedule commands again")
    if state_dir is not None:
        forget_link(state_dir, path)
    for change in restore:
        if restore_caps:
            apply_caps([change])
            print(f"{change.entity}: removed {'; '.join(change.grants)}")
        else:
            print(f"{change.entity} keeps {'; '.join(change.grants)} (--restore-caps removes it)")
    if levels:
        print(f"{len(levels)} level(s) keep their schedules in {NAME}'s storage, now unused.")
        print("To hand them to rbd_support (mind: it reads start times as mgr-local time):")
        for entry in levels.values():
            for item in entry["schedule"]:
                start = f" {item['start_time']}" if item.get("start_time") else ""
                name = entry["name"]
                print(f"  ceph rbd mirror snapshot schedule add '{name}' {item['interval']}{start}")


def main(
    argv: Sequence[str] | None = None, *, packaged: bool = False, state_dir: Path = STATE_DIR
) -> int:
    """``packaged``: run as the Debian package's ``rbd-snapsched`` (link, and record links in
    ``state_dir``)."""
    parser = argparse.ArgumentParser(
        prog="rbd-snapsched" if packaged else None,
        description=(__doc__ or "").split("\n\n")[0],
    )
    parser.add_argument("action", choices=("install", "uninstall"))
    parser.add_argument(
        "--module-path", type=Path, help="the mgrs' module path (default: mgr_module_path)"
    )
    parser.add_argument(
        "--extend-caps",
        action="store_true",
        help="install: give clients with rbd profiles the matching rbd_snapsched grant first",
    )
    parser.add_argument(
        "--restore-caps",
        action="store_true",
        help="uninstall: remove the rbd_snapsched grants from every client",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="say what would change; change nothing"
    )
    args = parser.parse_args(argv)
    try:
        path = module_path(args.module_path)
        if args.action == "install":
            install(
                path,
                extend_caps=args.extend_caps,
                dry_run=args.dry_run,
                link=packaged,
                state_dir=state_dir,
            )
        else:
            uninstall(
                path,
                restore_caps=args.restore_caps,
                dry_run=args.dry_run,
                state_dir=state_dir if packaged else None,
            )
    except (InstallError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
