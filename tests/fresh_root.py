"""Run the README's two commands, exactly as written, in fresh Debian roots.

    python3 -m tests.fresh_root [--suite trixie] [--suite bookworm] [--only-first-step]
                                [--source worktree|head] [--cached-base] [--keep]
                                [--main-job] [--main-job-seconds S] [--operator-commands]

For each suite it builds a fresh root (``debootstrap --variant=minbase SUITE``), with
/proc, /dev and /dev/pts bound in, a ``policy-rc.d`` that exits 101 and the host's
``resolv.conf``, and installs ``python3`` and ``python3-pip`` in it (``apt-get install
--no-install-recommends``) and nothing else (but this host's own CAs, if it has any: see
``trust_host_network``). It copies a clean copy of this checkout into
``/root/rbd_snapsched`` there (the working tree's files that git tracks or does not ignore, or with
``--source head`` a ``git clone`` of the committed HEAD; the host's git does it, so the root needs
none), then runs in it, as root, the indented command lines of README.md's "**Main job.**" and
"**Every test.**" paragraphs: read from the copied README, so the README and this proof cannot
drift. It prints each step's time, pytest's summary line (the test count), and the host's and the
root's release.

``--only-first-step`` runs only the test command's first step: every part of it before the tox call,
then that tox call with ``--version`` and with ``-e lint --notest`` instead of all environments (tox
builds the lint environment on /usr/bin/python3 with ruff from PyPI; whether the code passes lint is
that environment's business, on every run). It takes a minute or two, and
``tests/fresh/test_fresh_root.py`` does it on trixie on every run (``--main-job`` runs the main job
first all the same; ``--operator-commands`` then builds and installs the Debian package with the
README's commands). Without ``--only-first-step``, a suite takes 30-40 minutes. ``--cached-base``
unpacks a pristine copy of debootstrap's output (``BASE/SUITE.tar``, made by debootstrap and never
entered; made again after 7 days) instead of running debootstrap: the root is still new, and all it
gets beyond debootstrap's packages is fetched from the mirror on this run. The roots live in
``/var/tmp/rbd_snapsched-fresh/run-*/SUITE`` (``RBD_SNAPSCHED_FRESH`` moves them). At the end the
processes left running in a root (the demo's cluster) are stopped, every mount under it is unmounted
and it is deleted, unless ``--keep``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("RBD_SNAPSCHED_FRESH", "/var/tmp/rbd_snapsched-fresh"))
BASE = WORK / "base"
BASE_MAX_AGE = 7 * 24 * 3600
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
APT_OPTS = ("-o", "Acquire::Check-Valid-Until=false", "-o", "APT::Sandbox::User=root")
# What a fresh Debian gets beyond debootstrap's minbase: the interpreter and Debian's pip.
PACKAGES = ("python3", "python3-pip")
MOUNTS = ("proc", "dev", "dev/pts")
CHECKOUT = "/root/rbd_snapsched"
SECTION = "## The two commands"
# Never copied from the working tree, ignored by git or not: the test command's virtualenv.
LOCAL_ONLY = (".venv/",)
UNTRACKED = shutil.ignore_patterns(
    ".git", ".venv", ".tox", "__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache",
    ".pytest_cache", ".hypothesis", "*.egg-info",
)  # fmt: skip
# pytest's last line: "===== 695 passed, 2 warnings in 1910.41s (0:31:50) ====="
SUMMARY = re.compile(r"^=+ (.*\b(?:passed|failed|error|errors|no tests ran)\b.* in [0-9.]+s.*) =+$")


class FreshRootError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"fresh_root: {msg}", flush=True)


# -- the README's commands --------------------------------------------------------------------


@dataclass(frozen=True)
class Commands:
    main_job: tuple[str, ...]
    every_test: str

    def first_step(self) -> tuple[str, str]:
        """The test command split before its last ``&&`` part, the tox call: (before, tox)."""
        parts = [p.strip() for p in self.every_test.split("&&")]
        if len(parts) < 2 or not re.search(r"\btox\b", parts[-1]):
            raise FreshRootError(f"test command {self.every_test!r} does not end in a tox call")
        return " && ".join(parts[:-1]), parts[-1]


def _indented_block(lines: Sequence[str], start: int) -> list[str]:
    """The first block of lines indented by four spaces after ``lines[start]``."""
    block: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("    ") and line.strip():
            block.append(line[4:].rstrip())
        elif block:
            break
    return block


def readme_commands(readme: str) -> Commands:
    """The indented command lines under "**Main job.**" and "**Every test.**" in the README's
    "## The two commands" section, as written (a trailing ``# comment`` stays: the shell ignores
    it)."""
    lines = readme.splitlines()
    try:
        begin = lines.index(SECTION)
    except ValueError:
        raise FreshRootError(f"README.md has no {SECTION!r} section") from None
    end = next((i for i in range(begin + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    section = lines[begin:end]
    found: dict[str, list[str]] = {}
    for label in ("**Main job.**", "**Every test.**"):
        start = next((i for i, line in enumerate(section) if line.startswith(label)), None)
        block = _indented_block(section, start) if start is not None else []
        if not block:
            raise FreshRootError(f"README.md: no indented command under {label}")
        found[label] = block
    if len(found["**Every test.**"]) != 1:
        raise FreshRootError("README.md: the test command is not one line")
    # Only the host-release form of the main job: `--release X` is the same code path.
    return Commands((found["**Main job.**"][0],), found["**Every test.**"][0])


# -- mounts, processes and cleanup ------------------------------------------------------------


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root) + "/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if len(fields) > 4:
            point = fields[4].replace("\\040", " ")
            if point == str(root) or point.startswith(prefix):
                points.append(point)
    return points


def _mount(root: Path) -> None:
    mounted = set(_mounts_under(root))
    for name in MOUNTS:
        target = root / name
        target.mkdir(parents=True, exist_ok=True)
        if str(target) not in mounted:
            _check(["mount", "--bind", f"/{name}", str(target)])


def _pids_in(root: Path) -> list[int]:
    """Processes whose root directory is ``root`` or under it (the demo's cluster, a nested
    chroot's daemons), all started by this run."""
    pids = []
    real = os.path.realpath(root)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            proc_root = os.readlink(entry / "root")
            if proc_root == real or proc_root.startswith(real + "/"):
                pids.append(int(entry.name))
    return pids


def stop_processes(root: Path) -> list[int]:
    stopped: list[int] = []
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        pids = _pids_in(root)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        stopped.extend(p for p in pids if p not in stopped)
        deadline = time.monotonic() + wait
        while _pids_in(root) and time.monotonic() < deadline:
            time.sleep(0.2)
    if _pids_in(root):
        raise FreshRootError(f"processes still running in {root}: {_pids_in(root)}")
    return stopped


def unmount_all(root: Path) -> None:
    """Every mount under ``root``, deepest first (the suite's own nested chroots mount theirs)."""
    for _ in range(5):
        points = sorted(_mounts_under(root), key=len, reverse=True)
        if not points:
            return
        for point in points:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    raise FreshRootError(f"still mounted under {root}: {_mounts_under(root)}")


def remove_root(root: Path) -> None:
    if not root.exists():
        return
    stopped = stop_processes(root)
    if stopped:
        log(f"stopped {len(stopped)} processes left running in {root}")
    unmount_all(root)
    _check(["rm", "-rf", "--one-file-system", str(root)])


# -- building a root --------------------------------------------------------------------------


def _check(cmd: Sequence[str], *, timeout: float = 1800) -> str:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr)[-4000:]
        raise FreshRootError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out}")
    return proc.stdout


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _debootstrap(suite: str, root: Path) -> None:
    if not shutil.which("debootstrap"):
        raise FreshRootError(
            "debootstrap is not installed on the host (apt-get install debootstrap)"
        )
    _check(["debootstrap", "--variant=minbase", suite, str(root)])


