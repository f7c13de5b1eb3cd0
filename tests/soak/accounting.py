"""The soak's invariants, judged over what was recorded: no cluster code, time passed in.

- **Slots.** From each image's timeline (``model.ClusterModel.timeline``) the slots it was due
  (every minute on its grid while eligible) and each slot's *window*, from the slot to the
  image's next due slot or its next change, whichever comes first. A slot is *met* when a
  scheduled primary mirror snapshot lies in ``[slot, slot + bound]`` inside its window, *late*
  when one lies in the window after that, *missed* when none does; a late or missed slot is
  *explained* by the first disturbance that covers it (its cause is reported), else it is a
  violation. Two or more scheduled snapshots in one window is a *doubled* slot, always a
  violation (but for a drain's spill: see ``_move_spills``; an empty window a change closed
  early reaches on: ``_extend_empty``). Snapshots that the driver's own
  commands made (mirror enable, promote) are left out by their time windows; others outside
  every window (catch-up after a failover, a new schedule or a promotion) are counted as
  *outside slots*, not judged.
- **Memory and threads**: a slope per hour within each run of one active mgr (samples from
  the start of each run's warm-up left out), pooled over the runs.
- **status latency**: every answer within a bound, except during a fault.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tests.soak.model import Disturbance, Signature

SLOT = 60.0


@dataclass(frozen=True)
class Snap:
    """A mirror snapshot as the cluster listed it: ``state`` is ``primary``, ``demoted`` or
    ``non_primary``; ``at`` its creation time (epoch s, whole seconds as librbd keeps it)."""

    id: int
    at: float
    state: str


@dataclass
class Observations:
    """Every mirror snapshot seen, per image handle, accumulated over the run's polls."""

    snaps: dict[str, dict[int, Snap]] = field(default_factory=dict)
    last_seen: dict[str, float] = field(default_factory=dict)  # last poll that listed it
    # (start, end) spans in which the driver's command on the image made its snapshot
    made_by_events: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def add(self, handle: str, at: float, snaps: Sequence[Snap]) -> None:
        known = self.snaps.setdefault(handle, {})
        for snap in snaps:
            known.setdefault(snap.id, snap)
        self.last_seen[handle] = max(at, self.last_seen.get(handle, 0.0))

    def scheduled(self, handle: str) -> list[Snap]:
        """Its primary mirror snapshots not made by the driver's own commands, oldest first."""
        spans = self.made_by_events.get(handle, [])
        return sorted(
            (
                s
                for s in self.snaps.get(handle, {}).values()
                if s.state == "primary" and not any(a - 1 <= s.at <= b + 1 for a, b in spans)
            ),
            key=lambda s: (s.at, s.id),
        )


@dataclass
class SlotTally:
    due: int = 0
    met: int = 0
    late: Counter[str] = field(default_factory=Counter)
    missed: Counter[str] = field(default_factory=Counter)
    doubled: list[str] = field(default_factory=list)
    unobserved: int = 0
    outside: int = 0
    # per slot instant: (slots judged, met on time)
    by_instant: dict[float, tuple[int, int]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)


