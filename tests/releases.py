#!/usr/bin/env python3
"""The Ceph releases the suite runs on, and where each one's daemons and CLIs come from.

The host's own Debian packages serve the release its Debian suite carries; every other
supported release runs from a cached Debian chroot of the suite that carries it, built on first
use with ``debootstrap`` and ``apt-get`` (a minute or two each). Daemons, CLIs, the mgr and our
module then run inside that chroot; it shares the host's network, so clusters of different
releases run side by side on 127.0.0.1.

A cluster's directory has the same absolute path inside and outside its chroot (the real
directory lives in the chroot, the host path is a link to it), so a conf file, a keyring, a log
or a token written by either side is read by the other under the same name.

What a release needs beyond its packages is found by looking, not by version:

- ``mgr_util`` fails to import in a subinterpreter (Debian trixie's bcrypt 4 is a PyO3 module,
  which refuses subinterpreters, so ceph-mgr loads no module that imports ``mgr_util``): a cffi
  bcrypt 3.2.2 goes into a directory on ceph-mgr's ``PYTHONPATH``.

Beside the releases, *interpreters*: a Debian suite's python3 that carries no Ceph release of
ours but that the package must still import and pass its unit and fake-contract tests under.
``python39`` is Debian bullseye's CPython 3.9, the oldest Python the package supports (the one in
the Squid and early Tentacle container images). Its chroot is built the same way, with
bullseye's python3 and its (Nautilus) ``rados``/``rbd`` bindings only so that imports resolve,
and the test tools in a directory of their own (``TEST_DEPS_DIR``), fetched by the host's pip as
wheels for that Python, so nothing in the chroot needs the network or a CA bundle. Asked for
every release, ``prepare`` builds the interpreters too (``tests/cephcluster.py install`` without
arguments, so tox's ``commands_pre``).

Standard library only::

    python3 tests/releases.py prepare [NAME ...]   # install / build releases, interpreters
    python3 tests/releases.py list                 # the releases, interpreters and where they run
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("RBD_SNAPSCHED_CACHE", "/var/cache/rbd_snapsched"))
PACKAGES = (
    "ceph-mon",
    "ceph-osd",
    "ceph-mgr",
    "ceph-common",
    "python3-rados",
    "python3-rbd",
    "rbd-mirror",
    "python3-cffi",  # for the bcrypt shim, where a release needs it
    "ceph-mgr-dashboard",  # for tests/cluster/test_dashboard.py (Cluster(dashboard=True) only)
)
# Executables a working install has; the .so of the rbd binding is looked for by glob, since
# its name carries the Python version.
REQUIRED = ("ceph-mon", "ceph-osd", "ceph-mgr", "ceph", "rbd", "rbd-mirror", "rados")
DASHBOARD_DIR = "/usr/share/ceph/mgr/dashboard"  # what ceph-mgr-dashboard installs
BCRYPT_SHIM = "bcrypt==3.2.2"
BCRYPT_SHIM_DIR = "/opt/rbd_snapsched/bcrypt-shim"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
APT_OPTS = ("-o", "Acquire::Check-Valid-Until=false", "-o", "APT::Sandbox::User=root")
MOUNTS = ("proc", "dev", "dev/pts")

# The test tools of an interpreter runtime, fetched by the host's pip as wheels for its Python,
# at the versions of tests/constraints-py39.txt (the ones tox's types39 checks with). pip does
# not evaluate the dependencies' markers for a target Python other than its own, so what pytest
# and hypothesis need only below 3.11 is named here (exceptiongroup, tomli), as are the rest of
# the constrained tools. The build imports every tool before it keeps them.
TEST_DEPS = (
    "pytest",
    "pytest-xdist",
    "hypothesis",
    "tzdata",
    "exceptiongroup",
    "tomli",
    "iniconfig",
    "pluggy",
    "packaging",
    "execnet",
    "attrs",
    "sortedcontainers",
    "typing-extensions",
)
TEST_DEPS_CONSTRAINTS = Path(__file__).resolve().parent / "constraints-py39.txt"
TEST_DEPS_DIR = "/opt/rbd_snapsched/test-deps"
# What an interpreter runtime must import: its packages, then the test tools (pytest imports
# most of its plugins' modules only when it runs, so those are named).
DEPS_PROBE = (
    "import rados, rbd, dateutil, yaml, zoneinfo, pytest, xdist, hypothesis, iniconfig, "
    "_pytest.config, _pytest.assertion.rewrite, xdist.plugin, execnet, hypothesis.stateful"
)

SUBINTERPRETER_PROBE = """
import sys
try:
    import _interpreters as i
    interp = i.create("legacy")
    run = i.run_string
