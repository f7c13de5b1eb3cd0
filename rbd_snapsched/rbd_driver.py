"""Runs ``CreateSnapshotRequest``s against librbd: each action one aio call.

Completions arrive on librbd's callback threads and are fed straight back to the request. One
ioctx per (pool, namespace) is shared by the requests in flight there and closed with the last.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import rados
import rbd

from .levels import ImageSpec
from .requests import (
    Action,
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


@dataclass
class _Run:
    request: CreateSnapshotRequest
    name: str
    done: Done
    ioctx: rados.Ioctx | None = None
    image: rbd.Image | None = field(default=None, repr=False)


class RbdDriver:
    def __init__(self, client: rados.Rados, log: logging.Logger) -> None:
        self._client = client
        self._log = log
        self._lock = threading.Lock()
        self._ioctxs: dict[tuple[int, str], tuple[rados.Ioctx, int]] = {}

    def start(self, image: ImageSpec, name: str, done: Done) -> None:
        run = _Run(CreateSnapshotRequest(image), name, done)
        self._log.debug("%s: creating mirror snapshot", name)
        self._perform(run, run.request.start())

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
        if isinstance(action, OpenImage):
            run.ioctx = self._get_ioctx(image)
            rbd.RBD().aio_open_image(
                lambda comp, handle: self._opened(run, comp, handle),
                run.ioctx,
                image_id=image.image_id,
            )
        elif isinstance(action, GetMirrorMode):
            self._handle(run).aio_mirror_image_get_mode(
                lambda comp, mode: self._completed(run, comp, mode)
            )
        elif isinstance(action, GetMirrorInfo):
            self._handle(run).aio_mirror_image_get_info(
                lambda comp, info: self._completed(run, comp, info)
            )
        elif isinstance(action, CreateSnapshot):
            self._handle(run).aio_mirror_image_create_snapshot(
                action.flags, lambda comp, snap_id: self._completed(run, comp, snap_id)
            )
        elif isinstance(action, CloseImage):
            self._handle(run).aio_close(lambda comp: self._completed(run, comp, None))
        else:
            self._finish(run, action.outcome)

    @staticmethod
    def _handle(run: _Run) -> rbd.Image:
        if run.image is None:
            raise RuntimeError("image is not open")
        return run.image

    def _opened(self, run: _Run, comp: rbd.Completion, handle: rbd.Image) -> None:
        rc = comp.get_return_value()
        if rc >= 0:
            run.image = handle
        self._feed(run, rc, None)

    def _completed(self, run: _Run, comp: rbd.Completion, value: object) -> None:
        rc = comp.get_return_value()
        if run.request.state is State.CLOSING:
            run.image = None
        self._feed(run, rc, value)

    def _feed(self, run: _Run, rc: int, value: object) -> None:
        """Hand a completion to the request (on librbd's callback thread) and go on."""
        try:
            action = run.request.on_complete(rc, value)
        except RequestStateError:
            # Our bug, not the cluster's: still wind down, so the image is closed and the
            # concurrency slot released.
            self._log.exception("%s: unexpected completion", run.name)
            action = run.request.on_submit_error("unexpected completion")
        self._perform(run, action)

    def _finish(self, run: _Run, outcome: Outcome) -> None:
        run.image = None  # closed, or its close could not be submitted: drop the handle
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
