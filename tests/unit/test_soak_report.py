"""The soak's report (``tests/soak/report.py``): both clusters side by side, and which
invariants each one broke."""

from __future__ import annotations

from collections import Counter

from tests.soak.accounting import Fault, Latency, Recovery, Slope, SlotTally
from tests.soak.report import Bounds, ClusterResult, format_report, violations

T0 = 1_800_000_000.0


def result(name: str, **changes: object) -> ClusterResult:
    tally = SlotTally(due=10, met=9, missed=Counter({"fault:mgr_kill": 1}))
    made = ClusterResult(
        name=name,
        tally=tally,
        recoveries=[Recovery(Fault("mgr_kill", T0, T0 + 12), 60.0)],
        rss=Slope(30 * 1024.0, 40 * 60.0, 40),
        threads=Slope(float("nan"), 0.0, 0),
        status=Latency(5, 0.1, 0.3, 0.3, []),
        restarts_caused=1,
        active_changes=1,
        crashes=[],
        listing_checks=4,
        listing_problems=[],
        open_checks=3,
        open_problems=[],
    )
    for key, value in changes.items():
        setattr(made, key, value)
    return made


def test_a_clean_run_has_no_violations_and_both_columns() -> None:
    ours = result("ours")
    stock = result("rbd_support", open_checks=None, refused=Counter({"pause": 2}))
    assert violations(ours, Bounds()) == []
    text = format_report([ours, stock], Bounds())
    header, _rule, *lines = text.splitlines()
    assert header.split() == ["figure", "ours", "rbd_support"]
    assert any(line.startswith("missed, by cause") and "fault:mgr_kill 1" in line for line in lines)
    assert any("n/a (no such gauges)" in line for line in lines)
    assert any("pause 2" in line for line in lines)
    assert (
        "ours: fault mgr_kill at 08:00:00: recovered after 12s, next on-time slot after 60s"
        in lines
    )


def test_each_broken_invariant_is_named() -> None:
    tally = SlotTally(due=1, violations=["missed: a slot 08:00:00"])
    bad = result(
        "ours",
        tally=tally,
        crashes=["mgr.y died unasked"],
        listing_problems=["p/-/-: listed [], expected ['1m@']"],
        rss=Slope(100 * 1024.0, 30 * 60.0, 30),
        threads=Slope(50.0, 5 * 60.0, 5),  # steep but short: not judged
    )
    found = violations(bad, Bounds())
    assert found == [
        "missed: a slot 08:00:00",
        "crash: mgr.y died unasked",
        "schedules: p/-/-: listed [], expected ['1m@']",
        "RSS grows 100.0/h (bound 64/h)",
    ]
    assert "ours: VIOLATION RSS grows 100.0/h (bound 64/h)" in format_report([bad], Bounds())


def test_a_trimmed_rss_is_judged_and_the_raw_one_only_shown() -> None:
    # The raw RSS climbs while glibc's arenas fill (a 35-minute run: +178 MiB/h, of which
    # malloc_trim gave back 47 MiB); the one after malloc_trim is judged.
    ours = result(
        "ours",
        rss=Slope(20 * 1024.0, 40 * 60.0, 40),
        rss_raw=Slope(178 * 1024.0, 40 * 60.0, 40),
        rss_trimmed=True,
    )
    assert violations(ours, Bounds()) == []
    lines = format_report([ours], Bounds()).splitlines()
    assert any(
        line.startswith("RSS slope, after malloc_trim") and "+20.0" in line for line in lines
    )
    assert any(
        line.startswith("RSS slope, raw (not judged)") and "+178.0" in line for line in lines
    )
    plain = format_report([result("ours")], Bounds()).splitlines()
    assert not any("raw" in line for line in plain)


def test_a_trim_that_never_worked_is_a_violation_not_a_pass() -> None:
    # gdb could not attach (ptrace refused) or call malloc_trim: no trimmed sample at all
    ours = result(
        "ours",
        rss=Slope(float("nan"), 0.0, 0),
        rss_raw=Slope(10 * 1024.0, 40 * 60.0, 40),
        rss_trimmed=True,
    )
    assert violations(ours, Bounds()) == [
        "RSS not measured after malloc_trim (gdb failed at every sample)"
    ]