def base_tarball(suite: str, *, max_age: float = BASE_MAX_AGE) -> Path:
    """``BASE/SUITE.tar``: debootstrap's output, packed before anything runs in it; made again
    when older than ``max_age`` seconds."""
    tarball = BASE / f"{suite}.tar"
    with _locked(BASE / f"{suite}.lock"):
        if tarball.exists() and time.time() - tarball.stat().st_mtime < max_age:
            return tarball
        build = BASE / f"{suite}.build"
        remove_root(build)
        log(f"{suite}: debootstrap --variant=minbase {suite} (pristine base for {tarball})")
        _debootstrap(suite, build)
        partial = BASE / f"{suite}.tar.part"
        _check(["tar", "-C", str(build), "--numeric-owner", "--xattrs", "-cf", str(partial), "."])
        partial.replace(tarball)
        remove_root(build)
        return tarball


def in_root(root: Path, script: str, *, env: dict[str, str] | None = None) -> list[str]:
    """argv that runs ``script`` through bash as root inside ``root`` with a clean environment
    (what a root login has: PATH, HOME, LANG), from the checkout when it is there."""
    pairs = [f"{k}={v}" for k, v in (env or {}).items()]
    cwd = CHECKOUT if (root / CHECKOUT.lstrip("/")).is_dir() else "/root"
    return [
        "chroot",
        str(root),
        "/usr/bin/env",
        "-i",
        f"PATH={PATH}",
        "HOME=/root",
        "LANG=C.UTF-8",
        "USER=root",
        "LOGNAME=root",
        *pairs,
        "/bin/bash",
        "-c",
        f"cd {cwd} && {script}",
    ]


