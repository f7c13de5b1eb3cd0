"""One image's mirror-snapshot request, as a state machine with no I/O (h11-style).

The driver (``rbd_driver.py``) calls :meth:`CreateSnapshotRequest.start`, performs the action it
gets as one librbd ``aio_*`` call, feeds the call's completion back through
:meth:`~CreateSnapshotRequest.on_complete` (or :meth:`~CreateSnapshotRequest.on_submit_error` if
the call could not even be submitted) and repeats until it gets :class:`Finish`, whose
:class:`Outcome` it logs and reports.
"""

from __future__ import annotations

import enum
import errno
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Optional, Union

from rbd_snapsched.levels import ImageSpec

# Theory of operation
# -------------------
#
# Pacific/Reef order: OPENING -> GETTING_MODE -> GETTING_INFO -> CREATING -> CLOSING -> DONE,
# with CHECKING_RECENT (a catch-up) and then CHECKING_PEER (pacing on) before CREATING.
# Each state but DONE stands for one librbd call in flight and expects exactly one completion.
# A completion is judged by the table below (first matching row wins); the verdict either moves
# on to the next step, or *ends* the request with an Outcome. Ending means "close" (enter CLOSING
# and ask for CloseImage, keeping the outcome) once the image is open, and "finish" (enter DONE
# and return Finish) before that.
#
#   state         completion (rc, value)            outcome                then
#   ------------  --------------------------------  ---------------------  ---------------------
#   OPENING       rc == -ENOENT                     VANISHED (quiet)       finish
#   OPENING       rc < 0                            FAILED                 finish
#   OPENING       rc >= 0                           -                      GetMirrorMode
#   GETTING_MODE  rc == -ENOENT                     VANISHED (quiet)       close
#   GETTING_MODE  rc == -EINVAL [4]                 SKIPPED_DISABLED       close
#   GETTING_MODE  mode is None or rc < 0            FAILED                 close
#   GETTING_MODE  mode != SNAPSHOT                  SKIPPED_NOT_SNAPSHOT   close
#   GETTING_MODE  mode == SNAPSHOT                  -                      GetMirrorInfo
#   GETTING_INFO  rc == -ENOENT                     VANISHED (quiet)       close
#   GETTING_INFO  info is None or rc < 0            FAILED                 close
#   GETTING_INFO  info['state'] != ENABLED          SKIPPED_DISABLED       close
#   GETTING_INFO  not info['primary']               SKIPPED_NOT_PRIMARY    close
#   GETTING_INFO  enabled and primary, catch-up     -                      CheckRecent(since)
#   GETTING_INFO  enabled and primary, pacing       -                      CheckPeer
#   GETTING_INFO  enabled and primary               -                      CreateSnapshot(0)
#   CHECKING_RECENT  newest mirror snap >= since    SKIPPED_RECENT         close
#   CHECKING_RECENT  older, none, or rc < 0 [3]     -                      CheckPeer if pacing,
#                                                                          else CreateSnapshot(0)
#   CHECKING_PEER a peer linked to >= 2 snaps [5]   SKIPPED_PEER_LAGGING   close
#   CHECKING_PEER caught up, no peer, or rc < 0 [3] -                      CreateSnapshot(0)
#   CREATING      rc == -ENOENT                     VANISHED (quiet)       close
#   CREATING      snap id is None or rc < 0         FAILED                 close
#   CREATING      snap id                           CREATED                close
#   CLOSING       rc < 0                            kept, close_rc = rc    finish
#   CLOSING       rc >= 0                           kept                   finish
#   any but DONE  on_submit_error(text)             FAILED, rc=-EIO [1]    close if open, else
#                                                                          finish
#   DONE, or a completion of the wrong shape        RequestStateError (our bug) [2]
#
# [1] A submit error in CLOSING keeps the outcome, like a failed close, with close_rc = -EIO.
# [2] Raising leaves the state untouched, so the driver can still wind the request down with
#     on_submit_error(): the "always closed" rule survives our own bugs.
# [3] A catch-up request (``recent_since`` set: the module just started, or the image just
#     became primary) only creates a snapshot if none is newer than ``since``; if the snapshots
#     cannot be listed it creates one: one snapshot too many beats an unprotected interval.
# [4] Tentacle answers EINVAL for an image whose mirroring is disabled (Pacific and Reef give
#     its mode, and GETTING_INFO finds it disabled): mirroring disabled since discovery is a
#     skip, not an error, on every release.
# [5] A primary mirror snapshot stays linked to each peer (its uuid in the snapshot's
#     mirror_peer_uuids) until that peer's rbd-mirror has synced a newer one; it then unlinks
#     the older. So a peer linked to one snapshot is caught up, and linked to two or more it
#     has not synced the previous one yet: another would only make librbd unlink unsynced ones
#     at rbd_mirroring_max_mirroring_snapshots (seen on Pacific with rbd-mirror stopped: the
#     synced base and each newer snapshot stay linked; after a restart only the newest).
#
# Invariants:
#   - An image whose open succeeded is closed exactly once: every path out of GETTING_MODE,
#     GETTING_INFO and CREATING goes through CLOSING (`opened` is True exactly there).
#   - Finish is returned exactly once, as the last action; then the state is DONE and `outcome`
#     is set.
#   - The outcome is decided by the first step that ends the request and never replaced: a close
#     failure after it is recorded beside it (close_rc, detail) because the snapshot (or the
#     skip) it reports did happen. Outcome.is_error tells the driver to log at error level.

