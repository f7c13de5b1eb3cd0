"""Unit tests for rbd_snapsched.requests: one request fed fake completions, step by step.

The first half drives CreateSnapshotRequest by hand and checks the state and action after each
completion (like h11's test_state.py). The second half runs whole requests against the scripted
FakeRbd in tests/fakes.py (like h11's ConnectionPair).
"""

from __future__ import annotations

import errno
import importlib
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rbd_snapsched.levels import ImageSpec
from rbd_snapsched.requests import (
    MIRROR_IMAGE_ENABLED,
    MIRROR_IMAGE_MODE_SNAPSHOT,
    SUBMIT_ERROR_RC,
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
    OutcomeKind,
    RequestStateError,
    State,
)
from tests.fakes import FakeImage, FakeRbd, RequestTrace, run_request

IMAGE = ImageSpec(3, "ns1", "10226b8b4567")
ENOENT = -errno.ENOENT
EIO = -errno.EIO
MODE_JOURNAL = 0
MIRROR_IMAGE_DISABLING = 0
MIRROR_IMAGE_DISABLED = 2
INFO_OK: dict[str, object] = {"global_id": "g", "state": MIRROR_IMAGE_ENABLED, "primary": True}


def info(state: int = MIRROR_IMAGE_ENABLED, primary: bool = True) -> dict[str, object]:
    return {"global_id": "g", "state": state, "primary": primary}


def request_in(state: State) -> CreateSnapshotRequest:
    """A started request that succeeded every step before ``state``."""
    req = CreateSnapshotRequest(IMAGE)
    req.start()
    script: list[tuple[int, object]] = [
        (0, None),
        (0, MIRROR_IMAGE_MODE_SNAPSHOT),
        (0, INFO_OK),
        (0, 42),
    ]
    for rc, value in script:
        if req.state is state:
            return req
        req.on_complete(rc, value)
    assert state_of(req) is state
    return req


def state_of(req: CreateSnapshotRequest) -> State:
    """req.state, unnarrowed (mypy would keep an earlier `is` check's literal type)."""
    return req.state


def finished(action: Action) -> Outcome:
    assert isinstance(action, Finish)
    return action.outcome


def test_real_rbd_constants() -> None:
    rbd: Any = importlib.import_module("rbd")
    assert rbd.RBD_MIRROR_IMAGE_MODE_SNAPSHOT == MIRROR_IMAGE_MODE_SNAPSHOT
    assert rbd.RBD_MIRROR_IMAGE_ENABLED == MIRROR_IMAGE_ENABLED
    assert rbd.RBD_MIRROR_IMAGE_MODE_JOURNAL == MODE_JOURNAL
    assert rbd.RBD_MIRROR_IMAGE_DISABLING == MIRROR_IMAGE_DISABLING
    assert rbd.RBD_MIRROR_IMAGE_DISABLED == MIRROR_IMAGE_DISABLED


# --- the happy path, one completion at a time -------------------------------------------------


def test_happy_path_step_by_step() -> None:
    req = CreateSnapshotRequest(IMAGE)
    assert req.image == IMAGE
    assert state_of(req) is State.OPENING
    assert not req.opened
    assert req.outcome is None

    assert req.start() == OpenImage(IMAGE)
    assert state_of(req) is State.OPENING

    assert req.on_complete(0, None) == GetMirrorMode()
    assert state_of(req) is State.GETTING_MODE
    assert req.opened

    assert req.on_complete(0, MIRROR_IMAGE_MODE_SNAPSHOT) == GetMirrorInfo()
    assert state_of(req) is State.GETTING_INFO

    assert req.on_complete(0, INFO_OK) == CreateSnapshot(flags=0)
    assert state_of(req) is State.CREATING

    assert req.on_complete(0, 42) == CloseImage()
    assert state_of(req) is State.CLOSING
    assert req.opened
    created = Outcome(OutcomeKind.CREATED, State.CREATING, 0, 42, "created mirror snapshot 42")
    assert req.outcome == created  # decided before the close

    assert req.on_complete(0) == Finish(created)
    assert state_of(req) is State.DONE
    assert not req.opened
    assert req.outcome == created
    assert not created.is_error


# --- every row of the table -------------------------------------------------------------------

