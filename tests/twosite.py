#!/usr/bin/env python3
"""Two throwaway sites, site-a and site-b, that mirror RBD images to each other with rbd-mirror.

Each site is a ``tests/cephcluster.py`` cluster (one mon, one mgr with rbd_snapsched, one
memstore OSD; its own directory, conf, fsid and mon port) plus an ``rbd-mirror`` daemon that
receives into it (``client.rbd-mirror.a`` on site-a, ``client.rbd-mirror.b`` on site-b). Pools are
in image mirror mode on both sites and peered the way operators do it::

    site-a$ rbd mirror pool peer bootstrap create --site-name site-a POOL > TOKEN
    site-b$ rbd mirror pool peer bootstrap import --site-name site-b --direction rx-tx POOL TOKEN

Two-way (rx-tx), so either site can be primary and a primary pool has a tx peer (librbd refuses a
mirror snapshot without one). Readiness is waited on for real: ``rbd mirror pool status
--verbose`` on each site lists its daemon with health OK. The helpers below observe replication
with the ``rbd`` CLI only (snapshot lists and ``rbd mirror image status``), so any python3 runs
this file::

    python3 tests/twosite.py up [DIR]     # boot both sites, print how to use them
    python3 tests/twosite.py down DIR     # stop every daemon of both sites and delete DIR

Facts measured on Pacific 16.2.15 that shape the helpers:

- ``rbd export POOL/IMG@.mirror.primary...`` fails (ENOENT: the CLI looks names up in the user
  snapshot namespace) and Pacific's ``rbd export`` has no ``--snap-id``: a mirror snapshot is
  read through librbd (``Image.set_snap_by_id``), or, while the image is unchanged since it, from
  the image itself.
- A replica's non-primary mirror snapshot is created *before* its data is copied and holds the
  replica as it was before that sync (the rollback point). The synced data is in the replica
  image itself: compare the replica image, not its snapshot.
- rbd-mirror writes image status in batches every 30 s (``MirrorStatusUpdater``,
  hard-coded), so ``rbd mirror image status`` may report a finished sync up to ~30 s after the
  replica's snapshot is complete.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

if not __package__:  # run as a script (python3 tests/twosite.py): make `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.cephcluster import Cluster, ClusterError, install, log
from tests.polling import wait_for
from tests.releases import RELEASES
from tests.slots import SLOT as SLOT
from tests.slots import mirror_snapshots as snapshot_rows

SITE_A = "site-a"
SITE_B = "site-b"
POOL = "mirrored"
MIRROR_IDS = {SITE_A: "a", SITE_B: "b"}


class TwoSites:
    """site-a and site-b under ``root``. Use ``TwoSites.boot()``."""

    def __init__(self, root: Path, release: str | None = None) -> None:
        self.root = root
        self.a = Cluster(root / SITE_A, release=release)
        self.b = Cluster(root / SITE_B, release=release)
        self.release = self.a.release
        self.pools: list[str] = []

    @property
    def sites(self) -> dict[str, Cluster]:
        return {SITE_A: self.a, SITE_B: self.b}

    # -- boot ---------------------------------------------------------------------------

    @classmethod
    def boot(
        cls,
        root: Path | None = None,
        *,
        pools: Sequence[str] = (POOL,),
        timeout: float = 120,
        release: str | None = None,
    ) -> TwoSites:
        """Boot both clusters side by side, peer ``pools`` and start both rbd-mirror daemons."""
        rt = install(release)
        if root is None:
            root = rt.make_temp_dir(prefix="rbd_snapsched-two-sites-")
        else:
            rt.make_dir(root)
        sites = cls(root, release=release)
        try:
            sites._boot(pools, timeout)
        except BaseException as e:
            tails = sites.log_tails()
            sites.teardown()
            if isinstance(e, (ClusterError, TimeoutError)):
                raise ClusterError(f"two-site boot failed: {e}\n{tails}") from e
            raise
        return sites

    def _boot(self, pools: Sequence[str], timeout: float) -> None:
        with ThreadPoolExecutor(2) as pool:
            futures = [
                pool.submit(
                    Cluster.boot,
                    c.root,
                    health_timeout=timeout,
                    release=self.release,
                    peer_syncs=True,
                )
                for c in (self.a, self.b)
            ]
            errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error
        # Peers first, daemons second: a running rbd-mirror notices new peers only every 30 s.
        for name in pools:
            self.add_pool(name)
        for site, cluster in self.sites.items():
            cluster.start_rbd_mirror(MIRROR_IDS[site])
        for site, cluster in self.sites.items():
            for name in pools:
                wait_for(
                    f"rbd-mirror of {site} healthy on pool {name}",
                    partial(mirror_daemon_healthy, cluster, name),
                    timeout,
                    interval=0.5,
                )

    def add_pool(self, name: str) -> None:
        """Create ``name`` on both sites in image mirror mode and bootstrap the peers (rx-tx)."""
        for cluster in (self.a, self.b):
            cluster.run("ceph", "osd", "pool", "create", name, "8")
            cluster.run("rbd", "pool", "init", name)
            cluster.run("rbd", "mirror", "pool", "enable", name, "image")
        token = self.root / f"{name}.bootstrap-token"
        secret = self.a.run(
            "rbd", "mirror", "pool", "peer", "bootstrap", "create", "--site-name", SITE_A, name
        ).stdout.strip()
        token.touch(mode=0o600)
        token.write_text(secret + "\n")
        self.b.run(
            "rbd",
            "mirror",
            "pool",
            "peer",
            "bootstrap",
            "import",
            "--site-name",
            SITE_B,
            "--direction",
            "rx-tx",
            name,
            str(token),
        )
        for site, cluster, other in ((SITE_A, self.a, SITE_B), (SITE_B, self.b, SITE_A)):
            info = json.loads(
                cluster.run("rbd", "mirror", "pool", "info", name, "--format", "json").stdout
            )
            peers = [(p["site_name"], p["direction"]) for p in info.get("peers", [])]
            if info.get("site_name") != site or peers != [(other, "rx-tx")]:
                raise ClusterError(f"{site} pool {name}: unexpected mirror pool info {info}")
        self.pools.append(name)

    # -- teardown and diagnostics -------------------------------------------------------

    def teardown(self, keep: bool = False) -> None:
        """Stop both rbd-mirror daemons first (each talks to both sites), then both clusters."""
        for cluster in (self.a, self.b):
            cluster.stop_extra_daemons()
        for cluster in (self.a, self.b):
            cluster.teardown(keep=keep)
        if not keep:
            self.a.runtime.remove_dir(self.root)

    def log_tails(self, lines: int = 30) -> str:
        return "\n".join(
            f"=== {site} ===\n{cluster.log_tails(lines)}" for site, cluster in self.sites.items()
        )

    def __enter__(self) -> TwoSites:
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()


def mirror_daemon_healthy(cluster: Cluster, pool: str) -> bool:
    """``rbd mirror pool status --verbose`` lists a daemon and every daemon reports OK."""
    proc = cluster.run(
        "rbd", "mirror", "pool", "status", pool, "--verbose", "--format", "json", check=False
    )
    if proc.returncode != 0:
        return False
    status = json.loads(proc.stdout)
    daemons = status.get("daemons", [])
    return (
        status.get("summary", {}).get("daemon_health") == "OK"
        and bool(daemons)
        and all(d.get("health") == "OK" for d in daemons)
    )


# -- images, data and snapshots -----------------------------------------------------------


def create_mirrored_image(cluster: Cluster, spec: str, size: str = "32M") -> None:
    """A new image in snapshot mirror mode (enabling takes its first mirror snapshot)."""
    cluster.run("rbd", "create", "--size", size, spec)
    cluster.run("rbd", "mirror", "image", "enable", spec, "snapshot")


PROMOTE_RETRY = 60  # seconds: the replica's rbd-mirror lets go of the image lock


def promote(cluster: Cluster, spec: str) -> None:
    """``rbd mirror image promote SPEC``, retried while it fails with EROFS.

    Even once the replica holds a complete copy of the demotion snapshot, its rbd-mirror may
    still own the image's exclusive lock for a moment, and librbd then refuses the promotion's
    snapshot with EROFS (seen on every release when the machine is busy). It is transient:
    retried every second for at most PROMOTE_RETRY seconds, any other error at once.
    """
    deadline = time.monotonic() + PROMOTE_RETRY
    while True:
        proc = cluster.run("rbd", "mirror", "image", "promote", spec, check=False)
        if proc.returncode == 0:
            return
        if proc.returncode != 30 or time.monotonic() > deadline:
            raise ClusterError(
                f"rbd mirror image promote {spec} failed ({proc.returncode}):\n{proc.stderr}"
            )
        time.sleep(1)


def write_random(cluster: Cluster, spec: str, *, chunks: int = 16, chunk: int = 64 << 10) -> None:
    """Write ``chunks`` chunks of random bytes at random chunk-aligned offsets into ``spec``.

    Through the CLI: a generated ``rbd diff v1`` stream (no from/to snapshot, so no snapshot is
    made) applied with ``rbd import-diff``.
    """
    size = int(json.loads(cluster.run("rbd", "info", spec, "--format", "json").stdout)["size"])
    parts = [b"rbd diff v1\n", b"s" + struct.pack("<Q", size)]
    picks = random.SystemRandom().sample(range(size // chunk), min(chunks, size // chunk))
    for offset in sorted(i * chunk for i in picks):
        parts.append(b"w" + struct.pack("<QQ", offset, chunk) + os.urandom(chunk))
    parts.append(b"e")
    with tempfile.NamedTemporaryFile(dir=cluster.root, suffix=".rbd-diff") as f:
        f.write(b"".join(parts))
        f.flush()
        cluster.run("rbd", "import-diff", "--no-progress", f.name, spec)


def export_sha256(cluster: Cluster, spec: str, timeout: float = 120) -> str:
    """sha256 of ``rbd export SPEC -`` (an image, or a user snapshot ``IMG@SNAP``).

    Buffered in memory: meant for the small images of these throwaway sites.
    """
    cmd = cluster.argv("rbd", "--conf", str(cluster.conf), "export", "--no-progress", spec, "-")
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise ClusterError(f"{' '.join(cmd)} timed out after {timeout}s") from e
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace")
        raise ClusterError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err}")
    return hashlib.sha256(proc.stdout).hexdigest()


@dataclass(frozen=True)
class MirrorSnap:
    """One mirror-namespace snapshot from ``rbd snap ls --all --format json``."""

    id: int
    name: str
    timestamp: float  # epoch seconds, 1 s resolution
    state: str  # "primary", "demoted", "non-primary"
    complete: bool
    primary_snap_id: int | None  # on a replica: the id of the primary snapshot it copies

    @property
    def is_own(self) -> bool:
        """Created on this site (primary or demoted), not copied from the peer."""
        return self.primary_snap_id is None


def _parse_snap_time(text: str) -> float:
    # The CLI prints ctime() in its local time zone, which is ours: we passed it our environment.
    return time.mktime(time.strptime(text, "%a %b %d %H:%M:%S %Y"))


ENOENT = 2


def mirror_snapshots(cluster: Cluster, spec: str) -> list[MirrorSnap]:
    """The image's mirror snapshots, oldest first; none while the image does not exist (yet)."""
    rows = snapshot_rows(cluster, spec, missing_ok=True)
    snaps = []
    for row in rows:
        ns = row.get("namespace", {})
        primary_snap_id = ns.get("primary_snap_id")
        snaps.append(
            MirrorSnap(
                id=int(row["id"]),
                name=str(row["name"]),
                timestamp=_parse_snap_time(row["timestamp"]),
                state=str(ns.get("state", "")),
                complete=bool(ns.get("complete", False)),
                primary_snap_id=None if primary_snap_id is None else int(primary_snap_id),
            )
        )
    return snaps


