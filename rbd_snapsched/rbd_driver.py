"""Runs ``CreateSnapshotRequest``s against librbd: each action one aio call.

Completions arrive on librbd's callback threads, and those are no place for our code: ceph-mgr
runs each module in a subinterpreter, but a librbd thread enters Python through
``PyGILState_Ensure``, which gives it the *main* interpreter, where our objects' per-interpreter
state is foreign (on Python 3.13, Reef on Debian trixie, ``isinstance(x, Mapping)`` there raises
"_abc_impl is set to a wrong type"; the binding swallows the exception and the request hangs
for good). So a callback only queues ``(run, rc, value)``; the driver's own thread, started in
our interpreter, feeds each completion to its request and submits the next action.

One ioctx per (pool, namespace) is shared by the requests in flight there and closed with the
last.
"""

from __future__ import annotations

import errno
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import rados
import rbd

from .cluster import newest_mirror_snapshot, peer_links
from .levels import ImageSpec
from .requests import (
    Action,
    CheckPeer,
    CheckRecent,
    CloseImage,
    CreateSnapshot,
    CreateSnapshotRequest,
    Finish,
    GetMirrorInfo,
    GetMirrorMode,
    OpenImage,
    Outcome,
    RequestStateError,
    State,
)

Done = Callable[[ImageSpec, Outcome], None]
_Completion = tuple["_Run", int, object]


@dataclass
class _Run:
    request: CreateSnapshotRequest
    name: str
    done: Done
    ioctx: rados.Ioctx | None = None
    image: rbd.Image | None = field(default=None, repr=False)