# (state, rc, value, expected kind). The request ends there; before OPENING's success there is
# nothing to close, after it there always is.
ENDING_ROWS = [
    (State.OPENING, ENOENT, None, OutcomeKind.VANISHED),
    (State.OPENING, EIO, None, OutcomeKind.FAILED),
    (State.OPENING, -errno.ESHUTDOWN, None, OutcomeKind.FAILED),
    (State.GETTING_MODE, ENOENT, None, OutcomeKind.VANISHED),
    (State.GETTING_MODE, EIO, None, OutcomeKind.FAILED),
    (State.GETTING_MODE, 0, None, OutcomeKind.FAILED),
    (State.GETTING_MODE, EIO, MIRROR_IMAGE_MODE_SNAPSHOT, OutcomeKind.FAILED),
    (State.GETTING_MODE, ENOENT, MIRROR_IMAGE_MODE_SNAPSHOT, OutcomeKind.VANISHED),
    (State.GETTING_MODE, -errno.EINVAL, None, OutcomeKind.SKIPPED_DISABLED),  # Tentacle
    (State.GETTING_MODE, 0, MODE_JOURNAL, OutcomeKind.SKIPPED_NOT_SNAPSHOT),
    (State.GETTING_MODE, 0, 7, OutcomeKind.SKIPPED_NOT_SNAPSHOT),
    (State.GETTING_INFO, ENOENT, None, OutcomeKind.VANISHED),
    (State.GETTING_INFO, EIO, None, OutcomeKind.FAILED),
    (State.GETTING_INFO, 0, None, OutcomeKind.FAILED),
    (State.GETTING_INFO, EIO, INFO_OK, OutcomeKind.FAILED),
    (State.GETTING_INFO, 0, info(state=MIRROR_IMAGE_DISABLED), OutcomeKind.SKIPPED_DISABLED),
    (State.GETTING_INFO, 0, info(state=MIRROR_IMAGE_DISABLING), OutcomeKind.SKIPPED_DISABLED),
    (
        State.GETTING_INFO,
        0,
        info(state=MIRROR_IMAGE_DISABLED, primary=False),
        OutcomeKind.SKIPPED_DISABLED,  # the state is judged before primary
    ),
    (State.GETTING_INFO, 0, info(primary=False), OutcomeKind.SKIPPED_NOT_PRIMARY),
    (State.CREATING, ENOENT, None, OutcomeKind.VANISHED),
    (State.CREATING, -errno.EINVAL, None, OutcomeKind.FAILED),
    (State.CREATING, 0, None, OutcomeKind.FAILED),
    (State.CREATING, EIO, 43, OutcomeKind.FAILED),
    (State.CREATING, 0, 43, OutcomeKind.CREATED),
]


@pytest.mark.parametrize(("state", "rc", "value", "kind"), ENDING_ROWS)
def test_table_row(state: State, rc: int, value: object, kind: OutcomeKind) -> None:
    req = request_in(state)
    action = req.on_complete(rc, value)
    outcome = req.outcome
    assert outcome is not None
    assert outcome.kind is kind
    assert outcome.step is state
    assert outcome.rc == rc
    assert outcome.close_rc == 0
    assert outcome.is_error == (kind is OutcomeKind.FAILED)
    assert outcome.snap_id == (value if kind is OutcomeKind.CREATED else None)
    if state is State.OPENING:
        assert action == Finish(outcome)
        assert state_of(req) is State.DONE
    else:
        assert action == CloseImage()
        assert state_of(req) is State.CLOSING
        assert req.opened
        assert req.on_complete(0) == Finish(outcome)
        assert state_of(req) is State.DONE
    assert not req.opened


@pytest.mark.parametrize(
    ("state", "rc", "value", "action"),
    [
        (State.OPENING, 0, None, GetMirrorMode()),
        (State.GETTING_MODE, 0, MIRROR_IMAGE_MODE_SNAPSHOT, GetMirrorInfo()),
        (State.GETTING_INFO, 0, INFO_OK, CreateSnapshot(0)),
    ],
)
def test_table_go_on_rows(state: State, rc: int, value: object, action: Action) -> None:
    req = request_in(state)
    assert req.on_complete(rc, value) == action
    assert req.outcome is None


