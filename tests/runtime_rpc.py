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
from collections.abc import Sequence
from typing import IO, Any

from tests.cephcluster import Cluster

SERVER = r"""
import base64, importlib, json, sys
import rados

def enc(v):
    if isinstance(v, bytes):
        return {"b": base64.b64encode(v).decode()}
    if isinstance(v, (list, tuple)):
        return {"l": [enc(x) for x in v]}
    if isinstance(v, dict):
        return {"d": [[enc(k), enc(x)] for k, x in v.items()]}
    return v

def dec(v):
    if isinstance(v, dict):
        if "b" in v:
            return base64.b64decode(v["b"])
        if "l" in v:
            return [dec(x) for x in v["l"]]
        return {dec(k): dec(x) for k, x in v["d"]}
    return v

conf, factory, args = sys.argv[1], sys.argv[2], dec(json.loads(sys.argv[3]))
client = rados.Rados(conffile=conf)
client.connect()
if factory == "client":
    target = client
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


def _enc(v: Any) -> Any:
    if isinstance(v, bytes):
        return {"b": base64.b64encode(v).decode()}
    if isinstance(v, list | tuple):
        return {"l": [_enc(x) for x in v]}
    if isinstance(v, dict):
        return {"d": [[_enc(k), _enc(x)] for k, x in v.items()]}
    return v


def _dec(v: Any) -> Any:
    if isinstance(v, dict):
        if "b" in v:
            return base64.b64decode(v["b"])
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
    """One object built in ``cluster``'s runtime: ``"client"`` (its ``rados.Rados``) or
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
