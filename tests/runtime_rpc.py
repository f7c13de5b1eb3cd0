"""Objects that live in a cluster's release runtime (host or chroot), called from the tests.

A cluster test that needs librados (a contract check of ``RadosOmap``, a raw mgr command) must
use the release's own bindings: the host's Pacific librados cannot even connect to a Tentacle
cluster (measured: "error connecting to the cluster"), and the module on that release runs the
release's bindings anyway. ``Remote`` starts the release's ``/usr/bin/python3`` in the runtime
with our package on its path, builds the object there, and forwards each call as one JSON line:
bytes, tuples and exceptions survive the trip (an exception from ``rados``, ``rbd`` or our
package is raised here as the same-named class).
"""

from __future__ import annotations

import base64
import importlib
import json
import subprocess
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from rbd_snapsched.levels import ImageInfo, ImageSpec, LevelSpec, PoolInfo
from rbd_snapsched.requests import Outcome, OutcomeKind, State
from tests.cephcluster import Cluster
from tests.contract.cluster_io import NamespaceFilter

SERVER = r"""
import base64, datetime, importlib, json, logging, sys, threading, time
import rados

def levels():
    return importlib.import_module("rbd_snapsched.levels")

def enc(v):
    if isinstance(v, bytes):
        return {"b": base64.b64encode(v).decode()}
    if isinstance(v, tuple) and type(v).__module__ == "rbd_snapsched.levels":
        return {"nt": [type(v).__name__, [enc(x) for x in v]]}
    if isinstance(v, datetime.datetime):
        return {"dt": v.isoformat()}
    if isinstance(v, tuple):
        return {"t": [enc(x) for x in v]}
    if isinstance(v, (list, set, frozenset)):
        return {"l": [enc(x) for x in v]}
    if isinstance(v, dict):
        return {"d": [[enc(k), enc(x)] for k, x in v.items()]}
    return v

def dec(v):
    if isinstance(v, dict):
        if "b" in v:
            return base64.b64decode(v["b"])
        if "nt" in v:
            name, fields = v["nt"]
            return getattr(levels(), name)(*[dec(x) for x in fields])
        if "dt" in v:
            return datetime.datetime.fromisoformat(v["dt"])
        if "w" in v:  # a `wanted` predicate: the namespaces it accepts (None: all)
            accepted = None if v["w"] is None else set(v["w"])
            return lambda level: accepted is None or level.namespace in accepted
        if "t" in v:
            return tuple(dec(x) for x in v["t"])
        if "l" in v:
            return [dec(x) for x in v["l"]]
        return {dec(k): dec(x) for k, x in v["d"]}
    return v

class DriverRunner:
    # Runs RbdDriver requests one at a time: start, wait for `done` (on the driver's thread),
    # and report the outcome with how often `done` was called.
    def __init__(self, client):
        from rbd_snapsched.rbd_driver import RbdDriver
        self.driver = RbdDriver(client, logging.getLogger("contract"))

    def run(self, image, since, timeout, check_peer=False):
        self.driver.set_check_peer(check_peer)
        calls = []
        called = threading.Event()
        def done(image, outcome):
            calls.append((image, outcome))
            called.set()
        self.driver.start(image, "contract %s" % (image,), done, since)
        if not called.wait(timeout):
            return None
        time.sleep(0.05)  # a second call would come right after the first
        o = calls[0][1]
        return [len(calls), calls[0][0], o.kind.name, o.step.name, o.rc, o.snap_id, o.detail,
                o.close_rc, self.driver.open_handles(), self.driver.open_images(),
                getattr(self.driver.in_flight(image), "name", None)]

conf, factory, args = sys.argv[1], sys.argv[2], dec(json.loads(sys.argv[3]))
# No admin socket: the conf gives client.admin one path, and a long-lived client holding it
# would make every CLI call meanwhile print "failed to bind the UNIX domain socket".
client = rados.Rados(conffile=conf, conf={"admin_socket": ""})
client.connect()
if factory == "client":
    target = client
elif factory == "driver":
    target = DriverRunner(client)
else:
    module, _, name = factory.partition(":")
    target = getattr(importlib.import_module(module), name)(client, *args)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    request = json.loads(line)
    try:
        reply = {"result": enc(getattr(target, request["method"])(*dec(request["args"])))}
    except Exception as e:
        reply = {"error": [type(e).__module__, type(e).__qualname__, str(e)]}
    print(json.dumps(reply), flush=True)
client.shutdown()
"""