@pytest.mark.parametrize("state", [State.OPENING, State.GETTING_MODE, State.GETTING_INFO])
def test_enoent_is_quiet_at_every_step(state: State) -> None:
    req = request_in(state)
    req.on_complete(ENOENT, None)
    outcome = req.outcome
    assert outcome is not None
    assert outcome.kind is OutcomeKind.VANISHED
    assert not outcome.is_error
    assert outcome.detail == f"image not found when {state.value}"


def test_enoent_is_quiet_when_creating() -> None:
    req = request_in(State.CREATING)
    req.on_complete(ENOENT, None)
    assert req.outcome == Outcome(
        OutcomeKind.VANISHED,
        State.CREATING,
        ENOENT,
        None,
        "image not found when creating mirror snapshot",
    )


@pytest.mark.parametrize(
    ("state", "value", "detail"),
    [
        (State.GETTING_MODE, MODE_JOURNAL, "snapshot mirroring is not enabled (mode 0)"),
        (
            State.GETTING_INFO,
            info(state=MIRROR_IMAGE_DISABLED),
            "mirroring is not enabled (state 2)",
        ),
        (State.GETTING_INFO, info(primary=False), "image is not primary"),
    ],
)
def test_skips_are_quiet(state: State, value: object, detail: str) -> None:
    req = request_in(state)
    req.on_complete(0, value)
    outcome = req.outcome
    assert outcome is not None
    assert not outcome.is_error
    assert outcome.detail == detail


def test_error_detail_names_the_step_and_the_errno() -> None:
    req = request_in(State.CREATING)
    req.on_complete(-errno.EINVAL, None)
    assert req.outcome is not None
    assert req.outcome.detail == "error when creating mirror snapshot: rc=-22 (Invalid argument)"
    req = request_in(State.GETTING_MODE)
    req.on_complete(0, None)
    assert req.outcome is not None
    assert req.outcome.detail == "error when getting mirror mode: rc=0"


# --- closing ----------------------------------------------------------------------------------


def test_close_failure_keeps_the_outcome_and_records_the_error() -> None:
    req = request_in(State.CREATING)
    req.on_complete(0, 42)
    outcome = finished(req.on_complete(-errno.ESHUTDOWN))
    assert outcome.kind is OutcomeKind.CREATED  # the snapshot exists all the same
    assert outcome.step is State.CREATING
    assert outcome.rc == 0
    assert outcome.snap_id == 42
    assert outcome.close_rc == -errno.ESHUTDOWN
    assert outcome.is_error
    assert outcome.detail.startswith("created mirror snapshot 42; error when closing image: ")
    assert state_of(req) is State.DONE


def test_close_failure_after_a_quiet_skip_is_an_error() -> None:
    req = request_in(State.GETTING_INFO)
    req.on_complete(0, info(primary=False))
    outcome = finished(req.on_complete(EIO))
    assert outcome.kind is OutcomeKind.SKIPPED_NOT_PRIMARY
    assert outcome.close_rc == EIO
    assert outcome.is_error


def test_close_failure_after_a_failure_keeps_the_first_error() -> None:
    req = request_in(State.GETTING_MODE)
    req.on_complete(-errno.EPERM, None)
    outcome = finished(req.on_complete(EIO))
    assert (outcome.kind, outcome.step, outcome.rc) == (
        OutcomeKind.FAILED,
        State.GETTING_MODE,
        -errno.EPERM,
    )
    assert outcome.close_rc == EIO


# --- submit errors ----------------------------------------------------------------------------


def test_submit_error_when_opening_finishes_without_close() -> None:
    req = request_in(State.OPENING)
    outcome = finished(req.on_submit_error("[errno 2] pool gone"))
    assert outcome == Outcome(
        OutcomeKind.FAILED,
        State.OPENING,
        SUBMIT_ERROR_RC,
        None,
        "exception when opening image: [errno 2] pool gone",
    )
    assert outcome.is_error
    assert state_of(req) is State.DONE


@pytest.mark.parametrize("state", [State.GETTING_MODE, State.GETTING_INFO, State.CREATING])
def test_submit_error_after_open_closes(state: State) -> None:
    req = request_in(state)
    assert req.on_submit_error("boom") == CloseImage()
    assert state_of(req) is State.CLOSING
    outcome = finished(req.on_complete(0))
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.step is state
    assert outcome.rc == SUBMIT_ERROR_RC
    assert outcome.detail == f"exception when {state.value}: boom"