except ImportError:
    import _xxsubinterpreters as i
    interp = i.create(isolated=False)
    run = i.run_string
failure = None
try:
    failure = run(interp, "import sys; sys.path.insert(0, '/usr/share/ceph/mgr'); import mgr_util")
except Exception as e:
    failure = e
print("ok" if failure is None else f"fails: {getattr(failure, 'msg', failure)}")
"""


class ReleaseError(RuntimeError):
    """A release cannot be made ready; the message says which step failed and its output."""


def log(msg: str) -> None:
    print(f"[releases] {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Release:
    name: str
    suite: str  # the Debian suite whose packages carry it
    version: str  # the upstream version prefix, e.g. "18.2."
    python: str  # that suite's python3, for the README table


RELEASES: dict[str, Release] = {
    r.name: r
    for r in (
        Release("pacific", "bookworm", "16.2.", "3.11"),
        Release("reef", "trixie", "18.2.", "3.13"),
        Release("tentacle", "sid", "20.2.", "3.14"),
    )
}
# Debian suites (codenames) that carry each release. forky is trixie's successor (testing).
SUITE_RELEASE = {"bookworm": "pacific", "trixie": "reef", "forky": "tentacle", "sid": "tentacle"}


@dataclass(frozen=True)
class Interpreter:
    """A Debian suite's python3 with no Ceph release of ours (see the module's docstring)."""

    name: str
    suite: str
    python: str  # its X.Y, checked after the build
    packages: tuple[str, ...]  # from the suite's archive
    test_deps: tuple[str, ...] = TEST_DEPS  # wheels, into TEST_DEPS_DIR


INTERPRETERS: dict[str, Interpreter] = {
    i.name: i
    for i in (
        Interpreter(
            "python39",
            "bullseye",
            "3.9",
            # bullseye's rados/rbd are Nautilus: there only so that `import rados, rbd` works.
            ("python3", "python3-rados", "python3-rbd", "python3-dateutil", "python3-yaml"),
        ),
    )
}


def host_codename() -> str:
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            fields[key] = value.strip().strip('"')
    codename = fields.get("VERSION_CODENAME", "")
    if not codename and "sid" in fields.get("PRETTY_NAME", ""):
        codename = "sid"
    return codename


def host_release() -> Release:
    codename = host_codename()
    name = SUITE_RELEASE.get(codename)
    if name is None:
        raise ReleaseError(
            f"this host is Debian {codename or '(unknown)'}: the suite runs on "
            f"{', '.join(SUITE_RELEASE)}"
        )
    return RELEASES[name]


def _run(cmd: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 1800) -> str:
    proc = subprocess.run(
        list(cmd),
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise ReleaseError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}"
        )
    return proc.stdout


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """One preparer per release at a time, across processes (pytest workers, tox, the demo)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class Runtime:
    """Where one release's binaries run: the host (``root`` is /) or a chroot of its suite."""

    def __init__(self, release: Release, root: Path) -> None:
        self.release = release
        self.root = root

    @property
    def is_host(self) -> bool:
        return self.root == Path("/")

    def __repr__(self) -> str:
        where = "host" if self.is_host else f"chroot {self.root}"
        return f"<Runtime {self.release.name} on {where}>"

    def path(self, inner: str | Path) -> Path:
        """The host's view of a path inside the runtime."""
        return self.root / Path(inner).relative_to("/")

    # -- running things -------------------------------------------------------------------

    @property
    def mgr_env(self) -> dict[str, str]:
        """Extra environment ceph-mgr needs here (set by ``prepare``'s findings)."""
        shim = self.path(BCRYPT_SHIM_DIR)
        return {"PYTHONPATH": BCRYPT_SHIM_DIR} if (shim / "bcrypt").is_dir() else {}

    def argv(self, argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
        """The command line that runs ``argv`` here with the variables ``env`` set.

        The variables are part of the command line (``env K=V …``, which execs, so a daemon's
        pid is the daemon's), so any process environment will do. On the host the rest of the
        environment is inherited; in a chroot nothing is (``env -i``) but a plain PATH.
        """
        if self.is_host:
            pairs = [f"{k}={v}" for k, v in env.items()]
            return ["/usr/bin/env", *pairs, *argv] if pairs else list(argv)
        return _chroot_argv(self.root, argv, env)

    def run(self, *argv: str, env: Mapping[str, str] | None = None, timeout: float = 600) -> str:
        return _run(self.argv(argv, dict(env or {})), timeout=timeout)

    # -- directories both sides see under one name -----------------------------------------

    def make_dir(self, path: Path) -> None:
        """Make ``path`` exist, under the same name, on the host and in the runtime."""
        if self.is_host or self.shares(path):
            path.mkdir(parents=True, exist_ok=True)
            return
        inner = self.path(path)
        inner.mkdir(parents=True, exist_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() and path.resolve() == inner.resolve():
            return
        if path.exists():
            raise ReleaseError(f"{path} exists on the host but not in {self.root}")
        path.symlink_to(inner, target_is_directory=True)

    def shares(self, path: Path) -> bool:
        """``path`` names the same directory on the host and in the runtime."""
        return self.is_host or self.path(path).resolve() == path.resolve()

    def make_temp_dir(self, prefix: str) -> Path:
        if self.is_host:
            return Path(tempfile.mkdtemp(prefix=prefix))
        inner = Path(tempfile.mkdtemp(prefix=prefix, dir=self.path("/tmp")))
        path = Path("/tmp") / inner.name
        path.symlink_to(inner, target_is_directory=True)
        return path

    def remove_dir(self, path: Path) -> None:
        """Delete a directory made by ``make_dir``/``make_temp_dir``, and its host link."""
        if path.is_symlink():
            target = path.resolve()
            path.unlink()
            shutil.rmtree(target, ignore_errors=True)
        else:
            shutil.rmtree(path, ignore_errors=True)

    # -- making it ready ------------------------------------------------------------------

    def installed(self) -> bool:
        if not all(self.path(f"/usr/bin/{name}").exists() for name in REQUIRED):
            return False
        if not self.path(DASHBOARD_DIR).is_dir():
            return False
        return any(self.path("/usr/lib/python3/dist-packages").glob("rbd.cpython-*.so"))

    def prepare(self) -> None:
        """Install (host) or build (chroot) this release, then apply what it needs. Idempotent."""
        with _locked(self.release.name):
            if self.is_host:
                if not self.installed():
                    with _locked("host-apt"):
                        self._apt_install()
            else:
                self._prepare_chroot()
                if not self.installed():  # built before a package joined PACKAGES
                    self._apt_install()
            self._check_version()
            self._apply_workarounds()

    def _check_version(self) -> None:
        out = self.run("ceph", "--version").strip()
        if f"ceph version {self.release.version}" not in out:
            raise ReleaseError(f"{self!r}: expected Ceph {self.release.version}x, got {out!r}")

    def _apt_install(self) -> None:
        if os.geteuid() != 0:
            raise ReleaseError(f"{self!r}: Ceph packages missing and not root to install them")
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        log(f"{self.release.name}: apt-get install {' '.join(PACKAGES)}")
        self.run("apt-get", *APT_OPTS, "update", "-qq", env=env)
        self.run(
            "apt-get",
            *APT_OPTS,
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            *PACKAGES,
            env=env,
        )

    def _mount(self) -> None:
        _mount_chroot(self.root)

    def _unmount(self) -> None:
        _unmount_chroot(self.root)

    def _prepare_chroot(self) -> None:
        _build_chroot(self.release.name, self.release.suite, self.root, self._apt_install)

    def _apply_workarounds(self) -> None:
        probe = self.run("/usr/bin/python3", "-c", SUBINTERPRETER_PROBE).strip()
        if probe == "ok":
            return
        shim = self.path(BCRYPT_SHIM_DIR)
        if (shim / "bcrypt").is_dir():
            return
        log(f"{self.release.name}: mgr_util {probe}; adding a cffi {BCRYPT_SHIM} for ceph-mgr")
        # The 3.2.2 wheel is abi3 (any CPython >= 3.6) and needs only cffi, which comes from
        # the release's own python3-cffi: the host's pip fetches it for any runtime.
        _pip_staged(shim, "--no-deps", BCRYPT_SHIM).rename(shim)
        check = self.run(
            "/usr/bin/python3", "-c", SUBINTERPRETER_PROBE, env={"PYTHONPATH": BCRYPT_SHIM_DIR}
        ).strip()
        if check != "ok":
            raise ReleaseError(f"{self!r}: mgr_util still {check} with the bcrypt shim")


def _pip_staged(target: Path, *args: str) -> Path:
    """Wheels installed by the host's pip into ``target``'s staging twin (``target.new``, made
    anew), which the caller checks and renames into place; returns the staging directory."""
    staging = target.with_name(target.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    pip = [sys.executable, "-m", "pip", "install", "-q", "--only-binary=:all:"]
    _run([*pip, "--target", str(staging), *args])
    return staging


def _chroot_argv(root: Path, argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """``argv`` run inside the chroot ``root`` with only a plain PATH, LANG and ``env`` set."""
    pairs = [f"{k}={v}" for k, v in env.items()]
    plain = [f"PATH={PATH}", "LANG=C.UTF-8"]
    return ["chroot", str(root), "/usr/bin/env", "-i", *plain, *pairs, *argv]


def _mount_chroot(root: Path) -> None:
    mounted = {
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if len(line.split()) > 4
    }
    for name in MOUNTS:
        target = root / name
        target.mkdir(parents=True, exist_ok=True)
        if str(target) not in mounted:
            _run(["mount", "--bind", f"/{name}", str(target)])


def _unmount_chroot(root: Path) -> None:
    for name in reversed(MOUNTS):
        subprocess.run(["umount", "-l", str(root / name)], capture_output=True, check=False)


def _build_chroot(label: str, suite: str, root: Path, install: Callable[[], None]) -> None:
    """Build the chroot ``root`` of ``suite`` unless it is ready (a marker file, written last),
    its mounts up either way; ``install`` puts the packages in. The caller holds its lock."""
    ready = root / ".rbd_snapsched-ready"
    if ready.exists():
        _mount_chroot(root)
        return
    if os.geteuid() != 0:
        raise ReleaseError(f"{label}: chroot {root} is not built and building it needs root")
    with _locked("host-apt"):  # chroots are built side by side; the host has one dpkg
        if not shutil.which("debootstrap"):
            log("installing debootstrap on the host")
            _run(["apt-get", "update", "-qq"])
            _run(
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "debootstrap"],
                env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
            )
    if root.exists():  # a build that did not finish: start again, mounts first
        _unmount_chroot(root)
        _run(["rm", "-rf", "--one-file-system", str(root)])
    root.parent.mkdir(parents=True, exist_ok=True)
    log(f"{label}: debootstrap {suite} into {root}")
    _run(["debootstrap", "--variant=minbase", suite, str(root)])
    # No init system in here: package scripts must not try to start services.
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    _mount_chroot(root)
    install()
    ready.write_text(label + "\n")
    log(f"{label}: chroot ready")


class InterpreterRuntime:
    """Where an interpreter (``INTERPRETERS``) runs: a chroot of its suite, its test tools in
    ``TEST_DEPS_DIR`` (put that on ``PYTHONPATH`` to run pytest there)."""

    def __init__(self, interpreter: Interpreter, root: Path) -> None:
        self.interpreter = interpreter
        self.root = root

    def __repr__(self) -> str:
        return f"<InterpreterRuntime {self.interpreter.name} on chroot {self.root}>"

    def path(self, inner: str | Path) -> Path:
        """The host's view of a path inside the chroot."""
        return self.root / Path(inner).relative_to("/")

    def argv(self, argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
        """The command line that runs ``argv`` in the chroot, with only ``env`` (and a plain
        PATH and LANG) set."""
        return _chroot_argv(self.root, argv, env)

    def run(self, *argv: str, env: Mapping[str, str] | None = None, timeout: float = 600) -> str:
        return _run(self.argv(argv, dict(env or {})), timeout=timeout)

    def prepare(self) -> None:
        """Build the chroot and fetch the test tools, each unless already there. Idempotent."""
        with _locked(self.interpreter.name):
            _build_chroot(self.interpreter.name, self.interpreter.suite, self.root, self._install)
            self._install_test_deps()
            self._check_version()

    def _install(self) -> None:
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        packages = self.interpreter.packages
        log(f"{self.interpreter.name}: apt-get install {' '.join(packages)}")
        self.run("apt-get", *APT_OPTS, "update", "-qq", env=env)
        self.run(
            "apt-get",
            *APT_OPTS,
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            *packages,
            env=env,
        )

    def _install_test_deps(self) -> None:
        """The test tools, as wheels for the interpreter's Python, by the host's pip. The
        directory's marker names what is in it: a changed ``test_deps`` fetches them again."""
        target = self.path(TEST_DEPS_DIR)
        wanted = "\n".join(self.interpreter.test_deps) + "\n" + TEST_DEPS_CONSTRAINTS.read_text()
        marker = target / ".rbd_snapsched-ready"
        if marker.is_file() and marker.read_text() == wanted:
            return
        log(f"{self.interpreter.name}: pip install --target {TEST_DEPS_DIR} (host pip)")
        staging = _pip_staged(
            target,
            "--disable-pip-version-check",
            "--no-compile",
            "--platform",
            "manylinux2014_x86_64",
            "--implementation",
            "cp",
            "--python-version",
            self.interpreter.python,
            "-c",
            str(TEST_DEPS_CONSTRAINTS),
            *self.interpreter.test_deps,
        )
        inner = Path(TEST_DEPS_DIR).with_name(staging.name)
        self.run("/usr/bin/python3", "-c", DEPS_PROBE, env={"PYTHONPATH": str(inner)})
        (staging / ".rbd_snapsched-ready").write_text(wanted)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)

    def _check_version(self) -> None:
        out = self.run("/usr/bin/python3", "--version").strip()
        if not out.startswith(f"Python {self.interpreter.python}."):
            raise ReleaseError(f"{self!r}: expected Python {self.interpreter.python}, got {out!r}")
        self.run("/usr/bin/python3", "-c", DEPS_PROBE, env={"PYTHONPATH": TEST_DEPS_DIR})


def interpreter_runtime(name: str) -> InterpreterRuntime:
    """The runtime of the interpreter ``name`` (``INTERPRETERS``)."""
    interpreter = INTERPRETERS.get(name)
    if interpreter is None:
        raise ReleaseError(f"unknown interpreter {name!r}: one of {', '.join(INTERPRETERS)}")
    return InterpreterRuntime(interpreter, CACHE / "chroot" / interpreter.suite)


def _side_by_side(jobs: Sequence[Callable[[], object]]) -> None:
    """Run every job at once; raise the first failure once all have finished."""
    with ThreadPoolExecutor(max(1, len(jobs))) as pool:
        futures = [pool.submit(job) for job in jobs]
    for future in futures:
        error = future.exception()
        if error is not None:
            raise error


def runtime(name: str | None = None) -> Runtime:
    """The runtime of release ``name`` (default: the host's)."""
    host = host_release()
    release = host if name in (None, "host") else RELEASES.get(name or "")
    if release is None:
        raise ReleaseError(f"unknown release {name!r}: one of {', '.join(RELEASES)}")
    if release == host:
        return Runtime(release, Path("/"))
    return Runtime(release, CACHE / "chroot" / release.suite)


def prepare(names: Sequence[str]) -> list[Runtime]:
    """Make every named release ready, chroots built side by side. Asked for every release
    (``tests/cephcluster.py install`` without names, so tox's ``commands_pre``), it builds every
    interpreter (``INTERPRETERS``) alongside; the releases' runtimes are returned."""
    runtimes = [runtime(n) for n in names]
    extras = [interpreter_runtime(n) for n in INTERPRETERS] if set(RELEASES) <= set(names) else []
    _side_by_side([r.prepare for r in runtimes] + [x.prepare for x in extras])
    return runtimes


def prepare_interpreters(names: Sequence[str]) -> list[InterpreterRuntime]:
    """Make every named interpreter ready, side by side."""
    runtimes = [interpreter_runtime(n) for n in names]
    _side_by_side([r.prepare for r in runtimes])
    return runtimes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    prep = sub.add_parser(
        "prepare", help="install or build each release or interpreter (default: all of them)"
    )
    prep.add_argument("releases", nargs="*", choices=[*RELEASES, *INTERPRETERS, "host", []])
    sub.add_parser("list", help="the supported releases, the interpreters and where they run")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "prepare":
            names = args.releases or list(RELEASES)
            releases = [n for n in names if n not in INTERPRETERS]
            every = set(RELEASES) <= set(releases)  # then prepare() builds every interpreter
            interpreters = [] if every else [n for n in names if n in INTERPRETERS]
            _side_by_side(
                ([lambda: prepare(releases)] if releases else [])
                + ([lambda: prepare_interpreters(interpreters)] if interpreters else [])
            )
            for name in releases:
                print(f"{runtime(name).release.name}: ready ({runtime(name)!r})")
            for name in list(INTERPRETERS) if every else interpreters:
                print(f"{name}: ready ({interpreter_runtime(name)!r})")
        else:
            for name in RELEASES:
                print(f"{name}: {runtime(name)!r}")
            for name in INTERPRETERS:
                print(f"{name}: {interpreter_runtime(name)!r}")
    except ReleaseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
