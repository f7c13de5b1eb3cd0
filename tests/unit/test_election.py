"""A new monitor election is logged once (``changes.election``), from the mgr's mon_status."""

from __future__ import annotations

from rbd_snapsched.changes import election


def test_a_new_monitor_election_is_told_once() -> None:
    assert election(None, (5, ["a"])) == (5, None)  # the first one seen: nothing to tell
    assert election(5, (5, ["a"])) == (5, None)
    assert election(5, None) == (5, None)  # a status that does not say
    epoch, line = election(5, (7, ["a", "b"]))
    assert epoch == 7 and line is not None
    assert line.text % line.args == (
        "monitor election: epoch 5 -> 7, quorum a,b (a monitor restarted or the quorum changed)"
    )
    assert election(7, (8, []))[1].args[2] == "?"  # type: ignore[union-attr]
