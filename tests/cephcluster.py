#!/usr/bin/env python3
"""A throwaway local Ceph cluster with rbd_snapsched loaded, for tests and the demo.

One mon, one mgr and one memstore OSD on 127.0.0.1 with cephx, all state in one temporary
directory, its own ``mgr module path`` (links to the stock modules plus this checkout's
``rbd_snapsched``, enabled from the first mgr start). Several run side by side: each gets its own
mon port. Readiness is waited on for real (quorum, OSD up, module enabled and answering); a
failing step raises ``ClusterError`` carrying the daemon log tails.

Any supported release (``--release pacific|reef|tentacle``): the host's own packages, or a cached
chroot of the Debian suite that carries it (``tests/releases.py``), where daemons, CLIs and the
module then run. Standard library only, so any python3 runs it::

    python3 tests/cephcluster.py install [RELEASE ...]  # install / build releases (default: all)
    python3 tests/cephcluster.py up [--release R] [DIR] # boot, print the CEPH_CONF line, leave it
    python3 tests/cephcluster.py down DIR               # stop the daemons and delete DIR
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

if not __package__:  # run as a script (python3 tests/cephcluster.py): make `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.polling import wait_for
from tests.releases import RELEASES, ReleaseError, Runtime, prepare, runtime

REPO = Path(__file__).resolve().parent.parent
MODULE_DIR = REPO / "rbd_snapsched"
STOCK_MGR_DIR = Path("/usr/share/ceph/mgr")
# How long a (re)started ceph-mgr may take to load its modules and register: generous, since on
# a loaded 2-core machine a Pacific mgr took over 60 s (Ceph's start-up, not our module's).
MGR_START_TIMEOUT = 120.0
CEPH_START_RACE = "cephx_verify_authorizer"  # in a mgr's backtrace: see revive_crashed_mgrs
DASHBOARD = "dashboard"  # the stock module of ceph-mgr-dashboard: linked only when asked for


class ClusterError(RuntimeError):
    """A cluster step failed; the message carries what was run and the daemon log tails."""


def log(msg: str) -> None:
    print(f"[cephcluster] {msg}", file=sys.stderr, flush=True)


def install(release: str | None = None) -> Runtime:
    """Make ``release`` (default: the host's) ready to boot clusters: see ``tests/releases.py``."""
    try:
        rt = runtime(release)
        rt.prepare()
    except ReleaseError as e:
        raise ClusterError(str(e)) from e
    return rt


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Cluster:
    """One throwaway cluster rooted at ``root``. Use ``Cluster.boot()`` or ``with Cluster(...)``."""

    def __init__(
        self,
        root: Path,
        module_dir: Path = MODULE_DIR,
        *,
        with_module: bool = True,
        standby_mgrs: int = 0,
        release: str | None = None,
        peer_syncs: bool = False,
        extra_modules: Sequence[Path] = (),
        dashboard: bool = False,
    ) -> None:
        self.root = root
        self.runtime = runtime(release)
        self.release = self.runtime.release.name
        self.module_dir = module_dir
        self.with_module = with_module  # False: stock modules only, as a packaged cluster
        # False: the pools' tx peer (client.admin@remote) is a name no rbd-mirror serves, so
        # it never syncs, and the module's pacing (skip_when_peer_lags) is turned off, or
        # every image would get one snapshot and then skip every slot. True: a real peer.
        self.peer_syncs = peer_syncs
        # Test-only mgr modules (package directories) loaded and enabled beside ours, e.g.
        # tests/mgr_probe/snapsched_probe, which runs a contract inside the real ceph-mgr.
        self.extra_modules = tuple(extra_modules)
        # True: the stock dashboard module (package ceph-mgr-dashboard) is on the module path,
        # for a test to enable; False: it is left out, so the mgr never imports it.
        self.dashboard = dashboard
        self.mgr_ids = ["x", *"yzw"[:standby_mgrs]]
        self.module_path = root / "mgr-modules"
        self.conf = root / "ceph.conf"
        self.keyring = root / "keyring"
        self.log_dir = root / "log"
        self.run_dir = root / "run"

    # -- environment for clients ------------------------------------------------------------

    @property
    def client_env(self) -> dict[str, str]:
        """The variables that point ceph/rbd/rados clients (and librados users) here."""
        return {"CEPH_CONF": str(self.conf), "CEPH_ARGS": ""}

    def argv(self, *args: str, env: dict[str, str] | None = None) -> list[str]:
        """The command line that runs ``args`` in this cluster's release (host or chroot).

        ``--conf`` is not added: ``CEPH_CONF`` points at this cluster.
        """
        return self.runtime.argv(args, {**self.client_env, **(env or {})})

    def run(
        self, *args: str, check: bool = True, timeout: float = 60, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a Ceph CLI (``ceph``, ``rbd``, ``rados``...) against this cluster."""
        cmd = self.argv(args[0], "--conf", str(self.conf), *args[1:])
        try:
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=timeout,
                input=input,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise ClusterError(f"{' '.join(cmd)} timed out after {timeout}s") from e
        if check and proc.returncode != 0:
            raise ClusterError(
                f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
            )
        return proc

    def ceph_json(self, *args: str, timeout: float = 60) -> Any:
        return json.loads(self.run("ceph", *args, "--format", "json", timeout=timeout).stdout)

    # -- boot ---------------------------------------------------------------------------

    @property
    def daemons(self) -> list[str]:
        return ["mon.a", *(f"mgr.{i}" for i in self.mgr_ids), "osd.0"]

    @classmethod
    def boot(
        cls,
        root: Path | None = None,
        *,
        health_timeout: float = 120,
        with_module: bool = True,
        standby_mgrs: int = 0,
        release: str | None = None,
        peer_syncs: bool = False,
        extra_modules: Sequence[Path] = (),
        dashboard: bool = False,
    ) -> Cluster:
        rt = install(release)
        if root is None:
            root = rt.make_temp_dir(prefix="rbd_snapsched-cluster-")
        else:
            rt.make_dir(root)
        cluster = cls(
            root,
            with_module=with_module,
            standby_mgrs=standby_mgrs,
            release=release,
            peer_syncs=peer_syncs,
            extra_modules=extra_modules,
            dashboard=dashboard,
        )
        try:
            cluster._boot(health_timeout)
        except BaseException as e:
            tails = cluster.log_tails()
            cluster.teardown()
            if isinstance(e, (ClusterError, TimeoutError)):
                raise ClusterError(f"cluster boot failed: {e}\n{tails}") from e
            raise
        return cluster

    def _boot(self, health_timeout: float) -> None:
        for d in (
            self.log_dir,
            self.run_dir,
            self.root / "mon.a",
            *(self.root / f"mgr.{i}" for i in self.mgr_ids),
            self.root / "osd.0",
        ):
            d.mkdir(parents=True, exist_ok=True)
        (self.root / "release").write_text(self.release + "\n")
        self._link_modules()
        port = free_port()
        fsid = str(uuid.uuid4())
        self._write_conf(fsid, port)
        mon_keyring = self.root / "mon.keyring"
        self._tool(
            "ceph-authtool",
            "--create-keyring",
            str(mon_keyring),
            "--gen-key",
            "-n",
            "mon.",
            "--cap",
            "mon",
            "allow *",
        )
        self._tool(
            "ceph-authtool",
            "--create-keyring",
            str(self.keyring),
            "--gen-key",
            "-n",
            "client.admin",
            "--cap",
            "mon",
            "allow *",
            "--cap",
            "osd",
            "allow *",
            "--cap",
            "mgr",
            "allow *",
            "--cap",
            "mds",
            "allow *",
        )
        self._tool("ceph-authtool", str(mon_keyring), "--import-keyring", str(self.keyring))
        monmap = self.root / "monmap"
        self._tool(
            "monmaptool",
            "--create",
            "--fsid",
            fsid,
            "--addv",
            "a",
            f"[v2:127.0.0.1:{port}]",
            str(monmap),
        )
        self._tool(
            "ceph-mon",
            "--conf",
            str(self.conf),
            "--mkfs",
            "-i",
            "a",
            "--monmap",
            str(monmap),
            "--keyring",
            str(mon_keyring),
        )
        self._spawn("mon.a", "ceph-mon", "-i", "a")
        wait_for("mon quorum", self._has_quorum, 30)
        if self.with_module:
            # Enabled in the mgr map before any mgr starts (--force: no mgr has reported the
            # module yet), so the first mgr loads it enabled. Enabling it later respawns the mgr,
            # and a respawn between devicehealth creating its pool and tagging it leaves
            # POOL_APP_NOT_ENABLED for good. Not via `mgr initial modules`: that option's list
            # parser splits names at '_'.
            self.run("ceph", "mgr", "module", "enable", self.module_dir.name, "--force")
        for extra in self.extra_modules:
            self.run("ceph", "mgr", "module", "enable", extra.name, "--force")

        self._configure_module()
        for mgr_id in self.mgr_ids:
            self._start_mgr(mgr_id)

        osd_uuid = str(uuid.uuid4())
        osd_id = self.run("ceph", "osd", "new", osd_uuid).stdout.strip()
        if osd_id != "0":
            raise ClusterError(f"expected osd id 0, got {osd_id!r}")
        self.run(
            "ceph",
            "auth",
            "get-or-create",
            "osd.0",
            "mon",
            "allow profile osd",
            "mgr",
            "allow profile osd",
            "osd",
            "allow *",
            "-o",
            str(self.root / "osd.0" / "keyring"),
        )
        self._tool(
            "ceph-osd", "--conf", str(self.conf), "-i", "0", "--mkfs", "--osd-uuid", osd_uuid
        )
        self._spawn("osd.0", "ceph-osd", "-i", "0")
        wait_for("osd.0 up", self._osd_up, 60)
        wait_for("mgr available", self._mgr_available, 60)
        if len(self.mgr_ids) > 1:
            wait_for("standby mgrs", self._standbys_up, 60)
        if self.with_module:
            wait_for("mgr to report rbd_snapsched", self._module_available, 60)
            wait_for("rbd_snapsched enabled and answering", self.module_answers, 60)
        self.wait_healthy(health_timeout)

    def _configure_module(self) -> None:
        """Each mgr's metrics endpoint on 127.0.0.1 and a port of its own, so clusters (and
        mgrs) side by side never contend for the default port; pacing off unless the peer
        syncs (``peer_syncs``). ``--force``: no mgr has reported the module's options yet."""
        option = f"mgr/{self.module_dir.name}/metrics_server"
        self.run("ceph", "config", "set", "mgr", f"{option}_addr", "127.0.0.1", "--force")
        if not self.peer_syncs:
            pace = f"mgr/{self.module_dir.name}/skip_when_peer_lags"
            self.run("ceph", "config", "set", "mgr", pace, "false", "--force")
        for mgr_id in self.mgr_ids:
            port = free_port()
            (self.root / f"mgr.{mgr_id}" / "metrics_port").write_text(f"{port}\n")
            self.run(
                "ceph", "config", "set", f"mgr.{mgr_id}", f"{option}_port", str(port), "--force"
            )

    def metrics_url(self, mgr_id: str = "x") -> str:
        """Where mgr ``mgr_id``'s rbd_snapsched metrics endpoint listens."""
        port = int((self.root / f"mgr.{mgr_id}" / "metrics_port").read_text())
        return f"http://127.0.0.1:{port}/metrics"

    def _start_mgr(self, mgr_id: str) -> None:
        keyring = self.root / f"mgr.{mgr_id}" / "keyring"
        if not keyring.exists():
            self.run(
                "ceph",
                "auth",
                "get-or-create",
                f"mgr.{mgr_id}",
                "mon",
                "allow profile mgr",
                "osd",
                "allow *",
                "mds",
                "allow *",
                "-o",
                str(keyring),
            )
        self._spawn(f"mgr.{mgr_id}", "ceph-mgr", "-i", mgr_id, env=self.runtime.mgr_env)

    def revive_crashed_mgrs(self) -> list[str]:
        """Start again each mgr that died of Ceph's own start-up race (its log ends in the
        failed assertion under ``cephx_verify_authorizer``: Pacific 16.2.15, when a client
        connects within a second of the mgr's start; three times in full suite runs, always
        a mgr respawned by a module enable or a failover), as systemd's Restart=on-failure
        does for a packaged cluster. Any other death is left for the test to see. Returns
        the mgrs started again."""
        revived = []
        for mgr_id in self.mgr_ids:
            name = f"mgr.{mgr_id}"
            if not (self.run_dir / f"{name}.daemon-pid").exists():
                continue  # stopped on purpose
            pid = self._pid(name)
            if pid is not None and _alive(pid):
                continue
            tails = "".join(
                path.read_text(errors="replace")[-20000:]
                for path in (self.log_dir / f"{name}.log", self.log_dir / f"{name}.stdout")
                if path.exists()
            )
            if CEPH_START_RACE in tails:
                log(f"{name} died of Ceph's cephx start-up race: started again, as systemd would")
                self._start_mgr(mgr_id)
                revived.append(mgr_id)
        return revived

    @contextlib.contextmanager
    def supervised_mgrs(self, every: float = 2.0) -> Iterator[None]:
        """``revive_crashed_mgrs`` every ``every`` seconds while the block runs (a thread)."""
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(every):
                with contextlib.suppress(ClusterError, OSError, subprocess.SubprocessError):
                    self.revive_crashed_mgrs()

        thread = threading.Thread(target=watch, name="mgr-supervisor", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def wait_standbys(self, timeout: float = MGR_START_TIMEOUT) -> None:
        """Wait until every mgr but the active is registered as a standby. On timeout, say
        which mgr processes are gone (a mgr that dies is not restarted here, as no supervisor
        runs) and show the mgrs' logs, so a failure names its cause."""
        deadline = time.monotonic() + timeout
        while not self._standbys_up():
            if time.monotonic() > deadline:
                pids = {m: self._pid(f"mgr.{m}") for m in self.mgr_ids}
                dead = sorted(m for m, pid in pids.items() if pid is None or not _alive(pid))
                tails = "\n".join(
                    self.log_dir.joinpath(f"mgr.{m}{suffix}").read_text(errors="replace")[-6000:]
                    for m in self.mgr_ids
                    for suffix in (".log", ".stdout")
                    if self.log_dir.joinpath(f"mgr.{m}{suffix}").exists()
                )
                raise ClusterError(
                    f"standby mgrs not registered after {timeout:.0f}s; "
                    f"mgr processes gone: {dead or 'none'}\n{tails}"
                )
            time.sleep(1)

    def _standbys_up(self) -> bool:
        proc = self._probe("ceph", "mgr", "dump", "--format", "json")
        if not proc or proc.returncode != 0:
            return False
        return len(json.loads(proc.stdout).get("standbys", [])) >= len(self.mgr_ids) - 1

    @property
    def module_src(self) -> Path:
        """The directory the mgr (and ``python3 -m rbd_snapsched.install``) imports our package
        from: the checkout on the host; a copy of it in the cluster directory in a chroot."""
        return self.module_dir.parent if self.runtime.is_host else self.root / "src"

    def _link_modules(self) -> None:
        path = self.module_path
        path.mkdir(exist_ok=True)
        stock = self.runtime.path(STOCK_MGR_DIR)
        if not stock.is_dir():
            raise ClusterError(f"{stock} missing: is ceph-mgr installed?")
        if self.dashboard and not (stock / DASHBOARD).is_dir():
            raise ClusterError(f"{stock / DASHBOARD} missing: is ceph-mgr-dashboard installed?")
        for entry in stock.iterdir():
            if entry.name == DASHBOARD and not self.dashboard:
                continue
            if entry.name != self.module_dir.name:
                (path / entry.name).symlink_to(STOCK_MGR_DIR / entry.name)
        if not self.runtime.is_host:
            shutil.copytree(
                self.module_dir,
                self.module_src / self.module_dir.name,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
        if self.with_module:
            (path / self.module_dir.name).symlink_to(self.module_src / self.module_dir.name)
        for extra in self.extra_modules:
            # A copy (symbolic links in it resolved), so a chroot's mgr sees every file.
            copy = self.root / "extra-modules" / extra.name
            shutil.copytree(extra, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            (path / extra.name).symlink_to(copy)

    def _write_conf(self, fsid: str, port: int) -> None:
        r = self.root
        self.conf.write_text(f"""\
[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{port}]
public addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = {self.keyring}
run dir = {self.run_dir}
admin socket = {self.run_dir}/$name.asok
pid file = {self.run_dir}/$name.pid
log file = {self.log_dir}/$name.log
mon cluster log file = {self.log_dir}/cluster.log
crash dir = {r}/crash
osd objectstore = memstore
memstore device bytes = 2147483648
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
mon data avail warn = 1
mgr module path = {r}/mgr-modules
mgr initial modules = iostat

[mon]
mon data = {r}/$name

[mgr]
mgr data = {r}/$name
keyring = {r}/$name/keyring

[osd]
osd data = {r}/$name
keyring = {r}/$name/keyring
osd journal size = 100
""")

    def _tool(self, *cmd: str) -> None:
        proc = subprocess.run(
            self.runtime.argv(cmd, {}),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if proc.returncode != 0:
            raise ClusterError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")

    def _spawn(self, name: str, *cmd: str, env: dict[str, str] | None = None) -> None:
        out = open(self.log_dir / f"{name}.stdout", "ab")  # noqa: SIM115 - owned by the daemon
        extra = env or {}
        proc = subprocess.Popen(
            # chroot and env exec the daemon: the pid is the daemon's.
            self.runtime.argv([*cmd, "-f", "--conf", str(self.conf)], extra),
            # From /, as systemd runs them: Debian's Reef and Tentacle builds default
            # osd_class_dir to the relative "lib/x86_64-linux-gnu/rados-classes", so an OSD
            # started elsewhere finds no object classes (no cls_rbd: every rbd call EOPNOTSUPP).
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        (self.run_dir / f"{name}.daemon-pid").write_text(str(proc.pid))

    # -- readiness probes ---------------------------------------------------------------

    def _probe(self, *args: str) -> subprocess.CompletedProcess[str] | None:
        try:
            return self.run(*args, "--connect-timeout", "5", check=False, timeout=15)
        except ClusterError:
            return None

    def _has_quorum(self) -> bool:
        proc = self._probe("ceph", "quorum_status", "--format", "json")
        return bool(proc and proc.returncode == 0 and json.loads(proc.stdout).get("quorum"))

    def _osd_up(self) -> bool:
        proc = self._probe("ceph", "osd", "stat", "--format", "json")
        if not proc or proc.returncode != 0:
            return False
        stat = json.loads(proc.stdout)
        stat = stat.get("osdmap", stat)
        return int(stat.get("num_up_osds", 0)) >= 1

    def _mgr_available(self) -> bool:
        proc = self._probe("ceph", "mgr", "stat", "--format", "json")
        return bool(proc and proc.returncode == 0 and json.loads(proc.stdout).get("available"))

    def _module_available(self) -> bool:
        proc = self._probe("ceph", "mgr", "module", "ls", "--format", "json")
        if not proc or proc.returncode != 0:
            return False
        modules = json.loads(proc.stdout)
        known = {m["name"] for m in modules.get("disabled_modules", [])}
        known.update(modules.get("enabled_modules", []))
        return self.module_dir.name in known

    def module_answers(self) -> bool:
        """rbd_snapsched is enabled in the mgr map and answers a schedule command."""
        proc = self._probe("ceph", "mgr", "module", "ls", "--format", "json")
        if not proc or proc.returncode != 0:
            return False
        if self.module_dir.name not in json.loads(proc.stdout).get("enabled_modules", []):
            return False
        proc = self._probe("ceph", "rbd", "mirror", "snapshot", "schedule", "list")
        return bool(proc and proc.returncode == 0)

    def health(self) -> str:
        return self.run("ceph", "health", timeout=30).stdout.strip()

    def wait_healthy(self, timeout: float = 120) -> None:
        try:
            wait_for("HEALTH_OK", lambda: self.health() == "HEALTH_OK", timeout, interval=0.5)
        except TimeoutError as e:
            detail = self.run("ceph", "health", "detail", check=False).stdout
            raise ClusterError(f"{e}; ceph health detail:\n{detail}") from e

    # -- helpers for tests and the demo -------------------------------------------------

    def create_rbd_pool(self, name: str, *, mirror_mode: str = "image") -> None:
        """An RBD pool in mirror ``mirror_mode`` with a tx peer, so mirror snapshots work."""
        self.run("ceph", "osd", "pool", "create", name, "8")
        self.run("rbd", "pool", "init", name)
        if mirror_mode != "disabled":
            self.run("rbd", "mirror", "pool", "enable", name, mirror_mode)
            self.run("rbd", "mirror", "pool", "peer", "add", name, "client.admin@remote")

    def start_rbd_mirror(self, daemon_id: str = "a") -> str:
        """Spawn an ``rbd-mirror`` daemon ``client.rbd-mirror.<daemon_id>``; return that name.

        It gets its own key (``mon 'profile rbd-mirror' osd 'profile rbd'``, as the Ceph docs
        give) and runs with ``CEPH_CONF`` set: rbd-mirror opens its local cluster connection from
        ``CEPH_CONF`` or the default search path, not from ``--conf``. It logs to
        ``log/client.rbd-mirror.<id>.log``; ``teardown`` stops it (its pid file is in ``run/``).
        It picks up pool peers at start, or within ``rbd_mirror_pool_replayers_refresh_interval``
        (30 s) when they are added later.
        """
        name = f"client.rbd-mirror.{daemon_id}"
        keyring = self.root / name / "keyring"
        keyring.parent.mkdir(parents=True, exist_ok=True)
        self.run(
            "ceph",
            "auth",
            "get-or-create",
            name,
            "mon",
            "profile rbd-mirror",
            "osd",
            "profile rbd",
            "-o",
            str(keyring),
        )
        self._spawn(
            name,
            "rbd-mirror",
            "--id",
            name.removeprefix("client."),
            "--keyring",
            str(keyring),
            env=self.client_env,
        )
        return name

    def extra_daemons(self) -> list[str]:
        """Daemons running beside the core ones (e.g. rbd-mirror), found by their pid files."""
        suffix = ".daemon-pid"
        if not self.run_dir.is_dir():
            return []
        names = sorted(p.name[: -len(suffix)] for p in self.run_dir.glob(f"*{suffix}"))
        return [name for name in names if name not in self.daemons]

    def stop_extra_daemons(self) -> None:
        """Stop the daemons of ``extra_daemons`` (SIGTERM, then SIGKILL)."""
        for name in self.extra_daemons():
            self._stop(name)

    def restart_mgr(self, attempts: int = 3) -> None:
        """Stop and start every mgr, until the mgrs stay up and our module answers.

        Tried again (at most ``attempts`` times) if a new mgr dies while starting: Pacific
        16.2.15's mgr aborted once in cephx_verify_authorizer (FAILED ceph_assert(ckh) in
        CryptoKey::decrypt) when a client connected within a second of its start, a Ceph
        race our module cannot reach; the dead mgr would fail every later test.
        """
        for attempt in range(1, attempts + 1):
            for mgr_id in self.mgr_ids:
                self._stop(f"mgr.{mgr_id}")
            for mgr_id in self.mgr_ids:
                self._start_mgr(mgr_id)
            try:
                wait_for("mgr available", self._mgr_available, 60)
                wait_for("rbd_snapsched answering", self.module_answers, MGR_START_TIMEOUT)
                time.sleep(2)  # a mgr that aborts on its first clients does so by now
                pids = {m: self._pid(f"mgr.{m}") for m in self.mgr_ids}
                dead = [m for m, pid in pids.items() if pid is None or not _alive(pid)]
                if not dead:
                    return
                log(f"mgr {dead} died after restart (attempt {attempt}); restarting again")
            except (ClusterError, TimeoutError) as e:
                if attempt == attempts:
                    raise
                log(f"mgr restart attempt {attempt} failed ({e}); restarting again")
        raise ClusterError(f"the mgrs did not stay up after {attempts} restarts")

    def log_tails(self, lines: int = 30) -> str:
        parts = []
        for name in (*self.daemons, *self.extra_daemons()):
            for suffix in (".log", ".stdout"):
                path = self.log_dir / f"{name}{suffix}"
                if path.exists() and path.stat().st_size:
                    text = path.read_text(errors="replace").splitlines()[-lines:]
                    parts.append(f"--- {path} (last {len(text)} lines) ---\n" + "\n".join(text))
        return "\n".join(parts) or "(no daemon logs)"

    # -- teardown -----------------------------------------------------------------------

    def _pid(self, name: str) -> int | None:
        """The pid of daemon ``name``, or None if it is no longer this cluster's. A daemon that
        died (a fault test's SIGKILL) leaves its pid file, and the pid is soon reused: pids wrap
        at 32768 here within minutes of a suite run. Signalling that pid at teardown once
        SIGTERMed another cluster's mgr; so the pid counts only while it runs our daemon."""
        path = self.run_dir / f"{name}.daemon-pid"
        try:
            pid = int(path.read_text())
        except (OSError, ValueError):
            return None
        return pid if _runs_daemon_of(pid, self.root.name) else None

    def _stop(self, name: str, timeout: float = 10) -> None:
        pid = self._pid(name)
        if pid is None:
            (self.run_dir / f"{name}.daemon-pid").unlink(missing_ok=True)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        (self.run_dir / f"{name}.daemon-pid").unlink(missing_ok=True)

    def teardown(self, keep: bool = False) -> None:
        """Stop every daemon (SIGTERM, then SIGKILL) and delete the directory."""
        self.stop_extra_daemons()
        for name in reversed(self.daemons):
            self._stop(name)
        if not keep:
            self.runtime.remove_dir(self.root)

    def shell_hint(self) -> str:
        """How a person's shell points ceph/rbd at this cluster (its chroot's, if not host)."""
        if self.runtime.is_host:
            return f"export CEPH_CONF={self.conf}"
        return (
            f"chroot {self.runtime.root} env CEPH_CONF={self.conf} bash   "
            "# this release's ceph and rbd CLIs"
        )

    @classmethod
    def at(cls, root: Path) -> Cluster:
        """The cluster booted in ``root`` (its release read back from the file boot wrote)."""
        marker = root / "release"
        release = marker.read_text().strip() if marker.exists() else None
        return cls(root, release=release)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()


def _runs_daemon_of(pid: int, marker: str) -> bool:
    """``pid`` is a daemon whose command line names ``marker`` (a cluster directory's unique
    name: every daemon gets ``--conf DIR/ceph.conf``, kept across a mgr's respawn), or our
    own child not yet reaped (a zombie's command line is empty; its pid is not reused yet)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if cmdline:
        return marker.encode() in cmdline
    try:
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return False
    return ppid == os.getpid()


def _alive(pid: int) -> bool:
    """``pid`` still runs: any of its threads. A daemon whose main thread has exited while
    other threads still shut down shows its leader as a zombie, but holds its pid file lock
    (a new mgr started then fails to lock it and exits: measured on Pacific)."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited != pid  # our child: reaped only once every thread has exited
    except ChildProcessError:
        pass  # not ours (a cluster booted by another process): ask /proc
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of another parent still answers kill(0): alive while a thread is not a zombie.
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False
    for task in tasks:
        try:
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            return True
    return False


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    cluster = Cluster.boot()
    try:
        yield cluster
    finally:
        cluster.teardown()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    inst = sub.add_parser("install", help="install or build releases (default: all supported)")
    inst.add_argument("releases", nargs="*", choices=[*RELEASES, []])
    up = sub.add_parser("up", help="boot a cluster and leave it running")
    up.add_argument("--release", choices=RELEASES, help="default: the host's")
    up.add_argument("dir", nargs="?", type=Path)
    down = sub.add_parser("down", help="stop a cluster and delete its directory")
    down.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "install":
            prepare(args.releases or list(RELEASES))
        elif args.cmd == "up":
            cluster = Cluster.boot(args.dir, release=args.release)
            print_usage(cluster)
        elif args.cmd == "down":
            Cluster.at(args.dir).teardown()
    except (ClusterError, ReleaseError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def print_usage(cluster: Cluster) -> None:
    print(f"""
Cluster ({cluster.release}, {cluster.runtime!r}) is up in {cluster.root} ({cluster.health()}).
Point the ceph and rbd CLIs at it:
    {cluster.shell_hint()}
    ceph mgr module ls | head; rbd mirror snapshot schedule ls -R
Stop it and delete it:
    python3 {Path(__file__).resolve()} down {cluster.root}
""")


if __name__ == "__main__":
    sys.exit(main())