def test_submit_error_when_closing_finishes_with_the_outcome_kept() -> None:
    req = request_in(State.CREATING)
    req.on_complete(0, 42)
    outcome = finished(req.on_submit_error("closed already"))
    assert outcome.kind is OutcomeKind.CREATED
    assert outcome.snap_id == 42
    assert outcome.close_rc == SUBMIT_ERROR_RC
    assert (
        outcome.detail == "created mirror snapshot 42; exception when closing image: closed already"
    )
    assert state_of(req) is State.DONE


# --- protocol errors (our bugs) ---------------------------------------------------------------


def test_completion_before_start_is_refused() -> None:
    req = CreateSnapshotRequest(IMAGE)
    with pytest.raises(RequestStateError):
        req.on_complete(0)
    with pytest.raises(RequestStateError):
        req.on_submit_error("x")
    req.start()
    with pytest.raises(RequestStateError):
        req.start()


def test_nothing_is_accepted_after_done() -> None:
    req = request_in(State.OPENING)
    req.on_complete(ENOENT)
    assert state_of(req) is State.DONE
    with pytest.raises(RequestStateError):
        req.on_complete(0)
    with pytest.raises(RequestStateError):
        req.on_submit_error("x")
    with pytest.raises(RequestStateError):
        req.start()
    assert state_of(req) is State.DONE


@pytest.mark.parametrize(
    ("state", "value"),
    [
        (State.OPENING, object()),
        (State.GETTING_MODE, "1"),
        (State.GETTING_MODE, True),
        (State.GETTING_INFO, [("state", 1)]),
        (State.GETTING_INFO, {"state": 1}),
        (State.GETTING_INFO, {"primary": True}),
        (State.GETTING_INFO, {"state": "1", "primary": True}),
        (State.GETTING_INFO, {"state": 1, "primary": 1}),
        (State.CREATING, "42"),
        (State.CREATING, 4.2),
        (State.CLOSING, 0),
    ],
)
def test_impossible_completion_value_raises_and_leaves_the_state(
    state: State, value: object
) -> None:
    req = request_in(state)
    if state is State.CLOSING:
        req = request_in(State.CREATING)
        req.on_complete(0, 42)
    with pytest.raises(RequestStateError):
        req.on_complete(0, value)
    assert state_of(req) is state
    # The driver can still wind the request down, closing what it opened.
    action = req.on_submit_error("RequestStateError")
    if state_of(req) is State.CLOSING:
        assert action == CloseImage()
        action = req.on_complete(0)
    assert isinstance(action, Finish)
    assert state_of(req) is State.DONE


# --- "an opened image is always closed", over random completions ------------------------------

CUTOFF = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
OLD = CUTOFF - timedelta(hours=5)
RECENT = CUTOFF + timedelta(minutes=1)

RCS = st.sampled_from([0] * 8 + [ENOENT, EIO, -errno.EINVAL, -errno.ESHUTDOWN])
# Hypothesis leans to each first choice: the happy ones come first, to reach the later steps.
VALUES: dict[State, st.SearchStrategy[object]] = {
    State.OPENING: st.none(),
    State.GETTING_MODE: st.one_of(st.sampled_from([1, 1, 1, MODE_JOURNAL]), st.none()),
    State.GETTING_INFO: st.one_of(
        st.builds(
            info,
            state=st.sampled_from([MIRROR_IMAGE_ENABLED] * 3 + [MIRROR_IMAGE_DISABLED]),
            primary=st.sampled_from([True, True, False]),
        ),
        st.none(),
    ),
    State.CHECKING_RECENT: st.one_of(st.sampled_from([OLD, RECENT]), st.none()),
    State.CHECKING_PEER: st.dictionaries(st.sampled_from(["p1", "p2"]), st.integers(0, 5)),
    State.CREATING: st.one_of(st.integers(1, 1000), st.none()),
    State.CLOSING: st.none(),
}