def own_snapshots(cluster: Cluster, spec: str) -> list[MirrorSnap]:
    return [s for s in mirror_snapshots(cluster, spec) if s.is_own]


def replica_copy(cluster: Cluster, spec: str, primary_snap_id: int) -> MirrorSnap | None:
    """The replica's complete copy of primary snapshot ``primary_snap_id``, if there is one."""
    for snap in mirror_snapshots(cluster, spec):
        if snap.primary_snap_id == primary_snap_id and snap.complete:
            return snap
    return None


def has_copy(replica: Cluster, spec: str, primary_snap_id: int) -> bool:
    return replica_copy(replica, spec, primary_snap_id) is not None


@dataclass(frozen=True)
class MirrorStatus:
    """``rbd mirror image status --format json`` of one site, its description's JSON parsed."""

    state: str
    description: str
    replay: dict[str, Any] = field(default_factory=dict)

    def synced_to(self, primary: MirrorSnap) -> bool:
        """Replaying, idle, and the last primary snapshot copied is ``primary`` or later."""
        return (
            self.state == "up+replaying"
            and self.replay.get("replay_state") == "idle"
            and int(self.replay.get("remote_snapshot_timestamp", 0)) >= int(primary.timestamp)
        )

    def brief(self) -> str:
        """``up+replaying, replay_state idle, remote_snapshot 23:15:00, local_snapshot ...``."""
        if not self.replay:
            return f"{self.state}, {self.description!r}"
        parts = [self.state, f"replay_state {self.replay.get('replay_state')}"]
        for key in ("remote_snapshot_timestamp", "local_snapshot_timestamp"):
            if key in self.replay:
                parts.append(f"{key.removesuffix('_timestamp')} {hhmmss(self.replay[key])} UTC")
        return ", ".join(parts)