_NAMED = {t.__name__: t for t in (ImageInfo, ImageSpec, PoolInfo)}


@dataclass(frozen=True)
class Wanted:
    """A ``wanted`` predicate sent across: it accepts the namespaces in ``accepted`` (None:
    all). The remote side asks its copy; the caller cannot see what it was asked."""

    accepted: frozenset[str] | None


def _enc(v: Any) -> Any:
    if isinstance(v, bytes):
        return {"b": base64.b64encode(v).decode()}
    if isinstance(v, (ImageInfo, ImageSpec, PoolInfo)):
        return {"nt": [type(v).__name__, [_enc(x) for x in v]]}
    if isinstance(v, datetime):
        return {"dt": v.isoformat()}
    if isinstance(v, Wanted):
        return {"w": None if v.accepted is None else sorted(v.accepted)}
    if isinstance(v, tuple):
        return {"t": [_enc(x) for x in v]}
    if isinstance(v, list):
        return {"l": [_enc(x) for x in v]}
    if isinstance(v, dict):
        return {"d": [[_enc(k), _enc(x)] for k, x in v.items()]}
    return v


def _dec(v: Any) -> Any:
    if isinstance(v, dict):
        if "b" in v:
            return base64.b64decode(v["b"])
        if "nt" in v:
            name, fields = v["nt"]
            return _NAMED[name](*[_dec(x) for x in fields])
        if "dt" in v:
            return datetime.fromisoformat(v["dt"])
        if "t" in v:
            return tuple(_dec(x) for x in v["t"])
        if "l" in v:
            return [_dec(x) for x in v["l"]]
        return {_dec(k): _dec(x) for k, x in v["d"]}
    return v


class RemoteError(RuntimeError):
    """An exception of a class that has no counterpart in the test process."""


def _exception(module: str, name: str, message: str) -> Exception:
    if module in ("rados", "rbd") or module.startswith("rbd_snapsched"):
        cls = getattr(importlib.import_module(module), name, None)
        if isinstance(cls, type) and issubclass(cls, Exception):
            try:
                return cls(message)
            except TypeError:
                pass
    return RemoteError(f"{module}.{name}: {message}")


class Remote:
    """One object built in ``cluster``'s runtime: ``"client"`` (its ``rados.Rados``),
    ``"driver"`` (an ``RbdDriver`` run one request at a time, see ``RemoteDriver``) or
    ``"module:Factory"`` called as ``Factory(client, *args)``."""

    def __init__(self, cluster: Cluster, factory: str = "client", args: Sequence[Any] = ()) -> None:
        self._proc = subprocess.Popen(
            cluster.argv(
                "/usr/bin/python3",
                "-c",
                SERVER,
                str(cluster.conf),
                factory,
                json.dumps(_enc(list(args))),
                env={"PYTHONPATH": str(cluster.module_src)},
            ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = self._stdout.readline()
        if not first:
            self._proc.wait(10)
            err = self._proc.stderr.read() if self._proc.stderr else ""
            raise RemoteError(f"{factory} did not start in {cluster.runtime!r}: {err}")

    @property
    def _stdout(self) -> IO[str]:
        assert self._proc.stdout is not None
        return self._proc.stdout

    def call(self, method: str, *args: Any) -> Any:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"method": method, "args": _enc(list(args))}) + "\n")
        self._proc.stdin.flush()
        line = self._stdout.readline()
        if not line:
            raise RemoteError(f"the remote process ended during {method}")
        reply = json.loads(line)
        if "error" in reply:
            raise _exception(*reply["error"])
        return _dec(reply["result"])

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RemoteOmap:
    """``store.OmapBackend`` over a ``RadosOmap`` living in the release's runtime."""

    def __init__(self, remote: Remote) -> None:
        self._remote = remote

    def read(self, pool_id: int) -> dict[str, bytes]:
        result: dict[str, bytes] = self._remote.call("read", pool_id)
        return result

    def write(self, pool_id: int, key: str, value: bytes) -> None:
        self._remote.call("write", pool_id, key, value)

    def delete(self, pool_id: int, keys: Sequence[str]) -> None:
        self._remote.call("delete", pool_id, list(keys))