@settings(max_examples=500, derandomize=True, deadline=None)
@given(st.data())
def test_an_opened_image_is_always_closed_once(data: st.DataObject) -> None:
    catch_up = data.draw(st.booleans(), label="catch-up?")
    paced = data.draw(st.booleans(), label="paced?")
    req = CreateSnapshotRequest(IMAGE, CUTOFF if catch_up else None, paced)
    actions: list[Action] = [req.start()]
    opened = False
    while not isinstance(actions[-1], Finish):
        assert len(actions) < 10
        state = req.state
        if data.draw(st.integers(0, 9), label="submit error?") == 9:
            actions.append(req.on_submit_error("x"))
        else:
            rc = data.draw(RCS, label=f"rc {state.name}")
            value = data.draw(VALUES[state], label=f"value {state.name}")
            actions.append(req.on_complete(rc, value))
            if state is State.OPENING and rc >= 0:
                opened = True
    closes = [a for a in actions if isinstance(a, CloseImage)]
    assert len(closes) == (1 if opened else 0)
    if opened:
        assert isinstance(actions[-2], CloseImage)
    assert sum(isinstance(a, Finish) for a in actions) == 1
    assert state_of(req) is State.DONE
    assert not req.opened
    outcome = req.outcome
    assert outcome is not None
    assert (outcome.kind is OutcomeKind.CREATED) == (outcome.snap_id is not None)
    creates = sum(isinstance(a, CreateSnapshot) for a in actions)
    assert creates <= 1
    if outcome.kind is OutcomeKind.CREATED:
        assert creates == 1


# --- whole requests against the scripted FakeRbd ----------------------------------------------

FULL = [OpenImage, GetMirrorMode, GetMirrorInfo, CreateSnapshot, CloseImage, Finish]


def run(fake: FakeImage | None, *, left_open: bool = False) -> tuple[RequestTrace, FakeRbd]:
    rbd = FakeRbd()
    if fake is not None:
        rbd.add(IMAGE, fake)
    trace = run_request(rbd, IMAGE)
    assert rbd.open_images() == ([IMAGE] if left_open else [])
    return trace, rbd


def test_runner_creates_a_snapshot() -> None:
    trace, rbd = run(FakeImage())
    assert trace.steps == FULL
    assert trace.states == [
        State.OPENING,
        State.GETTING_MODE,
        State.GETTING_INFO,
        State.CREATING,
        State.CLOSING,
        State.DONE,
    ]
    fake = rbd.images[IMAGE]
    assert trace.outcome.kind is OutcomeKind.CREATED
    assert fake.snap_ids == [trace.outcome.snap_id]
    assert (fake.opens, fake.closes) == (1, 1)


def test_runner_missing_image_is_quiet() -> None:
    trace, _ = run(None)
    assert trace.steps == [OpenImage, Finish]
    assert trace.outcome.kind is OutcomeKind.VANISHED
    assert not trace.outcome.is_error


@pytest.mark.parametrize(
    ("fake", "kind", "step", "steps"),
    [
        (FakeImage(open_rc=EIO), OutcomeKind.FAILED, State.OPENING, FULL[:1] + FULL[-1:]),
        (FakeImage(open_rc=ENOENT), OutcomeKind.VANISHED, State.OPENING, FULL[:1] + FULL[-1:]),
        (FakeImage(mode_rc=ENOENT), OutcomeKind.VANISHED, State.GETTING_MODE, FULL[:2] + FULL[-2:]),
        (FakeImage(mode_rc=EIO), OutcomeKind.FAILED, State.GETTING_MODE, FULL[:2] + FULL[-2:]),
        (
            FakeImage(mode=MODE_JOURNAL),
            OutcomeKind.SKIPPED_NOT_SNAPSHOT,
            State.GETTING_MODE,
            FULL[:2] + FULL[-2:],
        ),
        (FakeImage(info_rc=ENOENT), OutcomeKind.VANISHED, State.GETTING_INFO, FULL[:3] + FULL[-2:]),
        (FakeImage(info_rc=EIO), OutcomeKind.FAILED, State.GETTING_INFO, FULL[:3] + FULL[-2:]),
        (
            FakeImage(state=MIRROR_IMAGE_DISABLING),
            OutcomeKind.SKIPPED_DISABLED,
            State.GETTING_INFO,
            FULL[:3] + FULL[-2:],
        ),
        (
            FakeImage(primary=False),
            OutcomeKind.SKIPPED_NOT_PRIMARY,
            State.GETTING_INFO,
            FULL[:3] + FULL[-2:],
        ),
        (FakeImage(create_rc=ENOENT), OutcomeKind.VANISHED, State.CREATING, FULL),
        (FakeImage(create_rc=-errno.EINVAL), OutcomeKind.FAILED, State.CREATING, FULL),
        (FakeImage(close_rc=EIO), OutcomeKind.CREATED, State.CREATING, FULL),
    ],
)
def test_runner_scripted_outcomes(
    fake: FakeImage, kind: OutcomeKind, step: State, steps: list[type[Action]]
) -> None:
    trace, _ = run(fake)
    assert trace.steps == steps
    assert (trace.outcome.kind, trace.outcome.step) == (kind, step)
    assert fake.opens == fake.closes
    assert fake.snap_ids == ([trace.outcome.snap_id] if kind is OutcomeKind.CREATED else [])