def make_root(suite: str, root: Path, *, cached_base: bool) -> None:
    if root.exists():
        raise FreshRootError(f"{root} exists")
    started = time.monotonic()
    if cached_base:
        tarball = base_tarball(suite)
        root.mkdir(parents=True)
        _check(["tar", "-C", str(root), "--numeric-owner", "--xattrs", "-xf", str(tarball)])
        how = f"unpacked {tarball.name} (debootstrap output of {_age(tarball)})"
    else:
        root.parent.mkdir(parents=True, exist_ok=True)
        _debootstrap(suite, root)
        how = f"debootstrap --variant=minbase {suite}"
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    _mount(root)
    log(f"{suite}: {how}: {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    apt = ["apt-get", *APT_OPTS, "-q", "-y"]
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    _check(in_root(root, " ".join([*apt, "update"]), env=env))
    install = [*apt, "install", "--no-install-recommends", *PACKAGES]
    _check(in_root(root, " ".join(install), env=env))
    log(f"{suite}: {' '.join(install[:1] + install[-3:])}: {time.monotonic() - started:.0f} s")
    trust_host_network(root)


def trust_host_network(root: Path) -> list[str]:
    """This machine's network, not Debian: egress goes through a TLS proxy whose CA the host
    trusts in /usr/local/share/ca-certificates. Those CAs go into the root's store
    (``update-ca-certificates``: python3-pip's Depends already brings ca-certificates) and
    /etc/pip.conf points pip at that store, since the pips tox puts into its environments carry
    their own certifi. A host without such CAs gets neither."""
    extra = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    if not extra:
        return []
    dest = root / "usr/local/share/ca-certificates"
    dest.mkdir(parents=True, exist_ok=True)
    for cert in extra:
        shutil.copy(cert, dest / cert.name)
    _check(in_root(root, "update-ca-certificates"))
    (root / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
    names = [c.name for c in extra]
    log(f"host network: its CAs ({', '.join(names)}) and pip's cert setting copied in")
    return names


def _age(path: Path) -> str:
    hours = (time.time() - path.stat().st_mtime) / 3600
    return f"{hours:.0f} h ago" if hours >= 1 else f"{hours * 60:.0f} min ago"


def copy_checkout(root: Path, source: str) -> None:
    """A clean copy of this checkout at ``CHECKOUT`` inside ``root``: ``head`` clones the committed
    HEAD; ``worktree`` copies the files git tracks or does not ignore, as they are now (no .tox,
    caches, build output or ``.venv``)."""
    dest = root / CHECKOUT.lstrip("/")
    if source == "head":
        _check(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(dest)])
        return
    if shutil.which("git") is None or not (REPO / ".git").exists():
        # A checkout without git (the suite itself run in a fresh root, which has no git): every
        # file but what git would ignore here anyway (the venv, tox's, caches, bytecode).
        shutil.copytree(REPO, dest, ignore=UNTRACKED, symlinks=True)
        return
    listed = _check(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    )
    dest.mkdir(parents=True)
    for name in sorted(set(filter(None, listed.split("\0")))):
        if name.startswith(LOCAL_ONLY):
            continue
        src = REPO / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree, not yet in the index
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)


