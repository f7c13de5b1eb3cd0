"""The Debian package, on a stock cluster of each release, in that release's root (the host's
own packages, or its Debian chroot): install, upgrade to a rebuilt higher version, remove.

The two .deb files (this tree's version, and the same tree as ``<version>+test1`` with an
upgrade marker in the module) are built once per pytest session, on the host, by the README's
command (``sh debian/build-deb``, which installs debhelper and dpkg-dev through apt-get when they
are missing; about 20 s, 40 s with the apt-get), under a file lock so xdist workers do not race.

Each release's test boots its own cluster the way a packaged one runs (stock modules only, an
active and a standby mgr), and polls ``rbd mirror snapshot schedule ls`` and ``status`` through
the CLI in a background thread for the whole sequence: none may answer EOPNOTSUPP. Timeouts and
EAGAIN while the mgrs fail over are allowed, counted and printed. It waits for one real minute
slot, the first at least 10 s after the takeover (at most about 90 s: up to 70 s until that
slot, and up to 20 s more for the snapshot), so a release takes 1.5 to 2 minutes here. The
package is purged from the release's root at the end, whatever happened.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.cephcluster import Cluster, ClusterError
from tests.cluster.helpers import SCHED, make_image, wait_until
from tests.releases import Runtime

pytestmark = pytest.mark.ceph_cluster

REPO = Path(__file__).resolve().parents[2]
BUILD = ("sh", str(REPO / "debian" / "build-deb"))  # the README's command
PACKAGE = "rbd-snapsched"
SHARE = "/usr/share/rbd-snapsched"
LINKS = "/var/lib/rbd-snapsched/links"
# The upgraded module writes "<version>" to MARKER_DIR/<pid> when a process imports it: each
# mgr's own proof that it loaded the new code (a mgr's respawn keeps its pid: it execs itself).
MARKER_DIR = "/var/tmp/rbd-snapsched-upgrade-marker"
MARKER = """

# -- upgrade marker, added by tests/cluster/test_package.py ----------------------------------
def _mark() -> None:
    import importlib.util
    import os

    if importlib.util.find_spec("ceph_module") is None:  # not in a ceph-mgr
        return
    try:
        os.makedirs({dir!r}, exist_ok=True)
        with open(os.path.join({dir!r}, str(os.getpid())), "a") as f:
            f.write({version!r} + "\\n")
    except OSError:
        pass


