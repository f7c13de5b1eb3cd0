"""The error texts commands answer with."""

from __future__ import annotations

import errno

import rados
import rbd

from rbd_snapsched.cluster import command_failure
from rbd_snapsched.errors import InvalidArgument, NotAuthorized, NotFound


def test_replies_are_the_bare_messages() -> None:
    assert InvalidArgument("pool p does not exist").reply() == "pool p does not exist"
    assert NotFound("level p/ is not paused").reply() == "level p/ is not paused"


def test_an_eacces_reply_ends_its_line_before_the_mgr_hint() -> None:
    """ceph-mgr appends "access denied: ..." to an EACCES text without a separator (measured:
    "namespace=Noneaccess denied"); our line ends first, and str() stays the bare message."""
    e = NotAuthorized("not authorized on pool=p, namespace=None")
    assert e.errno == errno.EACCES
    assert e.reply() == "not authorized on pool=p, namespace=None\n"
    assert str(e) == "not authorized on pool=p, namespace=None"


# -- what a command that raised answers (rbd_snapsched.cluster.command_failure) ----------------


def test_a_blocklisted_client_is_try_again_and_starts_the_recovery() -> None:
    for e in (
        rados.ConnectionShutdown("blocklisted", errno.ESHUTDOWN),
        rbd.ConnectionShutdown("blocklisted", errno.ESHUTDOWN),
    ):
        for rebuilding in (False, True):
            failure = command_failure(e, rebuilding)
            assert failure.rc == -errno.EAGAIN
            assert failure.text.startswith("rbd_snapsched module is recovering from a blocklisting")
            assert failure.blocklisted and not failure.bug


def test_a_client_closed_under_the_call_by_a_rebuild_is_try_again_not_a_verdict() -> None:
    """A command that passed the ready check while the module tore its handler down (CI saw
    go-ceph's Status get ENOTCONN across a blocklisting): EAGAIN, no second recovery."""
    # ENOTCONN as Nautilus' binding raises it (the bullseye run); later ones add NotConnected,
    # a subclass of rados.OSError: the answer reads the errno, not the class.
    closed = [
        rados.OSError("not connected", errno.ENOTCONN),
        rados.RadosStateError(
            "You cannot perform that operation on a Rados object in state shutdown."
        ),
        rados.IoctxStateError("RADOS ioctx state (The pool is closed.)"),
        RuntimeError("anything the teardown left behind"),
    ]
    for e in closed:
        failure = command_failure(e, rebuilding=True)
        assert failure == (
            -errno.EAGAIN,
            f"rbd_snapsched module is recovering, try again ({e})",
            False,
            False,
        )


def test_outside_a_rebuild_a_library_error_keeps_its_errno_and_ours_is_eio() -> None:
    e = rados.OSError("not connected", errno.ENOTCONN)
    assert command_failure(e, False) == (-errno.ENOTCONN, str(e), False, False)
    assert command_failure(rbd.ImageNotFound("no image", errno.ENOENT), False).rc == -errno.ENOENT
    state = command_failure(rados.RadosStateError("bad state"), False)
    assert state.rc == -errno.EINVAL and not state.bug
    ours = command_failure(KeyError("x"), False)
    assert ours == (-errno.EIO, "internal error in rbd_snapsched: 'x'", False, True)