class RemoteResolver:
    """``levels.Resolver`` over a ``RadosResolver`` living in the release's runtime."""

    def __init__(self, remote: Remote) -> None:
        self._remote = remote

    def pool_by_name(self, name: str) -> PoolInfo | None:
        result: PoolInfo | None = self._remote.call("pool_by_name", name)
        return result

    def pool_by_id(self, pool_id: int) -> PoolInfo | None:
        result: PoolInfo | None = self._remote.call("pool_by_id", pool_id)
        return result

    def namespaces(self, pool_id: int) -> Collection[str]:
        return set(self._remote.call("namespaces", pool_id))

    def namespace_in_image_mode(self, pool_id: int, namespace: str) -> bool:
        return bool(self._remote.call("namespace_in_image_mode", pool_id, namespace))

    def image_by_name(self, pool_id: int, namespace: str, name: str) -> ImageInfo | None:
        result: ImageInfo | None = self._remote.call("image_by_name", pool_id, namespace, name)
        return result

    def image_by_id(self, pool_id: int, namespace: str, image_id: str) -> ImageInfo | None:
        result: ImageInfo | None = self._remote.call("image_by_id", pool_id, namespace, image_id)
        return result


class RemoteClusterIO:
    """``ports.ClusterIO`` over a ``RadosClusterIO`` living in the release's runtime.

    ``discover`` takes only a ``NamespaceFilter`` for ``wanted``: a predicate cannot cross,
    the namespaces it accepts can."""

    def __init__(self, remote: Remote) -> None:
        self._remote = remote

    def rbd_pools(self) -> list[PoolInfo]:
        return list(self._remote.call("rbd_pools"))

    def discover(
        self, pool: PoolInfo, wanted: Callable[[LevelSpec], bool]
    ) -> dict[ImageSpec, str] | None:
        if not isinstance(wanted, NamespaceFilter):
            raise TypeError(f"cannot send {wanted!r} to the remote side")
        result: dict[ImageSpec, str] | None = self._remote.call(
            "discover", pool, Wanted(wanted.accepted)
        )
        return result

    def has_tx_peer(self, pool_id: int) -> bool:
        return bool(self._remote.call("has_tx_peer", pool_id))

    def newest_mirror_snapshot(self, image: ImageSpec) -> datetime | None:
        result: datetime | None = self._remote.call("newest_mirror_snapshot", image)
        return result


@dataclass(frozen=True)
class DriverRun:
    """One ``RbdDriver`` request as seen in the release's runtime."""

    done_calls: int  # how often `done` was called (within a moment of the first call)
    image: ImageSpec  # the image `done` was called with
    outcome: Outcome
    open_handles: int  # the driver's ioctxs still open after `done`
    open_images: int  # the driver's image handles still open after `done`
    in_flight: State | None  # the driver's `in_flight(image)` after `done`


class RemoteDriver:
    """An ``RbdDriver`` living in the release's runtime (``Remote(cluster, "driver")``).

    A ``done`` callback cannot cross, so ``run`` starts one request there, waits for its
    ``done`` and returns what it got."""

    def __init__(self, remote: Remote) -> None:
        self._remote = remote

    def run(
        self,
        image: ImageSpec,
        recent_since: datetime | None = None,
        timeout: float = 30.0,
        *,
        check_peer: bool = False,
    ) -> DriverRun:
        got = self._remote.call("run", image, recent_since, timeout, check_peer)
        if got is None:
            raise AssertionError(f"done not called within {timeout}s for {image}")
        calls, seen, kind, step, rc, snap_id, detail, close_rc, handles, images, now = got
        outcome = Outcome(OutcomeKind[kind], State[step], rc, snap_id, detail, close_rc)
        return DriverRun(calls, seen, outcome, handles, images, None if now is None else State[now])