def mirror_status(cluster: Cluster, spec: str) -> MirrorStatus:
    """This site's view; state ``absent`` while the image does not exist here (yet)."""
    proc = cluster.run("rbd", "mirror", "image", "status", spec, "--format", "json", check=False)
    if proc.returncode == ENOENT:
        return MirrorStatus("absent", proc.stderr.strip())
    if proc.returncode != 0:
        raise ClusterError(f"rbd mirror image status {spec} failed: {proc.stderr}")
    status = json.loads(proc.stdout)
    description = str(status.get("description", ""))
    replay: dict[str, Any] = {}
    _, _, tail = description.partition(", ")
    if tail.startswith("{"):
        with contextlib.suppress(ValueError):
            replay = json.loads(tail)
    return MirrorStatus(str(status.get("state", "")), description, replay)


# -- following a slot's snapshot from primary to replica ----------------------------------


def hhmmss(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%H:%M:%S")


@dataclass
class SyncReport:
    """How one image's snapshot of one slot travelled from the primary to the replica."""

    spec: str
    slot: float
    snap: MirrorSnap | None = None  # the primary's snapshot taken at the slot
    snap_seen: float | None = None  # when we saw it on the primary
    replica_complete: float | None = None  # when the replica had a complete copy of it
    status_synced: float | None = None  # when `rbd mirror image status` said so
    last_status: MirrorStatus | None = None

    @property
    def done(self) -> bool:
        return self.status_synced is not None

    @property
    def rpo(self) -> float:
        """Seconds from the slot to the replica holding the slot's data."""
        assert self.replica_complete is not None
        return self.replica_complete - self.slot

    def stage(self) -> str:
        if self.snap is None:
            return "waiting for the primary's mirror snapshot of the slot"
        if self.replica_complete is None:
            return f"waiting for the replica to copy primary snapshot {self.snap.id}"
        if self.status_synced is None:
            last = self.last_status.brief() if self.last_status else "none"
            return f"waiting for `rbd mirror image status` to report it (last: {last})"
        return "synced"

    def line(self, src: str) -> str:
        def rel(t: float | None) -> str:
            return "-" if t is None else f"+{t - self.slot:.1f} s"

        return (
            f"RPO image {src}/{self.spec}: {self.rpo:.1f} s after slot {hhmmss(self.slot)} "
            f"(snapshot {self.snap.id if self.snap else '-'} seen {rel(self.snap_seen)}, "
            f"replica complete {rel(self.replica_complete)}, "
            f"`rbd mirror image status` synced {rel(self.status_synced)})"
        )


def follow_slot(
    primary: Cluster,
    replica: Cluster,
    specs: Sequence[str],
    slot: float,
    timeout: float = 120,
    interval: float = 0.2,
) -> dict[str, SyncReport]:
    """Poll until each image's mirror snapshot taken at ``slot`` (by the schedule) is on the
    replica and ``rbd mirror image status`` on the replica reports it synced.

    Per image: the primary's first own mirror snapshot stamped at or after ``slot``; then the
    replica's complete non-primary snapshot whose ``primary_snap_id`` is that snapshot's id
    (the replica image now holds its data); then the replica's status ``up+replaying`` with
    ``replay_state`` ``idle`` and ``remote_snapshot_timestamp`` at or after the snapshot's.
    """
    reports = {spec: SyncReport(spec, slot) for spec in specs}
    deadline = time.time() + timeout
    while True:
        for spec, report in reports.items():
            if report.snap is None:
                fresh = [s for s in own_snapshots(primary, spec) if s.timestamp >= slot]
                if fresh:
                    report.snap, report.snap_seen = fresh[0], time.time()
            if (
                report.snap is not None
                and report.replica_complete is None
                and replica_copy(replica, spec, report.snap.id) is not None
            ):
                report.replica_complete = time.time()
            if report.replica_complete is not None and report.status_synced is None:
                report.last_status = mirror_status(replica, spec)
                assert report.snap is not None
                if report.last_status.synced_to(report.snap):
                    report.status_synced = time.time()
        if all(r.done for r in reports.values()):
            return reports
        if time.time() > deadline:
            pending = "; ".join(f"{s}: {r.stage()}" for s, r in reports.items() if not r.done)
            raise TimeoutError(f"timed out {timeout:.0f}s after slot {hhmmss(slot)} UTC: {pending}")
        time.sleep(interval)


# -- command line -------------------------------------------------------------------------


def print_usage(sites: TwoSites) -> None:
    a, b = sites.a, sites.b
    pool = sites.pools[0] if sites.pools else POOL
    print(f"""
Two sites are up in {sites.root} (mirrored pools: {", ".join(sites.pools) or "-"}).
Point the ceph and rbd CLIs at one site (or pass --conf FILE to each command):
    {a.shell_hint()}    # site-a
    {b.shell_hint()}    # site-b
    rbd mirror pool status {pool} --verbose; rbd mirror snapshot schedule status
rbd-mirror logs:
    {a.log_dir}/client.rbd-mirror.a.log
    {b.log_dir}/client.rbd-mirror.b.log
Stop both sites and delete them:
    python3 {Path(__file__).resolve()} down {sites.root}
""")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="boot both sites and leave them running")
    up.add_argument("--release", choices=RELEASES, help="default: the host's")
    up.add_argument("dir", nargs="?", type=Path)
    down = sub.add_parser("down", help="stop both sites and delete their directory")
    down.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "up":
            sites = TwoSites.boot(args.dir, release=args.release)
            print_usage(sites)
        elif args.cmd == "down":
            TwoSites(args.dir, release=Cluster.at(args.dir / SITE_A).release).teardown()
            log(f"stopped and deleted {args.dir}")
    except ClusterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
