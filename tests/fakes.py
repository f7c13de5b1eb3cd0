"""Typed fakes for the unit tests (no rados, rbd or mgr needed)."""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from rbd_snapsched.levels import ImageSpec
from rbd_snapsched.requests import (
    MIRROR_IMAGE_ENABLED,
    MIRROR_IMAGE_MODE_SNAPSHOT,
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
    State,
)

# --- snapshot requests: a scripted librbd, answering CreateSnapshotRequest's actions ----------


class SubmitFailed(Exception):
    """What a scripted step raises instead of accepting the aio call."""


Completion = tuple[int, object]
JUST_ENABLED = datetime(9999, 1, 1, tzinfo=timezone.utc)  # "a moment ago", for any fake clock
PEER_UUID = "f1e2d3c4-peer"  # the one tx peer of a fake pool
MAX_MIRRORING_SNAPSHOTS = 5  # rbd_mirroring_max_mirroring_snapshots's default


@dataclass
class FakeImage:
    """One image's scripted answers to each step, the way the rbd binding reports them.

    A step's value is only given when its rc is >= 0 (the binding passes None on error).
    ``submit_errors`` maps an action type to the exception text its submission raises.
    ``on_step`` runs before each answer (e.g. to delete or demote the image mid-request).
    """

    open_rc: int = 0
    mode: int = MIRROR_IMAGE_MODE_SNAPSHOT
    mode_rc: int = 0
    state: int = MIRROR_IMAGE_ENABLED
    primary: bool = True
    info_rc: int = 0
    create_rc: int = 0
    close_rc: int = 0
    # Enabling snapshot mirroring takes a mirror snapshot: by default the image has a recent one
    # (later than any catch-up cut-off). Set an old time, or None, to make it due a catch-up.
    newest_mirror_snapshot: datetime | None = field(default_factory=lambda: JUST_ENABLED)
    recent_rc: int = 0
    # Per peer uuid, the primary mirror snapshots still linked to it: enabling links one. A
    # created snapshot links every peer, up to MAX_MIRRORING_SNAPSHOTS (librbd unlinks past
    # it); ``sync()`` plays the peer's rbd-mirror catching up.
    peer_links: dict[str, int] = field(default_factory=lambda: {PEER_UUID: 1})
    peer_rc: int = 0
    submit_errors: dict[type[Action], str] = field(default_factory=dict)
    on_step: Callable[[FakeImage, Action], None] | None = None
    # observed
    is_open: bool = False
    opens: int = 0
    closes: int = 0
    snap_ids: list[int] = field(default_factory=list)
    steps: list[type[Action]] = field(default_factory=list)

    def sync(self) -> None:
        """Every peer synced the newest mirror snapshot: it alone stays linked."""
        self.peer_links = dict.fromkeys(self.peer_links, 1)

    def answer(self, action: Action, next_snap_id: int) -> Completion:
        """Submit ``action``: raise SubmitFailed, or return its completion (rc, value)."""
        if self.on_step is not None:
            self.on_step(self, action)
        kind = type(action)
        if kind in self.submit_errors:
            raise SubmitFailed(self.submit_errors[kind])
        self.steps.append(kind)
        if isinstance(action, OpenImage):
            if self.open_rc < 0:
                return self.open_rc, None
            assert not self.is_open, "opened twice"
            self.is_open = True
            self.opens += 1
            return self.open_rc, None
        assert self.is_open, f"{kind.__name__} on an image that is not open"
        if isinstance(action, GetMirrorMode):
            return self.mode_rc, (self.mode if self.mode_rc >= 0 else None)
        if isinstance(action, GetMirrorInfo):
            info = {"global_id": "gid", "state": self.state, "primary": self.primary}
            return self.info_rc, (info if self.info_rc >= 0 else None)
        if isinstance(action, CheckRecent):
            return self.recent_rc, (self.newest_mirror_snapshot if self.recent_rc >= 0 else None)
        if isinstance(action, CheckPeer):
            return self.peer_rc, (dict(self.peer_links) if self.peer_rc >= 0 else None)
        if isinstance(action, CreateSnapshot):
            assert action.flags == 0
            if self.create_rc < 0:
                return self.create_rc, None
            self.snap_ids.append(next_snap_id)
            for peer, links in self.peer_links.items():
                self.peer_links[peer] = min(links + 1, MAX_MIRRORING_SNAPSHOTS)
            return self.create_rc, next_snap_id
        if isinstance(action, CloseImage):
            self.is_open = False  # librbd frees the handle even when close fails
            self.closes += 1
            return self.close_rc, None
        raise AssertionError(f"not a librbd step: {action!r}")


@dataclass
class FakeRbd:
    """A scripted pool of images by ImageSpec; unknown images answer OpenImage with -ENOENT."""

    images: dict[ImageSpec, FakeImage] = field(default_factory=dict)
    next_snap_id: int = 100
    # When set, a mirror snapshot created becomes its image's newest, taken now(), as on a real
    # cluster; unset, each image's newest stays what the test set.
    now: Callable[[], datetime] | None = None

    def add(self, image: ImageSpec, fake: FakeImage | None = None) -> FakeImage:
        self.images[image] = fake if fake is not None else FakeImage()
        return self.images[image]

    def answer(self, image: ImageSpec, action: Action) -> Completion:
        fake = self.images.get(image)
        if fake is None:
            assert isinstance(action, OpenImage), f"{action!r} on a missing image"
            return -errno.ENOENT, None
        self.next_snap_id += 1
        rc, value = fake.answer(action, self.next_snap_id)
        if isinstance(action, CreateSnapshot) and value is not None and self.now is not None:
            fake.newest_mirror_snapshot = self.now()
        return rc, value

    def open_images(self) -> list[ImageSpec]:
        return [spec for spec, fake in self.images.items() if fake.is_open]


@dataclass
class RequestTrace:
    """What running one request produced: every action and the state after it."""

    actions: list[Action]
    states: list[State]

    @property
    def outcome(self) -> Outcome:
        last = self.actions[-1]
        assert isinstance(last, Finish)
        return last.outcome

    @property
    def steps(self) -> list[type[Action]]:
        return [type(a) for a in self.actions]


def run_request(
    rbd: FakeRbd,
    image: ImageSpec,
    recent_since: datetime | None = None,
    *,
    check_peer: bool = False,
) -> RequestTrace:
    """Drive one CreateSnapshotRequest to its Finish against ``rbd``, like a driver would."""
    request = CreateSnapshotRequest(image, recent_since, check_peer)
    action: Action = request.start()
    trace = RequestTrace([action], [request.state])
    while not isinstance(action, Finish):
        assert len(trace.actions) < 10, "request does not terminate"
        try:
            rc, value = rbd.answer(image, action)
        except SubmitFailed as e:
            action = request.on_submit_error(str(e))
        else:
            action = request.on_complete(rc, value)
        trace.actions.append(action)
        trace.states.append(request.state)
    assert request.state is State.DONE
    assert request.outcome == trace.outcome
    return trace
