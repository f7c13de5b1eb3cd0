"""A short seeded soak of ours (issue 22): ``python3 -m tests.soak`` in the suite, so a regression
in how faults and changes combine cannot land.

Ours alone (no stock cluster: that comparison is the tool's), the host release, 40 images, four
minutes of a fixed seed's script with faults every minute (seed 22: the active mgr SIGKILLed
and started again 20 s later, the mon restarted, and meanwhile an image deleted, demoted,
renamed and its mirroring disabled, schedules added and removed through the CLI, a pool paused
and resumed, an option set, concurrent clients). Every invariant of the tool holds: no slot
doubled, no slot missed or late without an event that explains it, the listing equal to the
model, nothing left open, no mgr crash, ``status`` within its bound. 5.5 minutes with
boot and set-up. A failure prints the report and the seed; ``python3 -m tests.soak --seed 22
--minutes 4 --images 40 --no-upstream --fault-every 60 --ops-per-minute 6`` reruns the same
script by hand.
"""

from __future__ import annotations

import pytest

from tests.soak.driver import Settings, run
from tests.soak.report import Bounds, format_report, violations
from tests.soak.script import format_script, generate, make_layout

pytestmark = [pytest.mark.ceph_cluster, pytest.mark.faults]

SEED = 22
MINUTES = 4.0
IMAGES = 40


def test_a_short_seeded_soak_of_ours() -> None:
    print(f"[soak] seed {SEED}")
    layout = make_layout(IMAGES)
    events = generate(SEED, MINUTES, layout, fault_every=60.0, ops_per_minute=6.0)
    print("\n".join(format_script(events)))
    bounds = Bounds()
    (ours,) = run(layout, events, Settings(minutes=MINUTES, upstream=False, bounds=bounds))
    report = format_report([ours], bounds)
    print(report)
    assert ours.tally.due > 0, "no slot was judged"
    failed = violations(ours, bounds)
    assert not failed, f"seed {SEED}: {len(failed)} invariant(s) failed:\n{report}"