@pytest.mark.parametrize("failing", FULL[:-1])
def test_runner_submit_error_at_each_step(failing: type[Action]) -> None:
    fake = FakeImage(submit_errors={failing: f"cannot submit {failing.__name__}"})
    # A close that cannot even be submitted leaves the handle with the driver: nothing more
    # the request can do (the driver drops its reference).
    trace, _ = run(fake, left_open=failing is CloseImage)
    outcome = trace.outcome
    assert outcome.is_error
    if failing is CloseImage:
        assert trace.steps == FULL
        assert fake.closes == 0
        assert outcome.kind is OutcomeKind.CREATED
        assert outcome.close_rc == SUBMIT_ERROR_RC
    else:
        assert fake.opens == fake.closes
        assert outcome.kind is OutcomeKind.FAILED
        assert outcome.detail.endswith(f"cannot submit {failing.__name__}")
        ended_at = FULL.index(failing)
        closing = [CloseImage] if failing is not OpenImage else []
        assert trace.steps == [*FULL[: ended_at + 1], *closing, Finish]


def test_runner_image_deleted_mid_request() -> None:
    def delete_on_info(fake: FakeImage, action: Action) -> None:
        if isinstance(action, GetMirrorInfo):
            fake.info_rc = ENOENT

    fake = FakeImage(on_step=delete_on_info)
    trace, _ = run(fake)
    assert trace.outcome.kind is OutcomeKind.VANISHED
    assert trace.outcome.step is State.GETTING_INFO
    assert fake.closes == 1


def test_runner_many_images() -> None:
    rbd = FakeRbd()
    specs = [ImageSpec(1, "", f"img{k}") for k in range(20)]
    for k, spec in enumerate(specs):
        rbd.add(spec, FakeImage(primary=k % 2 == 0))
    kinds = [run_request(rbd, spec).outcome.kind for spec in specs]
    assert kinds == [OutcomeKind.CREATED, OutcomeKind.SKIPPED_NOT_PRIMARY] * 10
    assert rbd.open_images() == []
    snap_ids = [sid for fake in rbd.images.values() for sid in fake.snap_ids]
    assert len(set(snap_ids)) == 10


# --- catch-up: only a snapshot if none is recent enough ----------------------------------------


def to_info(req: CreateSnapshotRequest) -> Action:
    req.start()
    req.on_complete(0)
    req.on_complete(0, MIRROR_IMAGE_MODE_SNAPSHOT)
    return req.on_complete(0, info())


def test_a_catch_up_checks_for_a_recent_snapshot_after_the_mirror_info() -> None:
    req = CreateSnapshotRequest(IMAGE, CUTOFF)
    assert to_info(req) == CheckRecent(CUTOFF)
    assert req.state is State.CHECKING_RECENT
    action = req.on_complete(0, RECENT)
    assert isinstance(action, CloseImage)
    assert req.outcome is not None and req.outcome.kind is OutcomeKind.SKIPPED_RECENT
    assert not req.outcome.is_error
    assert isinstance(req.on_complete(0), Finish)


@pytest.mark.parametrize(("rc", "newest"), [(0, OLD), (0, None), (EIO, None)])
def test_a_catch_up_creates_when_the_newest_is_old_missing_or_unknown(
    rc: int, newest: datetime | None
) -> None:
    req = CreateSnapshotRequest(IMAGE, CUTOFF)
    to_info(req)
    assert req.on_complete(rc, newest) == CreateSnapshot(flags=0)
    assert req.state is State.CREATING


def test_a_plain_request_never_checks() -> None:
    req = CreateSnapshotRequest(IMAGE)
    assert to_info(req) == CreateSnapshot(flags=0)


