"""A real Prometheus for tests: Debian's ``prometheus`` package, and a throwaway server.

Standard library only. ``ensure_installed()`` apt-installs the package (``/usr/bin/prometheus``
and ``/usr/bin/promtool``) when either is missing; it takes the same host-wide lock as
``tests/releases.py`` (``host-apt``), so pytest workers and the release preparer never run apt
at once, and it waits out a dpkg lock held by anyone else. ``PrometheusServer`` starts
``/usr/bin/prometheus`` on 127.0.0.1 with its own config and storage in a temporary directory,
scraping the given targets every second, and removes all of it on exit.

Debian's package would start a ``prometheus`` service listening on :9090. No init system runs
here, and ``policy-rc.d`` (temporarily written when absent) denies the start anyway; should a
daemon still be running after the install, it is stopped.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from tests.polling import poll

PROMETHEUS: Final = Path("/usr/bin/prometheus")
PROMTOOL: Final = Path("/usr/bin/promtool")
PACKAGE: Final = "prometheus"
CACHE: Final = Path(os.environ.get("RBD_SNAPSCHED_CACHE", "/var/cache/rbd_snapsched"))
APT_LOCK: Final = CACHE / "host-apt.lock"  # the lock tests/releases.py takes for host apt
POLICY_RC_D: Final = Path("/usr/sbin/policy-rc.d")
DPKG_WAIT: Final = 300.0  # seconds to wait out someone else's dpkg/apt lock
DPKG_LOCK_SIGNS: Final = (
    "Could not get lock",
    "Unable to acquire the dpkg frontend lock",
    "Unable to lock directory",
    "dpkg was interrupted",  # another dpkg died half way: `dpkg --configure -a` is retried
)
OURS: Final = "rbd_snapsched-prometheus-"  # prefix of our servers' temporary directories


class PrometheusError(RuntimeError):
    """Prometheus could not be installed, started or queried; the message says why."""


def installed() -> bool:
    return PROMETHEUS.exists() and PROMTOOL.exists()


def ensure_installed(log: Callable[[str], None] = lambda text: None) -> None:
    """Install Debian's ``prometheus`` package unless both binaries are there. Idempotent."""
    if installed():
        return
    if os.geteuid() != 0:
        raise PrometheusError(f"{PROMETHEUS} or {PROMTOOL} missing and not root to install them")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(APT_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if installed():  # another worker installed it while we waited
                return
            log(f"apt-get install {PACKAGE}")
            with _services_denied():
                try:
                    _apt("install", "-y", "-qq", "--no-install-recommends", PACKAGE)
                except PrometheusError:
                    log("install failed; apt-get update and again")
                    _apt("update", "-qq")
                    _apt("install", "-y", "-qq", "--no-install-recommends", PACKAGE)
            _stop_packaged_daemon(log)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if not installed():
        raise PrometheusError(f"apt-get installed {PACKAGE} but {PROMETHEUS}/{PROMTOOL} missing")


def _apt(*args: str) -> None:
    """``apt-get ARGS``, retried while another apt or dpkg holds its lock (up to DPKG_WAIT)."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    deadline = time.monotonic() + DPKG_WAIT
    cmd = ["apt-get", "-o", "DPkg::Lock::Timeout=60", *args]
    while True:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            return
        output = proc.stdout + proc.stderr
        if not any(sign in output for sign in DPKG_LOCK_SIGNS) or time.monotonic() > deadline:
            raise PrometheusError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output[-3000:]}")
        if "dpkg was interrupted" in output:
            subprocess.run(["dpkg", "--configure", "-a"], env=env, capture_output=True, check=False)
        time.sleep(5)


@contextlib.contextmanager
def _services_denied() -> Iterator[None]:
    """Package scripts may not start services while inside: a ``policy-rc.d`` that says 101."""
    if POLICY_RC_D.exists():  # containers ship one already; leave it as it is
        yield
        return
    POLICY_RC_D.write_text("#!/bin/sh\n# rbd_snapsched tests: no service starts\nexit 101\n")
    POLICY_RC_D.chmod(0o755)
    try:
        yield
    finally:
        POLICY_RC_D.unlink(missing_ok=True)


def _packaged_daemons() -> list[int]:
    """Pids of ``/usr/bin/prometheus`` processes that are not one of our test servers."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = os.readlink(entry / "exe")
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if exe == str(PROMETHEUS) and OURS not in cmdline:
            pids.append(int(entry.name))
    return pids


def _stop_packaged_daemon(log: Callable[[str], None]) -> None:
    """Stop the service the package's postinst may have started (it would hold :9090)."""
    pids = _packaged_daemons()
    if not pids:
        return
    log(f"stopping the packaged prometheus daemon (pids {pids})")
    subprocess.run(["invoke-rc.d", PACKAGE, "stop"], capture_output=True, check=False)
    for pid in _packaged_daemons():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _packaged_daemons() and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in _packaged_daemons():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(targets: Sequence[str], job: str) -> str:
    quoted = ", ".join(json.dumps(target) for target in targets)
    return (
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: {json.dumps(job)}\n"
        "    static_configs:\n"
        f"      - targets: [{quoted}]\n"
    )


class PrometheusServer:
    """A throwaway ``/usr/bin/prometheus`` on 127.0.0.1, scraping ``targets`` every second.

    Use as a context manager: entering starts it and waits for ``/-/ready``; leaving kills it and
    removes its directory (config, TSDB, log).
    """

    def __init__(
        self, targets: Sequence[str], *, job: str = "rbd_snapsched", ready_timeout: float = 60.0
    ) -> None:
        self.targets = list(targets)
        self.job = job
        self.ready_timeout = ready_timeout
        self.port = 0
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PrometheusServer:
        ensure_installed()
        self._dir = Path(tempfile.mkdtemp(prefix=OURS))
        try:
            (self._dir / "prometheus.yml").write_text(_config(self.targets, self.job))
            for _ in range(3):  # free_port() can race another process for the port
                self.port = free_port()
                if self._start():
                    return self
            raise PrometheusError(f"prometheus did not start:\n{self.log_tail()}")
        except BaseException:
            self._cleanup()
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._cleanup()

    def _start(self) -> bool:
        """Start it and wait until ready: True; False if the port was taken meanwhile."""
        assert self._dir is not None
        log = open(self._dir / "prometheus.log", "wb")  # noqa: SIM115 - the child keeps it
        with log:
            self._proc = subprocess.Popen(
                [
                    str(PROMETHEUS),
                    f"--config.file={self._dir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self._dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                    "--log.level=info",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._dir,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                if "address already in use" in self.log_tail():
                    self._proc = None
                    return False
                raise PrometheusError(
                    f"prometheus exited ({self._proc.returncode}):\n{self.log_tail()}"
                )
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer,
            ):
                if answer.status == 200:
                    return True
            time.sleep(0.2)
        raise PrometheusError(f"prometheus not ready in {self.ready_timeout}s:\n{self.log_tail()}")

    def log_tail(self, size: int = 4000) -> str:
        if self._dir is None:
            return ""
        try:
            return (self._dir / "prometheus.log").read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def _cleanup(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait(timeout=30)
            self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query through ``/api/v1/query``: the result vector (metric and value)."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                body = json.loads(answer.read())
        except urllib.error.HTTPError as error:
            raise PrometheusError(f"query {expr!r}: HTTP {error.code}: {error.read()!r}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"query {expr!r}: {body}")
        data = body["data"]
        if data["resultType"] != "vector":
            raise PrometheusError(f"query {expr!r}: a {data['resultType']}, not a vector")
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_for(
        self,
        expr: str,
        predicate: Callable[[list[dict[str, Any]]], bool] = bool,
        timeout: float = 30.0,
    ) -> list[dict[str, Any]]:
        """Query ``expr`` until ``predicate`` holds for its result; that result."""
        last: list[list[dict[str, Any]]] = []

        def holds() -> bool:
            last[:] = [self.query(expr)]
            return predicate(last[0])

        if poll(holds, timeout, interval=0.25) is None:
            targets = self.query_targets()
            raise PrometheusError(
                f"{expr!r} did not come true in {timeout}s; last result {last[0]}; "
                f"targets {targets}"
            )
        return last[0]

    def query_targets(self) -> list[dict[str, Any]]:
        """``/api/v1/targets``' active targets (health, lastError): for failure messages."""
        with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=10) as answer:
            body = json.loads(answer.read())
        active: list[dict[str, Any]] = body["data"]["activeTargets"]
        return active


def main() -> None:
    """``python3 -m tests.prometheus``: install the package (what the tests would do)."""
    ensure_installed(print)
    print(f"{PROMETHEUS} and {PROMTOOL} are installed")


if __name__ == "__main__":
    main()