class RbdDriver:
    """``check_peer``: pace to the peers, skipping an image whose peer has not synced its
    previous mirror snapshot (``requests.CheckPeer``); ``set_check_peer`` changes it."""

    def __init__(
        self, client: rados.Rados, log: logging.Logger, *, check_peer: bool = False
    ) -> None:
        self._client = client
        self._log = log
        self._check_peer = check_peer
        self._lock = threading.Lock()
        self._ioctxs: dict[tuple[int, str], tuple[rados.Ioctx, int]] = {}
        self._images = 0  # image handles open now (opened, not yet closed or dropped)
        self._runs: dict[ImageSpec, _Run] = {}  # requests started, not yet finished
        self._completions: queue.SimpleQueue[_Completion | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._pump, name="rbd_snapsched-completions", daemon=True
        )
        self._thread.start()

    def start(
        self, image: ImageSpec, name: str, done: Done, recent_since: datetime | None = None
    ) -> None:
        run = _Run(CreateSnapshotRequest(image, recent_since, self._check_peer), name, done)
        with self._lock:
            self._runs[image] = run
        self._log.debug("%s: creating mirror snapshot", name)
        self._perform(run, run.request.start())

    def set_check_peer(self, check_peer: bool) -> None:
        """Pace to the peers from the next request on."""
        self._check_peer = check_peer

    def in_flight(self, image: ImageSpec) -> State | None:
        """The step ``image``'s request is in; None once it finished (or never started).

        A request outliving the scheduler's bound keeps running here: librbd has no aio
        cancel, so its image and completion stay alive until the callback fires."""
        with self._lock:
            run = self._runs.get(image)
        return None if run is None else run.request.state

    def open_handles(self) -> int:
        """The ioctxs this driver holds open (one per pool/namespace with requests in flight)."""
        with self._lock:
            return len(self._ioctxs)

    def open_images(self) -> int:
        """The image handles this driver holds open: each request's, from its open's
        completion to its close's (or to the request's end if the close could not run)."""
        with self._lock:
            return self._images

    def close(self, timeout: float = 10.0) -> None:
        """Stop the completion thread once the completions queued so far are handled."""
        self._completions.put(None)
        self._thread.join(timeout)

    def _pump(self) -> None:
        while (item := self._completions.get()) is not None:
            run, rc, value = item
            try:
                self._feed(run, rc, value)
            except Exception:  # never lose the thread: every later request needs it
                self._log.exception("%s: handling a completion failed", run.name)

    def _perform(self, run: _Run, action: Action) -> None:
        while True:
            try:
                self._submit(run, action)
                return
            except Exception as e:
                if isinstance(action, Finish):
                    self._log.exception("%s: finishing snapshot request failed", run.name)
                    return
                action = run.request.on_submit_error(str(e))

    def _submit(self, run: _Run, action: Action) -> None:
        image = run.request.image
        put = self._completions.put  # all a callback does, on librbd's thread
        if isinstance(action, OpenImage):
            try:
                run.ioctx = self._get_ioctx(image)
            except rados.ObjectNotFound:
                # The pool is gone, and the image with it: ENOENT, quiet as the table has it
                # (a deleted pool's queued requests would log one error each; the handler
                # tells the pool's end once).
                put((run, -errno.ENOENT, None))
                return
            rbd.RBD().aio_open_image(
                lambda comp, handle: put((run, comp.get_return_value(), handle)),
                run.ioctx,
                image_id=image.image_id,
            )
        elif isinstance(action, GetMirrorMode):
            self._handle(run).aio_mirror_image_get_mode(
                lambda comp, mode: put((run, comp.get_return_value(), mode))
            )
        elif isinstance(action, GetMirrorInfo):
            self._handle(run).aio_mirror_image_get_info(
                lambda comp, info: put((run, comp.get_return_value(), info))
            )
        elif isinstance(action, CheckRecent):
            # Not an aio call: the open image holds its snapshot list in memory already.
            try:
                put((run, 0, newest_mirror_snapshot(self._handle(run))))
            except rbd.Error as e:  # cannot tell: the request creates one (its table, [3])
                self._log.warning("%s: cannot list mirror snapshots: %s", run.name, e)
                put((run, -errno.EIO, None))
        elif isinstance(action, CheckPeer):
            # Not an aio call either: the snapshot list, with its peer links, is in memory.
            try:
                put((run, 0, peer_links(self._handle(run).list_snaps())))
            except rbd.Error as e:  # cannot tell: the request creates one (its table, [3])
                self._log.warning("%s: cannot list mirror snapshots: %s", run.name, e)
                put((run, -errno.EIO, None))
        elif isinstance(action, CreateSnapshot):
            self._handle(run).aio_mirror_image_create_snapshot(
                action.flags, lambda comp, snap_id: put((run, comp.get_return_value(), snap_id))
            )
        elif isinstance(action, CloseImage):
            self._handle(run).aio_close(lambda comp: put((run, comp.get_return_value(), None)))
        else:
            self._finish(run, action.outcome)

    @staticmethod
    def _handle(run: _Run) -> rbd.Image:
        if run.image is None:
            raise RuntimeError("image is not open")
        return run.image

    def _feed(self, run: _Run, rc: int, value: object) -> None:
        """Hand a completion to the request (on the driver's thread) and go on."""
        if run.request.state is State.OPENING:
            if rc >= 0 and isinstance(value, rbd.Image):
                self._hold(run, value)
            value = None
        elif run.request.state is State.CLOSING:
            self._hold(run, None)
        try:
            action = run.request.on_complete(rc, value)
        except RequestStateError:
            # Our bug, not the cluster's: still wind down, so the image is closed and the
            # concurrency slot released.
            self._log.exception("%s: unexpected completion", run.name)
            action = run.request.on_submit_error("unexpected completion")
        self._perform(run, action)

    def _hold(self, run: _Run, image: rbd.Image | None) -> None:
        """Set the run's image handle, keeping the count of open ones."""
        with self._lock:
            self._images += (image is not None) - (run.image is not None)
        run.image = image

    def _finish(self, run: _Run, outcome: Outcome) -> None:
        with self._lock:
            if self._runs.get(run.request.image) is run:
                del self._runs[run.request.image]
        self._hold(run, None)  # closed, or its close could not be submitted: drop the handle
        if run.ioctx is not None:
            self._put_ioctx(run.request.image)
            run.ioctx = None
        level = logging.ERROR if outcome.is_error else logging.DEBUG
        self._log.log(level, "%s: %s (%s)", run.name, outcome.detail, outcome.step.value)
        run.done(run.request.image, outcome)

    def _get_ioctx(self, image: ImageSpec) -> rados.Ioctx:
        key = (image.pool_id, image.namespace)
        with self._lock:
            entry = self._ioctxs.get(key)
            if entry is None:
                ioctx = self._client.open_ioctx2(image.pool_id)
                ioctx.set_namespace(image.namespace)
                entry = (ioctx, 0)
            self._ioctxs[key] = (entry[0], entry[1] + 1)
            return entry[0]

    def _put_ioctx(self, image: ImageSpec) -> None:
        key = (image.pool_id, image.namespace)
        with self._lock:
            ioctx, refs = self._ioctxs[key]
            if refs > 1:
                self._ioctxs[key] = (ioctx, refs - 1)
                return
            del self._ioctxs[key]
        ioctx.close()