_mark()
"""
APT = (
    "apt-get",
    "-o",
    "DPkg::Lock::Timeout=600",
    "-o",
    "APT::Sandbox::User=root",
    "-y",
    "--no-install-recommends",
)
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}


def project_version() -> str:
    project = (REPO / "pyproject.toml").read_text().split("[project]", 1)[1]
    match = re.search(r'^version\s*=\s*"([^"]+)"', project, re.MULTILINE)
    assert match
    return match.group(1)


VERSION = project_version()
UPGRADE = f"{VERSION}+test1"


# -- building, once per session ---------------------------------------------------------------


@dataclass(frozen=True)
class Debs:
    current: Path
    upgrade: Path


def build(*args: str) -> Path:
    proc = subprocess.run(
        [*BUILD, *args], capture_output=True, text=True, timeout=1200, check=False, cwd="/"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-6000:]
    return Path(proc.stdout.strip().splitlines()[-1])


def session_id(config: pytest.Config) -> str:
    """One id for the whole run: xdist's, shared by its workers; else this process's own."""
    shared = os.environ.get("PYTEST_XDIST_TESTRUNUID")  # set in each xdist worker
    if shared:
        return shared
    if not hasattr(config, "_rbd_snapsched_run"):
        config._rbd_snapsched_run = uuid.uuid4().hex  # type: ignore[attr-defined]
    return str(config._rbd_snapsched_run)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def debs(request: pytest.FixtureRequest) -> Debs:
    """Both .deb files, built by the first worker that asks (the others wait on the lock)."""
    base = Path("/tmp/rbd_snapsched-debs")
    base.mkdir(exist_ok=True)
    out = base / session_id(request.config)
    with open(base / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = out / "built.json"
        if done.exists():
            paths = json.loads(done.read_text())
            return Debs(Path(paths["current"]), Path(paths["upgrade"]))
        for stale in base.iterdir():  # earlier runs'
            if stale.is_dir() and time.time() - stale.stat().st_mtime > 3600:
                shutil.rmtree(stale, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        started = time.monotonic()
        current = build("--out", str(out), "--lintian")
        # The same tree with the marker, as a higher version: a copy with a changelog entry.
        src = out / "upgrade-src"
        src.mkdir()
        for name in ("debian", "rbd_snapsched"):
            shutil.copytree(
                REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        shutil.copy(REPO / "pyproject.toml", src)
        init = src / "rbd_snapsched" / "__init__.py"
        init.write_text(init.read_text() + MARKER.format(dir=MARKER_DIR, version=UPGRADE))
        upgrade = subprocess.run(
            ["sh", str(src / "debian" / "build-deb"), "--out", str(out), "--version", UPGRADE],
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
            cwd="/",
        )
        assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr[-6000:]
        new = Path(upgrade.stdout.strip().splitlines()[-1])
        print(f"\nbuilt {current.name} and {new.name} in {time.monotonic() - started:.0f} s")
        assert current.name == f"{PACKAGE}_{VERSION}_all.deb"
        assert new.name == f"{PACKAGE}_{UPGRADE}_all.deb"
        done.write_text(json.dumps({"current": str(current), "upgrade": str(new)}))
        return Debs(current, new)


def test_lintian_reports_no_errors(debs: Debs) -> None:
    for deb in (debs.current, debs.upgrade):
        proc = subprocess.run(
            ["lintian", "--allow-root", "--fail-on", "error", "--display-info", str(deb)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        tags = [line for line in proc.stdout.splitlines() if re.match(r"^[EWIP]: ", line)]
        print(f"\nlintian {deb.name}: {len(tags)} tag(s)", *tags, sep="\n  ")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert not [t for t in tags if t.startswith("E: ")]


# -- the schedule commands, polled throughout --------------------------------------------------

ALLOWED = {
    "timeout": ("timed out",),
    "EAGAIN": ("(11)", "Resource temporarily unavailable", "EAGAIN"),
    "ETIMEDOUT": ("(110)", "Connection timed out", "ETIMEDOUT"),
}
EOPNOTSUPP = ("(95)", "Operation not supported", "EOPNOTSUPP", "ENOTSUP", "not enabled/loaded")


@dataclass
class Poller:
    """``rbd mirror snapshot schedule ls -R`` and ``status``, one after the other, until stopped."""

    cluster: Cluster
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            for args in (("ls", "-R"), ("status",)):
                self.poll(args)

    def poll(self, args: tuple[str, ...]) -> None:
        when = datetime.now(timezone.utc).strftime("%H:%M:%S")
        try:
            proc = self.cluster.run(*SCHED, *args, check=False, timeout=30)
        except ClusterError as e:
            self.counts["timeout"] += 1
            self.failures.append(f"{when} {args[0]}: {e}")
            return
        if proc.returncode == 0:
            self.counts["ok"] += 1
            return
        text = proc.stderr.strip() or proc.stdout.strip()
        kind = next((k for k, words in ALLOWED.items() if any(w in text for w in words)), "")
        if any(w in text for w in EOPNOTSUPP) or proc.returncode == 95:
            kind = "EOPNOTSUPP"
        kind = kind or f"other (exit {proc.returncode})"
        self.counts[kind] += 1
        self.failures.append(f"{when} {args[0]}: {kind}: {text[-300:]}")

    def __enter__(self) -> Poller:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=60)


# -- the release's root -----------------------------------------------------------------------


def in_root(
    rt: Runtime, *argv: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in the release's root (the host, or its chroot): output kept either way."""
    return subprocess.run(
        rt.argv(argv, env or {}), capture_output=True, text=True, timeout=timeout, check=False
    )