MIRROR_IMAGE_MODE_SNAPSHOT = 1  # == rbd.RBD_MIRROR_IMAGE_MODE_SNAPSHOT
MIRROR_IMAGE_ENABLED = 1  # == rbd.RBD_MIRROR_IMAGE_ENABLED
SUBMIT_ERROR_RC = -errno.EIO  # the rc recorded when an aio call could not be submitted


class State(enum.Enum):
    """Where a request is: the librbd call in flight, or DONE."""

    OPENING = "opening image"
    GETTING_MODE = "getting mirror mode"
    GETTING_INFO = "getting mirror info"
    CHECKING_RECENT = "checking for a recent mirror snapshot"
    CHECKING_PEER = "checking the peers' sync"
    CREATING = "creating mirror snapshot"
    CLOSING = "closing image"
    DONE = "done"


class OutcomeKind(enum.Enum):
    """How a request ended."""

    CREATED = "created"
    SKIPPED_NOT_SNAPSHOT = "skipped: not in snapshot mirror mode"
    SKIPPED_DISABLED = "skipped: mirroring disabled"
    SKIPPED_NOT_PRIMARY = "skipped: not primary"
    SKIPPED_RECENT = "skipped: a recent mirror snapshot exists"
    SKIPPED_PEER_LAGGING = "skipped: a peer has not synced the previous mirror snapshot"
    VANISHED = "image vanished"
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    """The result of one request.

    ``step`` is the state whose completion decided it (CREATING for CREATED); ``rc`` that
    completion's return code; ``close_rc`` the close's return code when closing failed (else 0).
    """

    kind: OutcomeKind
    step: State
    rc: int
    snap_id: int | None
    detail: str
    close_rc: int = 0

    @property
    def is_error(self) -> bool:
        """True if the driver should log this at error level (else debug)."""
        return self.kind is OutcomeKind.FAILED or self.close_rc < 0


@dataclass(frozen=True)
class OpenImage:
    """Open the image by id (``aio_open_image``); the driver keeps the handle."""

    image: ImageSpec


@dataclass(frozen=True)
class GetMirrorMode:
    """``image.aio_mirror_image_get_mode``: complete with the mode or None."""


@dataclass(frozen=True)
class GetMirrorInfo:
    """``image.aio_mirror_image_get_info``: complete with the info dict or None."""


@dataclass(frozen=True)
class CheckRecent:
    """Find the open image's newest mirror snapshot time: complete with rc 0 and an aware UTC
    datetime (None: no mirror snapshot), or rc < 0 if the snapshots cannot be listed."""

    since: datetime


@dataclass(frozen=True)
class CheckPeer:
    """Count, per mirror peer, the open image's primary mirror snapshots still linked to it:
    complete with rc 0 and a ``Mapping[str, int]`` (peer uuid -> snapshots), or rc < 0 if the
    snapshots cannot be listed."""


@dataclass(frozen=True)
class CreateSnapshot:
    """``image.aio_mirror_image_create_snapshot(flags)``: complete with the snap id."""

    flags: int = 0


@dataclass(frozen=True)
class CloseImage:
    """``image.aio_close``: complete with no value."""


@dataclass(frozen=True)
class Finish:
    """The request is over: release its throttle slot, log and record ``outcome``."""

    outcome: Outcome


Action = Union[
    OpenImage,
    GetMirrorMode,
    GetMirrorInfo,
    CheckRecent,
    CheckPeer,
    CreateSnapshot,
    CloseImage,
    Finish,
]


