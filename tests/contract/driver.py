"""The contract every ``ports.SnapshotDriver`` keeps: what the handler relies on.

A check gets ``run``: start one request and return its outcome once ``done`` was called, and
called exactly once (``finish`` does that for a driver in this process; a real one runs in the
release's runtime, see ``tests/runtime_rpc.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from rbd_snapsched.levels import ImageSpec
from rbd_snapsched.ports import SnapshotDriver
from rbd_snapsched.requests import Outcome, OutcomeKind, State
from tests.contract.world import Scene

Run = Callable[[ImageSpec, "datetime | None"], Outcome]
LONG_AGO = datetime(2000, 1, 1, tzinfo=timezone.utc)
QUIET = {OutcomeKind.SKIPPED_NOT_SNAPSHOT, OutcomeKind.SKIPPED_DISABLED}


def finish(
    driver: SnapshotDriver,
    image: ImageSpec,
    recent_since: datetime | None = None,
    timeout: float = 30.0,
) -> Outcome:
    """Start one request on ``driver``; wait (on any thread) for its one ``done``."""
    calls: list[tuple[ImageSpec, Outcome]] = []
    called = threading.Event()

    def done(image: ImageSpec, outcome: Outcome) -> None:
        calls.append((image, outcome))
        called.set()

    driver.start(image, f"contract {image}", done, recent_since)
    assert called.wait(timeout), f"done not called within {timeout}s for {image}"
    time.sleep(0.05)  # a second call would come right after the first
    assert len(calls) == 1, calls
    assert calls[0][0] == image
    assert driver.in_flight(image) is None  # no step left once `done` was called
    return calls[0][1]


def check_snapshot_driver(
    run: Run, scene: Scene, newest: Callable[[ImageSpec], datetime | None] | None = None
) -> None:
    """``newest``: the world's ``ClusterIO.newest_mirror_snapshot``, if it has one that
    reports what the driver creates."""
    for image in scene.images.values():
        before = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=1)
        outcome = run(image.spec, None)
        if image.schedulable:
            assert outcome.kind is OutcomeKind.CREATED, (image, outcome)
            assert outcome.snap_id is not None and outcome.step is State.CREATING
            if newest is not None:  # the snapshot is the newest now: catch-up seeds from it
                taken = newest(image.spec)
                assert taken is not None and taken >= before, (image, taken, before)
        elif image.mirror == "snapshot":
            assert outcome.kind is OutcomeKind.SKIPPED_NOT_PRIMARY, (image, outcome)
        elif image.mirror == "journal":
            assert outcome.kind is OutcomeKind.SKIPPED_NOT_SNAPSHOT, (image, outcome)
        else:  # mirroring not enabled: skipped, never an error
            assert outcome.kind in QUIET, (image, outcome)
        assert not outcome.is_error, (image, outcome)

    # An image deleted since discovery vanished, quietly.
    if scene.missing_image_id is not None:
        for where in {(i.spec.pool_id, i.spec.namespace) for i in scene.images.values()}:
            outcome = run(ImageSpec(*where, scene.missing_image_id), None)
            assert outcome.kind is OutcomeKind.VANISHED and not outcome.is_error, outcome

    # Catch-up: skipped if a mirror snapshot is at least as recent as `since`, else created.
    for image in scene.images.values():
        if not image.schedulable:
            continue
        recent = run(image.spec, LONG_AGO)
        if scene.images_have_mirror_snapshots:
            assert recent.kind is OutcomeKind.SKIPPED_RECENT, (image, recent)
        else:
            assert recent.kind is OutcomeKind.CREATED, (image, recent)
        later = datetime.now(timezone.utc) + timedelta(days=1)
        assert run(image.spec, later).kind is OutcomeKind.CREATED, image


Paced = Callable[[ImageSpec], Outcome]  # one request with pacing on (``check_peer``)


def check_peer_pacing(run: Run, paced: Paced, scene: Scene) -> None:
    """Pacing, against a peer that never syncs (no rbd-mirror runs): once an image has a
    snapshot its peer has not synced, a paced request skips, quietly, naming the peer; an
    unpaced one still creates. (Catching up is the two-site test's: only a real rbd-mirror
    syncs.)"""
    for image in scene.images.values():
        if not image.schedulable:
            continue
        assert run(image.spec, None).kind is OutcomeKind.CREATED, image  # the peer lags now
        outcome = paced(image.spec)
        assert outcome.kind is OutcomeKind.SKIPPED_PEER_LAGGING, (image, outcome)
        assert outcome.step is State.CHECKING_PEER and not outcome.is_error, outcome
        assert outcome.detail.startswith("peer ") and "not synced yet" in outcome.detail
        assert run(image.spec, None).kind is OutcomeKind.CREATED, image
