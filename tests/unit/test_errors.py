"""The error texts commands answer with."""

from __future__ import annotations

import errno

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