def due_slots(line: Sequence[tuple[float, Signature]], until: float) -> list[tuple[float, float]]:
    """The slots an image with timeline ``line`` was due at up to ``until``, each with its
    window's end: (slot, window end)."""
    found: list[tuple[float, float]] = []
    for i, (since, signature) in enumerate(line):
        upto = line[i + 1][0] if i + 1 < len(line) else math.inf
        if not signature:
            continue
        longest = max(minutes for minutes, _ in signature)
        last_minute = int(min(upto, until + longest * SLOT) // SLOT)
        slots = [
            m * SLOT
            for m in range(math.ceil(since / SLOT), last_minute + 1)
            if since <= m * SLOT < upto
            and any((m - phase) % minutes == 0 for minutes, phase in signature)
        ]
        for j, slot in enumerate(slots):
            if slot > until:
                break
            if j + 1 < len(slots):
                end = min(slots[j + 1], upto)
            else:
                end = min(upto, slot + min(minutes for minutes, _ in signature) * SLOT)
            found.append((slot, end))
    return found


def explain(disturbances: Sequence[Disturbance], handle: str, at: float) -> str | None:
    """The cause of the first disturbance over ``handle`` at ``at``: faults before others."""
    found = [d for d in disturbances if d.explains(handle, at)]
    found.sort(key=lambda d: (not d.cause.startswith("fault:"), d.start))
    return found[0].cause if found else None


def account(
    timeline: Mapping[str, Sequence[tuple[float, Signature]]],
    seen: Observations,
    disturbances: Sequence[Disturbance],
    *,
    start: float,
    end: float,
    bound: float,
) -> SlotTally:
    """Judge every slot due in ``[start, end]`` (see the module's docstring)."""
    tally = SlotTally()
    for handle in sorted(timeline):
        snaps = seen.scheduled(handle)
        slots = due_slots(timeline[handle], end)
        insides = [[s for s in snaps if slot <= s.at < stop] for slot, stop in slots]
        _extend_empty(slots, insides, snaps, bound)
        _move_spills(slots, insides, bound)
        in_windows = {s.id for inside in insides for s in inside}
        for (slot, window_end), inside in zip(slots, insides):
            if slot < start:
                continue
            if len(inside) > 1:
                text = ", ".join(f"#{s.id}@{hms(s.at)}" for s in inside)
                tally.doubled.append(f"{handle} slot {hms(slot)}: {text}")
                tally.violations.append(f"doubled: {handle} slot {hms(slot)}: {text}")
            if seen.last_seen.get(handle, -math.inf) < min(window_end, slot + bound):
                tally.unobserved += 1  # deleted (or unreadable) before its snapshot was seen
                continue
            tally.due += 1
            on_time = any(s.at <= slot + bound for s in inside)
            judged, met = tally.by_instant.get(slot, (0, 0))
            tally.by_instant[slot] = (judged + 1, met + on_time)
            if on_time:
                tally.met += 1
                continue
            cause = explain(disturbances, handle, slot)
            (tally.late if inside else tally.missed)[cause or "unexplained"] += 1
            if cause is None:
                what = "late" if inside else "missed"
                got = f" (snapshot at {hms(inside[0].at)})" if inside else ""
                tally.violations.append(f"{what}: {handle} slot {hms(slot)}{got}")
        tally.outside += sum(1 for s in snaps if s.id not in in_windows and start <= s.at <= end)
    return tally


def _extend_empty(
    slots: Sequence[tuple[float, float]],
    insides: list[list[Snap]],
    snaps: Sequence[Snap],
    bound: float,
) -> None:
    """A window a change closed early (a schedule, pause or state change right after its
    slot) that holds no snapshot reaches on, up to ``bound`` after the slot (and never into
    the image's next due slot): the slot's snapshot may still come from the drain under way.
    (Not a window that holds one: what comes after the change is a catch-up, not a second
    snapshot for that slot.)"""
    for i, (slot, end) in enumerate(slots):
        reach = slot + bound + 1
        if i + 1 < len(slots):
            reach = min(reach, slots[i + 1][0])
        if not insides[i] and end < reach:
            insides[i] = [s for s in snaps if end <= s.at < reach][:1]


def _move_spills(
    slots: Sequence[tuple[float, float]], insides: list[list[Snap]], bound: float
) -> None:
    """A slot's snapshot that came after the next slot began (a drain slowed by a fault) is
    that slot's, late, not a second one of the next: when a window holds two or more and the
    window just before it (ending where it begins) holds none, its first snapshot moves back,
    if it came within ``bound`` + one minute of the earlier slot."""
    for i in range(1, len(slots)):
        earlier, later = slots[i - 1], slots[i]
        spilled = len(insides[i]) > 1 and insides[i][0].at - earlier[0] <= bound + SLOT
        if spilled and not insides[i - 1] and earlier[1] == later[0]:
            insides[i - 1].append(insides[i].pop(0))


def first_on_time_after(tally: SlotTally, at: float) -> float | None:
    """The first slot at or after ``at`` whose every judged image was met on time."""
    for slot in sorted(tally.by_instant):
        judged, met = tally.by_instant[slot]
        if slot >= at and judged and judged == met:
            return slot
    return None


@dataclass(frozen=True)
class ProcSample:
    """The active mgr's /proc/<pid>/status at ``at``; ``run`` numbers each stretch of one
    mgr process being active (a failover or a respawn starts a new one). ``trimmed_kib``:
    its RSS right after glibc's ``malloc_trim(0)`` in it (None: not trimmed), which leaves
    out memory freed but kept by the allocator: what a leak grows and warm-up does not."""

    at: float
    run: int
    rss_kib: int
    threads: int
    trimmed_kib: int | None = None


@dataclass(frozen=True)
class Slope:
    per_hour: float  # nan with too few samples
    span: float  # seconds of samples the slope rests on
    samples: int


def _by_run(samples: Sequence[ProcSample], value: str) -> dict[int, list[ProcSample]]:
    """The samples that have ``value``, by run (one active mgr process each), in order."""
    runs: dict[int, list[ProcSample]] = {}
    for sample in samples:
        if getattr(sample, value) is not None:
            runs.setdefault(sample.run, []).append(sample)
    return runs


def slope(samples: Sequence[ProcSample], value: str, *, warmup: float) -> Slope:
    """The pooled within-run least-squares slope of ``value`` (``rss_kib``, ``trimmed_kib`` or
    ``threads``) per hour: each run's own level is taken out, so failovers do not count as
    growth. Samples in the first ``warmup`` s of each run (modules starting, caches filling)
    are left out, and runs with fewer than 3 samples left; so are samples without the value."""
    runs = _by_run(samples, value)
    num = den = span = 0.0
    used = 0
    for run in runs.values():
        first = min(s.at for s in run)
        kept = [s for s in run if s.at - first >= warmup]
        if len(kept) < 3:
            continue
        mean_t = sum(s.at for s in kept) / len(kept)
        mean_v = sum(float(getattr(s, value)) for s in kept) / len(kept)
        num += sum((s.at - mean_t) * (float(getattr(s, value)) - mean_v) for s in kept)
        den += sum((s.at - mean_t) ** 2 for s in kept)
        span += max(s.at for s in kept) - min(s.at for s in kept)
        used += len(kept)
    return Slope(num / den * 3600.0 if den else math.nan, span, used)


@dataclass(frozen=True)
class Life:
    """One stretch of one mgr process being active, after its warm-up: what the slope rests on."""

    run: int
    start: float  # the run's first sample
    minutes: float  # from the first sample to the last
    rss_kib: tuple[int, int]  # first and last sample after the warm-up
    per_hour: float  # this run's own RSS slope after the warm-up; nan under 3 samples


def lives(samples: Sequence[ProcSample], *, warmup: float, value: str = "rss_kib") -> list[Life]:
    """Each active mgr's run, in order, with its RSS (``value``) after ``warmup``: shows
    whether the pooled slope is growth within long lives or only within short, early ones."""
    runs = _by_run(samples, value)
    out = []
    for run, group in runs.items():
        first = min(s.at for s in group)
        kept = sorted((s for s in group if s.at - first >= warmup), key=lambda s: s.at)
        if not kept:
            continue
        out.append(
            Life(
                run,
                first,
                (kept[-1].at - first) / 60.0,
                (getattr(kept[0], value), getattr(kept[-1], value)),
                slope(kept, value, warmup=0.0).per_hour,
            )
        )
    return sorted(out, key=lambda life: life.start)


@dataclass(frozen=True)
class Answer:
    """One client command: when it started, how long it took, whether it succeeded."""

    at: float
    seconds: float
    ok: bool
    what: str


@dataclass(frozen=True)
class Latency:
    count: int
    p50: float
    p99: float
    worst: float
    violations: list[str]


def latency(answers: Sequence[Answer], bound: float, faults: Sequence[Disturbance]) -> Latency:
    """Percentiles of the answers that succeeded; a failed or slower-than-``bound`` answer
    outside every fault's span is a violation."""
    times = sorted(a.seconds for a in answers if a.ok)
    bad = [
        f"{a.what} at {hms(a.at)}: {'failed' if not a.ok else f'{a.seconds:.1f}s'}"
        for a in answers
        if (not a.ok or a.seconds > bound)
        and not any(f.start <= a.at + a.seconds and a.at <= f.end for f in faults)
    ]
    return Latency(
        len(answers), _pct(times, 0.5), _pct(times, 0.99), max(times, default=math.nan), bad
    )


def _pct(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def hms(at: float) -> str:
    """``at`` (epoch s) as HH:MM:SS UTC."""
    seconds = int(at) % 86400
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass(frozen=True)
class Fault:
    """A fault the script injected: ``end`` is when the cluster was seen recovered (None:
    never within the driver's wait)."""

    kind: str
    start: float
    end: float | None
    note: str = ""


@dataclass(frozen=True)
class Recovery:
    fault: Fault
    next_on_time: float | None  # seconds from the fault's start to the next fully met slot


def recoveries(faults: Sequence[Fault], tally: SlotTally) -> list[Recovery]:
    found = []
    for fault in faults:
        slot = first_on_time_after(tally, fault.start)
        found.append(Recovery(fault, None if slot is None else slot - fault.start))
    return found