def describe(root: Path | None = None) -> str:
    """PRETTY_NAME of /etc/os-release (of ``root``), with /etc/debian_version."""
    base = root or Path("/")
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in (base / "etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            fields[key] = value.strip().strip('"')
    version = ""
    with contextlib.suppress(OSError):
        version = (base / "etc/debian_version").read_text().strip()
    name = fields.get("PRETTY_NAME", "unknown")
    return f"{name} (debian_version {version})" if version else name


# -- running the commands ---------------------------------------------------------------------


@dataclass
class Step:
    name: str
    command: str
    returncode: int = 0
    seconds: float = 0.0
    summary: str = ""
    timed_out: bool = False
    tail: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 or self.timed_out


def run_step(
    root: Path, name: str, command: str, *, timeout: float | None = None, echo: bool = True
) -> Step:
    """``command`` run through bash in ``root``'s checkout, output streamed (``echo``) and its last
    lines kept. With ``timeout``, it is stopped after that many seconds (its process group, then
    whatever else runs in the root) and counts as ``timed_out``, not failed. The step ends when
    its shell does: daemons it leaves running (the demo's cluster) may hold the output open."""
    step = Step(name, command)
    if echo:
        log(f"{name}: $ {command}")
    started = time.monotonic()
    proc = subprocess.Popen(
        in_root(root, command),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    out = proc.stdout
    assert out is not None

    def read() -> None:
        for raw in out:
            line = raw.rstrip("\n")
            if echo:
                print(f"  {line}", flush=True)
            step.tail = [*step.tail[-199:], line]
            match = SUMMARY.match(line.strip())
            if match:
                step.summary = match.group(1)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        step.returncode = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        step.timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        stop_processes(root)
        step.returncode = proc.wait()
    reader.join(timeout=10)
    step.seconds = time.monotonic() - started
    return step


@dataclass
class SuiteResult:
    suite: str
    root: Path
    release: str = ""
    steps: list[Step] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and all(s.ok for s in self.steps)


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def run_suite(
    suite: str,
    root: Path,
    *,
    source: str = "worktree",
    only_first_step: bool = False,
    main_job: bool = False,
    main_job_seconds: float | None = None,
    operator_commands: bool = False,
    cached_base: bool = False,
    echo: bool = True,
) -> SuiteResult:
    """Build ``root`` fresh, copy the checkout in and run the README's commands there. The root
    is left as it is (mounted, processes running): ``remove_root`` cleans up."""
    result = SuiteResult(suite, root)
    try:
        make_root(suite, root, cached_base=cached_base)
        result.release = describe(root)
        copy_checkout(root, source)
        readme = (root / CHECKOUT.lstrip("/") / "README.md").read_text()
        commands = readme_commands(readme)
        probe = (
            "python3 --version; python3 -m pip --version; "
            "dpkg-query -W -f '${Package} ${db:Status-Abbrev} ${Version}\\n' python3-pip "
            "python3-packaging ca-certificates python3-venv git 2>&1 | sed 's/^/  /'"
        )
        result.steps.append(run_step(root, "what the root has", probe, echo=echo))
        if main_job or not only_first_step:
            for line in commands.main_job:
                step = run_step(root, "main job", line, timeout=main_job_seconds, echo=echo)
                result.steps.append(step)
                stop_processes_but_root(root)
                if not step.ok:
                    return result
        if only_first_step:
            before, tox = commands.first_step()
            for name, command in (
                ("test command, first step", before),
                ("tox --version", f"{tox} --version"),
                ("tox -e lint --notest", f"{tox} -e lint --notest"),
            ):
                step = run_step(root, name, command, echo=echo)
                result.steps.append(step)
                if not step.ok:
                    return result
        else:
            result.steps.append(run_step(root, "test command", commands.every_test, echo=echo))
        if operator_commands:
            for name, command in operator_command_lines(readme):
                result.steps.append(run_step(root, name, command, echo=echo))
    except (FreshRootError, OSError, subprocess.SubprocessError) as exc:
        result.error = str(exc)
    return result


def stop_processes_but_root(root: Path) -> None:
    """Stop what the main job left running (its cluster), so that the test command starts on a
    root like the README's reader has after `down`."""
    stopped = stop_processes(root)
    if stopped:
        log(f"stopped {len(stopped)} processes the main job left running")


def operator_command_lines(readme: str) -> list[tuple[str, str]]:
    """The operator's commands of "## Install into an existing cluster" that need no cluster:
    the package build (the indented line that runs ``debian/build-deb``), installing the .deb it
    leaves above the clone (the README's ``apt install ./rbd-snapsched_…`` line, run from there,
    plus ``-y``: no one answers apt's question here), and the installed command's and the
    clone's install command's ``--help`` (installing into a mgr needs a cluster)."""
    indented = [ln.strip() for ln in readme.splitlines() if ln.startswith("    ")]
    build = next((ln for ln in indented if "debian/build-deb" in ln), "")
    install = next((ln for ln in indented if ln.startswith("apt install ./rbd-snapsched")), "")
    found = [("package build (README)", build or "sh debian/build-deb")]
    if install:
        line = install.split("#")[0].strip()
        found.append(
            ("package install (README)", f"cd .. && DEBIAN_FRONTEND=noninteractive {line} -y")
        )
        found.append(("rbd-snapsched --help", "rbd-snapsched --help"))
    found.append(
        ("python3 -m rbd_snapsched.install --help", "python3 -m rbd_snapsched.install --help")
    )
    return found


def report(result: SuiteResult, seconds: float) -> str:
    lines = [f"== {result.suite}: {'OK' if result.ok else 'FAILED'} in {_minutes(seconds)}"]
    lines.append(f"   host: {describe()}; root: {result.release or '(not built)'}")
    for step in result.steps:
        state = "timed out (as asked)" if step.timed_out else f"exit {step.returncode}"
        lines.append(f"   {step.name}: {state}, {_minutes(step.seconds)}: $ {step.command}")
        if step.summary:
            lines.append(f"     pytest: {step.summary}")
        if not step.ok:
            lines.extend(f"     | {line}" for line in step.tail[-25:])
    if result.error:
        lines.append(f"   error: {result.error}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m tests.fresh_root", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--suite",
        action="append",
        help="Debian suite of a fresh root, repeatable (default: trixie and bookworm)",
    )
    parser.add_argument(
        "--only-first-step",
        action="store_true",
        help="only the test command's first step, then its tox call with --version and with "
        "-e lint --notest",
    )
    parser.add_argument(
        "--source",
        choices=("worktree", "head"),
        default="worktree",
        help="copy the working tree's files (default) or git clone the committed HEAD",
    )
    parser.add_argument(
        "--cached-base",
        action="store_true",
        help=f"unpack a pristine debootstrap output kept in {BASE} instead of running debootstrap",
    )
    parser.add_argument(
        "--main-job",
        action="store_true",
        help="with --only-first-step: run the main job first all the same",
    )
    parser.add_argument(
        "--main-job-seconds",
        type=float,
        help="stop the main job after this many seconds, counted as passed (implies --main-job)",
    )
    parser.add_argument(
        "--operator-commands",
        action="store_true",
        help="then build the Debian package with the README's command",
    )
    parser.add_argument("--keep", action="store_true", help="keep the roots (mounted) at the end")
    parser.add_argument(
        "--remove",
        metavar="ROOT",
        action="append",
        help="only stop, unmount and delete a root that --keep kept, repeatable",
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("needs root (debootstrap, chroot, mount)")
    if args.remove:
        for kept in args.remove:
            remove_root(Path(kept).resolve())
            log(f"removed {kept}")
        return 0
    suites: list[str] = args.suite or ["trixie", "bookworm"]
    WORK.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=WORK))
    log(f"host: {describe()}, {os.uname().release}; roots in {run_dir}")
    results = []
    for suite in suites:
        root = run_dir / suite
        started = time.monotonic()
        try:
            result = run_suite(
                suite,
                root,
                source=args.source,
                only_first_step=args.only_first_step,
                main_job=args.main_job or args.main_job_seconds is not None,
                main_job_seconds=args.main_job_seconds,
                operator_commands=args.operator_commands,
                cached_base=args.cached_base,
            )
        finally:
            if not args.keep:
                remove_root(root)
        results.append((result, time.monotonic() - started))
    if not args.keep:
        with contextlib.suppress(OSError):
            run_dir.rmdir()
    else:
        log(f"kept, mounted: {' '.join(str(run_dir / s) for s in suites)} (--remove ROOT)")
    print()
    for result, seconds in results:
        print(report(result, seconds))
    return 0 if all(r.ok for r, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