class RequestStateError(RuntimeError):
    """The driver broke the protocol (our bug, not the cluster's)."""


def _describe_rc(rc: int) -> str:
    return f"rc={rc} ({os.strerror(-rc)})" if rc < 0 else f"rc={rc}"


def _ended(kind: OutcomeKind, step: State, rc: int, detail: str) -> Outcome:
    return Outcome(kind, step, rc, None, detail)


def _failed(step: State, rc: int) -> Outcome:
    if rc == -errno.ENOENT:
        return _ended(OutcomeKind.VANISHED, step, rc, f"image not found when {step.value}")
    return _ended(OutcomeKind.FAILED, step, rc, f"error when {step.value}: {_describe_rc(rc)}")


def _wrong_shape(step: State, value: object) -> RequestStateError:
    return RequestStateError(f"impossible completion value when {step.value}: {value!r}")


def _as_int(step: State, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_shape(step, value)
    return value


# The table's rows, one judge per step: None means go on, an Outcome ends the request.
_Judge = Callable[[int, object], Optional[Outcome]]


def _judge_open(rc: int, value: object) -> Outcome | None:
    if value is not None:
        raise _wrong_shape(State.OPENING, value)
    return _failed(State.OPENING, rc) if rc < 0 else None


def _judge_mode(rc: int, value: object) -> Outcome | None:
    step = State.GETTING_MODE
    if rc == -errno.EINVAL:  # Tentacle's answer for an image whose mirroring is disabled
        detail = f"mirroring is not enabled ({_describe_rc(rc)})"
        return _ended(OutcomeKind.SKIPPED_DISABLED, step, rc, detail)
    if value is None:
        return _failed(step, rc)
    mode = _as_int(step, value)
    if rc < 0:
        return _failed(step, rc)
    if mode != MIRROR_IMAGE_MODE_SNAPSHOT:
        detail = f"snapshot mirroring is not enabled (mode {mode})"
        return _ended(OutcomeKind.SKIPPED_NOT_SNAPSHOT, step, rc, detail)
    return None


def _judge_info(rc: int, value: object) -> Outcome | None:
    step = State.GETTING_INFO
    if value is None:
        return _failed(step, rc)
    if not isinstance(value, Mapping) or not isinstance(value.get("primary"), bool):
        raise _wrong_shape(step, value)
    state = _as_int(step, value.get("state"))
    if rc < 0:
        return _failed(step, rc)
    if state != MIRROR_IMAGE_ENABLED:
        detail = f"mirroring is not enabled (state {state})"
        return _ended(OutcomeKind.SKIPPED_DISABLED, step, rc, detail)
    if not value["primary"]:
        return _ended(OutcomeKind.SKIPPED_NOT_PRIMARY, step, rc, "image is not primary")
    return None


def _judge_recent(since: datetime) -> _Judge:
    def judge(rc: int, value: object) -> Outcome | None:
        step = State.CHECKING_RECENT
        if value is not None and not isinstance(value, datetime):
            raise _wrong_shape(step, value)
        if rc >= 0 and value is not None and value >= since:
            detail = f"mirror snapshot of {value:%Y-%m-%d %H:%M:%S} UTC is recent enough"
            return _ended(OutcomeKind.SKIPPED_RECENT, step, rc, detail)
        return None

    return judge


def _judge_peer(rc: int, value: object) -> Outcome | None:
    step = State.CHECKING_PEER
    if rc < 0:
        return None  # cannot tell: create one ([3])
    if not isinstance(value, Mapping):
        raise _wrong_shape(step, value)
    linked = {str(peer): _as_int(step, count) for peer, count in value.items()}
    behind = {peer: count - 1 for peer, count in linked.items() if count > 1}
    if not behind:
        return None
    detail = ", ".join(
        f"peer {peer} has {unsynced} mirror snapshot(s) not synced yet"
        for peer, unsynced in sorted(behind.items())
    )
    return _ended(OutcomeKind.SKIPPED_PEER_LAGGING, step, rc, detail)


def _judge_create(rc: int, value: object) -> Outcome | None:
    step = State.CREATING
    if value is None:
        return _failed(step, rc)
    snap_id = _as_int(step, value)
    if rc < 0:
        return _failed(step, rc)
    return Outcome(OutcomeKind.CREATED, step, rc, snap_id, f"created mirror snapshot {snap_id}")


_JUDGES: dict[State, _Judge] = {
    State.OPENING: _judge_open,
    State.GETTING_MODE: _judge_mode,
    State.GETTING_INFO: _judge_info,
    State.CHECKING_PEER: _judge_peer,
    State.CREATING: _judge_create,  # never says "go on": CREATED, too, ends the request
}

# state -> (next state, its action), when the state's judge says go on
_NEXT: dict[State, tuple[State, Action]] = {
    State.OPENING: (State.GETTING_MODE, GetMirrorMode()),
    State.GETTING_MODE: (State.GETTING_INFO, GetMirrorInfo()),
    State.GETTING_INFO: (State.CREATING, CreateSnapshot(flags=0)),
    State.CHECKING_RECENT: (State.CREATING, CreateSnapshot(flags=0)),
    State.CHECKING_PEER: (State.CREATING, CreateSnapshot(flags=0)),
}


class CreateSnapshotRequest:
    """Create one mirror snapshot of one image: open, check mode and info, create, close.

    With ``recent_since`` (a catch-up), only if it has no mirror snapshot that recent; with
    ``check_peer`` (pacing), only if every peer has synced the previous one.
    """

    __slots__ = (
        "_check_peer",
        "_image",
        "_opened",
        "_outcome",
        "_recent_since",
        "_started",
        "_state",
    )

    def __init__(
        self, image: ImageSpec, recent_since: datetime | None = None, check_peer: bool = False
    ) -> None:
        self._image = image
        self._recent_since = recent_since
        self._check_peer = check_peer
        self._state = State.OPENING
        self._started = False
        self._opened = False
        self._outcome: Outcome | None = None

    def __repr__(self) -> str:
        return f"<CreateSnapshotRequest {self._image} {self._state.name}>"

    @property
    def image(self) -> ImageSpec:
        return self._image

    @property
    def state(self) -> State:
        return self._state

    @property
    def opened(self) -> bool:
        """True while the driver holds an open image handle that must be closed."""
        return self._opened

    @property
    def outcome(self) -> Outcome | None:
        """The outcome once decided (it may be decided before DONE: the close still runs)."""
        return self._outcome

    def start(self) -> OpenImage:
        """The first action. Call once."""
        if self._started:
            raise RequestStateError(f"{self!r} already started")
        self._started = True
        return OpenImage(self._image)

    def on_complete(self, rc: int, value: object | None = None) -> Action:
        """Feed the completion of the action in flight; return the next action."""
        self._check_in_flight()
        if self._state is State.CLOSING:
            if value is not None:
                raise _wrong_shape(State.CLOSING, value)
            if rc < 0:
                self._note_close_error(rc, f"error when closing image: {_describe_rc(rc)}")
            return self._finish()
        if self._state is State.CHECKING_RECENT:
            assert self._recent_since is not None
            verdict = _judge_recent(self._recent_since)(rc, value)
        else:
            verdict = _JUDGES[self._state](rc, value)
        if verdict is not None:
            return self._end(verdict)
        if self._state is State.OPENING:
            self._opened = True
        if self._state is State.GETTING_INFO and self._recent_since is not None:
            self._state = State.CHECKING_RECENT
            return CheckRecent(self._recent_since)
        if self._check_peer and self._state in (State.GETTING_INFO, State.CHECKING_RECENT):
            self._state = State.CHECKING_PEER
            return CheckPeer()
        self._state, action = _NEXT[self._state]
        return action

    def on_submit_error(self, exc_text: str) -> Action:
        """The action in flight could not be submitted: fail the step, close if open."""
        self._check_in_flight()
        step = self._state
        if step is State.CLOSING:
            self._note_close_error(SUBMIT_ERROR_RC, f"exception when closing image: {exc_text}")
            return self._finish()
        detail = f"exception when {step.value}: {exc_text}"
        return self._end(_ended(OutcomeKind.FAILED, step, SUBMIT_ERROR_RC, detail))

    def _check_in_flight(self) -> None:
        if not self._started:
            raise RequestStateError(f"{self!r} not started")
        if self._state is State.DONE:
            raise RequestStateError(f"{self!r} already finished")

    def _end(self, outcome: Outcome) -> Action:
        self._outcome = outcome
        if self._opened:
            self._state = State.CLOSING
            return CloseImage()
        return self._finish()

    def _note_close_error(self, rc: int, what: str) -> None:
        assert self._outcome is not None
        self._outcome = replace(
            self._outcome, close_rc=rc, detail=f"{self._outcome.detail}; {what}"
        )

    def _finish(self) -> Finish:
        assert self._outcome is not None
        self._state = State.DONE
        self._opened = False
        return Finish(self._outcome)