def tool(c: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    """``rbd-snapsched ARGS`` in the cluster's root, pointed at it by CEPH_CONF."""
    proc = subprocess.run(
        c.argv(PACKAGE, *args), capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, f"{PACKAGE} {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
    return proc


def apt(rt: Runtime, *args: str) -> subprocess.CompletedProcess[str]:
    proc = in_root(rt, *APT, *args, env=APT_ENV, timeout=900)
    assert proc.returncode == 0, f"apt-get {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
    return proc


def apt_install_deb(rt: Runtime, deb: Path) -> str:
    """``apt-get install ./X.deb`` in the root: the .deb copied into a chroot first."""
    if rt.is_host:
        return apt(rt, "install", str(deb)).stdout
    inner = Path("/tmp") / f"rbd-snapsched-deb-{uuid.uuid4().hex[:8]}"
    rt.path(inner).mkdir(parents=True)
    try:
        shutil.copy(deb, rt.path(inner))
        return apt(rt, "install", str(inner / deb.name)).stdout
    finally:
        shutil.rmtree(rt.path(inner), ignore_errors=True)


def installed_version(rt: Runtime) -> str:
    proc = in_root(rt, "dpkg-query", "-W", "-f", "${db:Status-Status} ${Version}", PACKAGE)
    status, _, version = proc.stdout.partition(" ")
    return version if proc.returncode == 0 and status == "installed" else ""


def purge(rt: Runtime) -> None:
    """Take the package out of the root whatever state it is in, records included (the cluster
    may be gone: then its prerm would refuse)."""
    if in_root(rt, "dpkg-query", "-W", PACKAGE).returncode != 0:
        return
    rt.path(LINKS).unlink(missing_ok=True)
    proc = in_root(rt, "dpkg", "--purge", PACKAGE, env=APT_ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def mgr_pids(c: Cluster) -> dict[str, int]:
    return {m: int((c.run_dir / f"mgr.{m}.daemon-pid").read_text()) for m in c.mgr_ids}


def marked(rt: Runtime, pid: int) -> str:
    path = rt.path(MARKER_DIR) / str(pid)
    return path.read_text() if path.exists() else ""


def standby_back(c: Cluster) -> bool:
    return len(c.ceph_json("mgr", "dump").get("standbys", [])) >= len(c.mgr_ids) - 1


def mirror_snapshot_times(c: Cluster, image: str) -> list[datetime]:
    snaps = json.loads(c.run("rbd", "snap", "ls", "--all", "--format", "json", image).stdout)
    return [
        datetime.strptime(s["timestamp"], "%a %b %d %H:%M:%S %Y").replace(tzinfo=timezone.utc)
        for s in snaps
        if s.get("namespace", {}).get("type") == "mirror"
    ]


@pytest.fixture
def stock(release: str) -> Iterator[Cluster]:
    cluster = Cluster.boot(with_module=False, standby_mgrs=1, release=release)
    try:
        yield cluster
    finally:
        try:
            if installed_version(cluster.runtime):  # a failed test: hand back while it runs
                in_root(cluster.runtime, *APT, "remove", PACKAGE, env=APT_ENV, timeout=300)
        finally:
            purge(cluster.runtime)
            shutil.rmtree(cluster.runtime.path(MARKER_DIR), ignore_errors=True)
            cluster.teardown()


def test_install_upgrade_and_remove_the_package(stock: Cluster, debs: Debs) -> None:
    c, rt = stock, stock.runtime
    started = time.monotonic()
    assert not installed_version(rt), f"{PACKAGE} already installed in {rt!r}"
    c.create_rbd_pool("pkg")  # mirror mode image, with a tx peer
    make_image(c, "pkg/img")
    c.run(*SCHED, "add", "-p", "pkg", "1m")  # rbd_support's: our module is on no mgr's path
    link = c.module_path / "rbd_snapsched"

    with Poller(c) as poller:
        # Installing the package changes nothing in the cluster.
        apt_install_deb(rt, debs.current)
        assert installed_version(rt) == VERSION
        assert not link.exists() and not link.is_symlink()
        assert "rbd_snapsched" not in c.ceph_json("mgr", "module", "ls")["enabled_modules"]

        # rbd-snapsched install: the module path is the one the mgrs report (their ceph.conf's).
        proc = tool(c, "install", "--extend-caps")
        assert f"linked {link} -> {SHARE}/rbd_snapsched" in proc.stdout, proc.stdout
        assert os.readlink(link) == f"{SHARE}/rbd_snapsched"
        assert rt.path(LINKS).read_text() == f"{c.module_path}\t{c.conf}\n"
        assert "would move" in proc.stdout  # rbd_support still holds the pool's schedule
        moved = c.run("ceph", *SCHED, "takeover").stdout
        assert "moved " in moved, moved

        # One snapshot at a slot: the first whole minute at least 10 s after the takeover.
        soon = datetime.now(timezone.utc) + timedelta(seconds=10)
        slot = (soon + timedelta(minutes=1)).replace(second=0, microsecond=0)
        wait_until(
            lambda: slot in [t.replace(second=0) for t in mirror_snapshot_times(c, "pkg/img")],
            (slot - datetime.now(timezone.utc)).total_seconds() + 20,
            f"a mirror snapshot of pkg/img at {slot:%H:%M}",
        )

        # Upgrade: dpkg alone reaches no mgr; `rbd-snapsched install` again reaches each one.
        wait_until(lambda: standby_back(c), 60, "the standby mgr to register again")
        pids = mgr_pids(c)
        for pid in pids.values():
            rt.path(MARKER_DIR).joinpath(str(pid)).unlink(missing_ok=True)
        apt_install_deb(rt, debs.upgrade)
        assert installed_version(rt) == UPGRADE
        assert os.readlink(link) == f"{SHARE}/rbd_snapsched"  # prerm upgrade left it alone
        assert {m: marked(rt, pid) for m, pid in pids.items()} == dict.fromkeys(pids, "")
        proc = tool(c, "install")
        assert "upgraded: every mgr restarted" in proc.stdout, proc.stdout
        wait_until(
            lambda: all(marked(rt, pid) for pid in pids.values()),
            60,
            "every mgr to load the upgraded module",
        )
        assert mgr_pids(c) == pids  # respawned in place (exec), so each marker is that mgr's
        for mgr, pid in pids.items():
            assert set(marked(rt, pid).split()) == {UPGRADE}, (mgr, marked(rt, pid))
            print(f"\nmgr.{mgr} (pid {pid}) loaded {UPGRADE}")
        wait_until(c.module_answers, 60, "rbd_snapsched to answer after the upgrade")

        # A removal that cannot reach the cluster is refused, and names the command to run.
        record = rt.path(LINKS).read_text()
        rt.path(LINKS).write_text(f"{c.module_path}\t/nonexistent/ceph.conf\n")
        proc = in_root(rt, *APT, "remove", PACKAGE, env=APT_ENV, timeout=300)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0, out
        assert "cannot hand the schedule commands back to rbd_support" in out, out
        wanted = f"rbd-snapsched uninstall --module-path {c.module_path}"
        assert f"CEPH_CONF=/nonexistent/ceph.conf {wanted}" in out, out
        assert installed_version(rt) == UPGRADE
        assert os.readlink(link) == f"{SHARE}/rbd_snapsched"
        assert c.module_answers()
        rt.path(LINKS).write_text(record)

        # Remove: the prerm hands the commands back (CEPH_CONF from the record, not the env).
        proc = apt(rt, "remove", PACKAGE)
        out = proc.stdout + proc.stderr
        assert "rbd_support answers the schedule commands again" in out, out
        assert "ceph rbd mirror snapshot schedule add 'pkg/' 1m" in out, out
        assert not installed_version(rt)
        assert not link.exists() and not link.is_symlink()
        assert not rt.path(SHARE).exists() and not rt.path(LINKS).parent.exists()
        assert "rbd_snapsched" not in c.ceph_json("mgr", "module", "ls")["enabled_modules"]
        assert c.run("ceph", *SCHED, "takeover", check=False).returncode == 22  # ours only
        listed = c.run(*SCHED, "ls", "-R", "--format", "json").stdout
        assert json.loads(listed) == [], listed  # rbd_support's storage: emptied by takeover
        time.sleep(3)  # a few more polls answered by rbd_support

    print(
        f"\n{c.release}: {time.monotonic() - started:.0f} s; schedule commands polled "
        f"{sum(poller.counts.values())} times: {dict(poller.counts)}",
        *poller.failures,
        sep="\n  ",
    )
    assert poller.counts["ok"] > 0
    assert poller.counts["EOPNOTSUPP"] == 0, poller.failures
    unexpected = [f for f in poller.failures if "other (exit" in f]
    assert not unexpected, unexpected