def test_a_catch_up_against_the_scripted_rbd() -> None:
    rbd = FakeRbd()
    rbd.add(IMAGE, FakeImage(newest_mirror_snapshot=OLD))
    trace = run_request(rbd, IMAGE, CUTOFF)
    assert trace.outcome.kind is OutcomeKind.CREATED
    rbd.add(IMAGE, FakeImage(newest_mirror_snapshot=RECENT))
    assert run_request(rbd, IMAGE, CUTOFF).outcome.kind is OutcomeKind.SKIPPED_RECENT
    with pytest.raises(RequestStateError):
        req = CreateSnapshotRequest(IMAGE, CUTOFF)
        to_info(req)
        req.on_complete(0, "yesterday")


# --- pacing: no snapshot while a peer has not synced the previous one -------------------------

PEER, OTHER = "peer-a", "peer-b"


def test_pacing_checks_the_peers_after_the_mirror_info() -> None:
    req = CreateSnapshotRequest(IMAGE, check_peer=True)
    assert to_info(req) == CheckPeer()
    assert req.state is State.CHECKING_PEER
    action = req.on_complete(0, {PEER: 3, OTHER: 1})
    assert isinstance(action, CloseImage)
    outcome = req.outcome
    assert outcome is not None and outcome.kind is OutcomeKind.SKIPPED_PEER_LAGGING
    assert outcome.step is State.CHECKING_PEER and not outcome.is_error
    assert outcome.detail == f"peer {PEER} has 2 mirror snapshot(s) not synced yet"
    assert finished(req.on_complete(0)) == outcome


@pytest.mark.parametrize(
    ("rc", "links"),
    [(0, {PEER: 1}), (0, {PEER: 1, OTHER: 1}), (0, {}), (EIO, None)],
    ids=["caught-up", "two-caught-up", "no-peer", "cannot-list"],
)
def test_pacing_creates_when_caught_up_peerless_or_unknown(
    rc: int, links: dict[str, int] | None
) -> None:
    req = CreateSnapshotRequest(IMAGE, check_peer=True)
    to_info(req)
    assert req.on_complete(rc, links) == CreateSnapshot(flags=0)
    assert req.state is State.CREATING


def test_every_lagging_peer_is_named() -> None:
    req = CreateSnapshotRequest(IMAGE, check_peer=True)
    to_info(req)
    req.on_complete(0, {OTHER: 2, PEER: 5})
    assert req.outcome is not None
    assert req.outcome.detail == (
        f"peer {PEER} has 4 mirror snapshot(s) not synced yet, "
        f"peer {OTHER} has 1 mirror snapshot(s) not synced yet"
    )


def test_a_paced_catch_up_checks_recent_first_then_the_peers() -> None:
    req = CreateSnapshotRequest(IMAGE, CUTOFF, check_peer=True)
    assert to_info(req) == CheckRecent(CUTOFF)
    assert req.on_complete(0, OLD) == CheckPeer()
    assert req.on_complete(0, {PEER: 1}) == CreateSnapshot(flags=0)


@pytest.mark.parametrize("value", ["3", {PEER: "2"}, {PEER: True}, None])
def test_pacing_refuses_a_completion_of_the_wrong_shape(value: object) -> None:
    req = CreateSnapshotRequest(IMAGE, check_peer=True)
    to_info(req)
    with pytest.raises(RequestStateError):
        req.on_complete(0, value)
    assert req.state is State.CHECKING_PEER


def test_pacing_against_the_scripted_rbd_follows_the_peer() -> None:
    rbd = FakeRbd()
    fake = rbd.add(IMAGE)  # just enabled: one snapshot, linked to the peer
    paced = [run_request(rbd, IMAGE, check_peer=True).outcome.kind for _ in range(3)]
    assert paced == [
        OutcomeKind.CREATED,
        OutcomeKind.SKIPPED_PEER_LAGGING,
        OutcomeKind.SKIPPED_PEER_LAGGING,
    ]
    assert run_request(rbd, IMAGE).outcome.kind is OutcomeKind.CREATED  # pacing off
    fake.sync()
    assert run_request(rbd, IMAGE, check_peer=True).outcome.kind is OutcomeKind.CREATED
    assert fake.opens == fake.closes == 5
