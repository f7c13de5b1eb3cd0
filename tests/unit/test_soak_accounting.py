"""The soak's judgement over recorded observations (``tests/soak/accounting.py``): slots due,
met, late, missed (explained or not), doubled; slopes; status latency. Times are made up."""

from __future__ import annotations

import math

from tests.soak.accounting import (
    Answer,
    Fault,
    Observations,
    ProcSample,
    Snap,
    account,
    due_slots,
    latency,
    lives,
    recoveries,
    slope,
)
from tests.soak.model import Disturbance, Signature

T0 = 1_800_000_000.0  # a whole minute
EVERY_MINUTE: Signature = frozenset({(1, 0)})


def seen(handle: str, *ats: float, until: float = T0 + 3600) -> Observations:
    obs = Observations()
    obs.add(handle, until, [Snap(i, at, "primary") for i, at in enumerate(ats)])
    return obs


def test_due_slots_follow_the_grid_and_end_at_a_change() -> None:
    line = [(T0 - 5, EVERY_MINUTE), (T0 + 150, None)]
    assert due_slots(line, T0 + 600) == [(T0, T0 + 60), (T0 + 60, T0 + 120), (T0 + 120, T0 + 150)]
    mixed: Signature = frozenset({(2, 0), (5, 0)})
    slots = [s - T0 for s, _ in due_slots([(T0, mixed)], T0 + 600)]
    assert slots == [0, 120, 240, 300, 360, 480, 600]
    phased: Signature = frozenset({(5, 3)})
    assert [s - T0 for s, _ in due_slots([(T0, phased)], T0 + 600)] == [
        m * 60 - T0 for m in range(int(T0 // 60), int(T0 // 60) + 11) if (m - 3) % 5 == 0
    ]


def test_met_late_missed_and_doubled() -> None:
    line = {"a": [(T0, EVERY_MINUTE)]}
    obs = seen("a", T0 + 2, T0 + 70, T0 + 100, T0 + 175, T0 + 185)
    tally = account(line, obs, [], start=T0, end=T0 + 240, bound=30)
    # slot 0 met; slot 60 doubled (met); slot 120 none; slot 180 late? no: 185 on time
    # (175 is in slot 120's window, late); slot 240 none.
    assert (tally.due, tally.met) == (5, 3)
    assert tally.late == {"unexplained": 1}
    assert tally.missed == {"unexplained": 1}
    assert len(tally.doubled) == 1 and "#1@" in tally.doubled[0] and "#2@" in tally.doubled[0]
    assert len(tally.violations) == 3


def test_a_miss_inside_a_disturbance_is_explained() -> None:
    line = {"a": [(T0, EVERY_MINUTE)], "b": [(T0, EVERY_MINUTE)]}
    obs = seen("a", T0 + 1)
    obs.add("b", T0 + 3600, [Snap(9, T0 + 1, "primary")])
    fault = Disturbance(T0 + 30, T0 + 100, "fault:mgr_kill")
    only_b = Disturbance(T0 + 100, T0 + 130, "image:image_demote", frozenset({"b"}))
    tally = account(line, obs, [only_b, fault], start=T0, end=T0 + 120, bound=30)
    assert tally.missed == {"fault:mgr_kill": 2, "unexplained": 1, "image:image_demote": 1}
    assert tally.violations == ["missed: a slot 08:02:00"]


def test_snapshots_the_driver_made_and_catch_ups_are_not_slots() -> None:
    line = {"a": [(T0, None), (T0 + 30, EVERY_MINUTE)]}
    obs = seen("a", T0 + 10, T0 + 31, T0 + 61)
    obs.made_by_events["a"] = [(T0 + 9, T0 + 10)]
    tally = account(line, obs, [], start=T0, end=T0 + 60, bound=30)
    assert (tally.due, tally.met, tally.outside, tally.doubled) == (1, 1, 1, [])


def test_demoted_snapshots_do_not_count() -> None:
    obs = Observations()
    obs.add("a", T0 + 3600, [Snap(1, T0 + 5, "demoted")])
    tally = account({"a": [(T0, EVERY_MINUTE)]}, obs, [], start=T0, end=T0, bound=30)
    assert tally.missed == {"unexplained": 1}


def test_an_image_gone_before_its_snapshot_was_seen_is_not_judged() -> None:
    line = {"a": [(T0, EVERY_MINUTE), (T0 + 90, None)]}
    obs = seen("a", T0 + 1, until=T0 + 50)
    tally = account(line, obs, [], start=T0, end=T0 + 120, bound=30)
    assert (tally.due, tally.met, tally.unobserved) == (1, 1, 1)


def test_recovery_is_the_first_slot_met_in_full() -> None:
    line = {"a": [(T0, EVERY_MINUTE)]}
    tally = account(line, seen("a", T0 + 1, T0 + 121), [], start=T0, end=T0 + 180, bound=30)
    (got,) = recoveries([Fault("osd_restart", T0 + 10, T0 + 40)], tally)
    assert got.next_on_time == 110
    (never,) = recoveries([Fault("mon_restart", T0 + 130, T0 + 140)], tally)
    assert never.next_on_time is None


def test_slopes_leave_out_failovers_and_warmup() -> None:
    flat = [ProcSample(T0 + 60 * i, i // 10, 100_000 * (1 + i // 10), 40) for i in range(30)]
    assert slope(flat, "rss_kib", warmup=0).per_hour == 0.0
    growing = [
        ProcSample(T0 + 60 * i, 0, 1000 + (5000 if i < 2 else 10 * i), 40) for i in range(30)
    ]
    got = slope(growing, "rss_kib", warmup=120)
    assert math.isclose(got.per_hour, 600.0) and got.samples == 28 and got.span == 27 * 60
    assert math.isnan(slope(growing[:3], "threads", warmup=120).per_hour)


def test_the_trimmed_slope_leaves_out_samples_that_were_not_trimmed() -> None:
    # raw RSS climbs 1 MiB a minute (arenas filling); after malloc_trim it is flat; one
    # sample's trim failed (None)
    samples = [ProcSample(T0 + 60 * i, 1, 300_000 + 1024 * i, 40, 250_000) for i in range(30)]
    samples[10] = ProcSample(T0 + 600, 1, 310_240, 40, None)
    assert slope(samples, "trimmed_kib", warmup=0).per_hour == 0.0
    assert slope(samples, "trimmed_kib", warmup=0).samples == 29
    assert math.isclose(slope(samples, "rss_kib", warmup=0).per_hour, 60 * 1024)
    (life,) = lives(samples, warmup=0, value="trimmed_kib")
    assert life.rss_kib == (250_000, 250_000)


def test_lives_show_each_runs_rss_after_warmup() -> None:
    # run 1: 10 samples, flat after a warm-up jump; run 2: 5 samples growing 1 MiB a minute
    samples = [ProcSample(T0 + 60 * i, 1, 200_000 if i < 2 else 300_000, 40) for i in range(10)]
    samples += [ProcSample(T0 + 600 + 60 * i, 2, 250_000 + 1024 * i, 40) for i in range(5)]
    samples += [ProcSample(T0 + 900, 3, 1, 40)]  # a run with no sample after its warm-up
    first, second = lives(list(reversed(samples)), warmup=120)
    assert (first.run, first.start, first.minutes) == (1, T0, 9.0)
    assert first.rss_kib == (300_000, 300_000) and first.per_hour == 0.0
    assert (second.run, second.minutes, second.rss_kib) == (2, 4.0, (252_048, 254_096))
    assert math.isclose(second.per_hour, 60 * 1024)


def test_status_is_bounded_outside_faults() -> None:
    answers = [
        Answer(T0, 0.2, True, "status"),
        Answer(T0 + 10, 20.0, True, "status"),
        Answer(T0 + 50, 1.0, False, "status"),
        Answer(T0 + 100, 0.4, True, "status"),
    ]
    fault = Disturbance(T0 + 45, T0 + 60, "fault:mgr_failover")
    got = latency(answers, 15.0, [fault])
    assert got.violations == ["status at 08:00:10: 20.0s"]
    assert (got.count, got.p50, got.worst) == (4, 0.4, 20.0)


def test_a_drain_spilling_into_the_next_slot_is_late_not_doubled() -> None:
    line = {"a": [(T0, EVERY_MINUTE)]}
    obs = seen("a", T0 + 2, T0 + 121, T0 + 123)  # slot 60 spilled past 120
    fault = Disturbance(T0 + 50, T0 + 110, "fault:osd_restart")
    tally = account(line, obs, [fault], start=T0, end=T0 + 120, bound=30)
    assert (tally.due, tally.met, tally.doubled) == (3, 2, [])
    assert tally.late == {"fault:osd_restart": 1}
    # Not when the earlier slot had its own snapshot: that is a double.
    obs = seen("a", T0 + 2, T0 + 61, T0 + 121, T0 + 123)
    assert len(account(line, obs, [fault], start=T0, end=T0 + 120, bound=30).doubled) == 1


def test_a_change_right_after_a_slot_leaves_its_drain_the_slot() -> None:
    changed: Signature = frozenset({(2, 0)})
    line = {"a": [(T0, EVERY_MINUTE), (T0 + 10, changed)]}  # a new schedule 10 s in
    tally = account(line, seen("a", T0 + 30), [], start=T0, end=T0 + 60, bound=30)
    assert (tally.due, tally.met, tally.outside) == (1, 1, 0)
    # A window with its snapshot keeps its end: a later one is a catch-up, not a double.
    tally = account(line, seen("a", T0 + 2, T0 + 30), [], start=T0, end=T0 + 60, bound=30)
    assert (tally.due, tally.met, tally.outside, tally.doubled) == (1, 1, 1, [])
