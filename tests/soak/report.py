"""The soak's report: each cluster's figures side by side, and the invariants that failed.

``ClusterResult`` gathers what the driver recorded and ``accounting`` judged for one cluster;
``violations`` lists the invariants it broke under ``Bounds``; ``format_report`` prints both
clusters in one table (ours first), then each violation. Only ours fails the run: rbd_support
is the comparison. Standard library only.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median

from tests.soak.accounting import Latency, Life, Recovery, Slope, SlotTally, hms


@dataclass(frozen=True)
class Bounds:
    """What the invariants allow. ``slot``: seconds after a slot its snapshot may come;
    ``status``: seconds a ``status`` may take outside faults; slopes per hour, judged only
    when they rest on at least ``slope_span`` s of samples (a short run gives no slope)."""

    slot: float = 55.0
    status: float = 15.0
    rss_mib_per_hour: float = 64.0
    threads_per_hour: float = 10.0
    slope_span: float = 20 * 60.0


@dataclass
class ClusterResult:
    name: str
    tally: SlotTally
    recoveries: list[Recovery]
    rss: Slope
    threads: Slope
    status: Latency
    restarts_caused: int  # mgr processes the script restarted or failed over
    active_changes: int  # changes of the active mgr seen in the mgr map
    crashes: list[str]  # mgr deaths the script did not cause; crash dir entries
    listing_checks: int
    listing_problems: list[str]
    open_checks: int | None  # None: no such gauges (rbd_support)
    open_problems: list[str]
    refused: Counter[str] = field(default_factory=Counter)  # commands refused, by event kind
    notes: list[str] = field(default_factory=list)
    lives: list[Life] = field(default_factory=list)  # the RSS slope's runs, one by one
    rss_raw: Slope | None = None  # the raw RSS's slope, when ``rss`` is after malloc_trim
    rss_trimmed: bool = False  # ``rss`` is the RSS after malloc_trim(0) (see driver)


def violations(result: ClusterResult, bounds: Bounds) -> list[str]:
    found = list(result.tally.violations)
    found += [f"status: {v}" for v in result.status.violations]
    found += [f"crash: {c}" for c in result.crashes]
    found += [f"schedules: {p}" for p in result.listing_problems]
    found += [f"left open: {p}" for p in result.open_problems]
    for what, got, most, scale in (
        ("RSS", result.rss, bounds.rss_mib_per_hour, 1024.0),
        ("threads", result.threads, bounds.threads_per_hour, 1.0),
    ):
        per_hour = got.per_hour / scale
        if got.span >= bounds.slope_span and per_hour > most:
            found.append(f"{what} grows {per_hour:.1f}/h (bound {most:g}/h)")
    raw = result.rss_raw
    if result.rss_trimmed and not result.rss.samples and raw and raw.span >= bounds.slope_span:
        found.append("RSS not measured after malloc_trim (gdb failed at every sample)")
    return found


def _slope(got: Slope, scale: float, unit: str, bounds: Bounds) -> str:
    if math.isnan(got.per_hour):
        return "n/a (too few samples)"
    judged = "" if got.span >= bounds.slope_span else ", not judged: short"
    return f"{got.per_hour / scale:+.1f} {unit}/h ({got.span / 60:.0f} min{judged})"


def _causes(counts: Counter[str]) -> str:
    if not counts:
        return "0"
    parts = ", ".join(f"{cause} {n}" for cause, n in counts.most_common())
    return f"{sum(counts.values())} ({parts})"


def _recovery(result: ClusterResult) -> str:
    seconds = [r.next_on_time for r in result.recoveries if r.next_on_time is not None]
    never = sum(1 for r in result.recoveries if r.next_on_time is None)
    if not result.recoveries:
        return "no faults"
    text = f"median {median(seconds):.0f}s, max {max(seconds):.0f}s" if seconds else "-"
    return text + (f", {never} never" if never else "")


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value * 1000:.0f} ms"


def rows(result: ClusterResult, bounds: Bounds) -> list[tuple[str, str]]:
    t = result.tally
    opened = (
        "n/a (no such gauges)"
        if result.open_checks is None
        else f"{result.open_checks} checks, {len(result.open_problems)} failed"
    )
    return [
        ("slots due (judged)", str(t.due)),
        ("met on time", f"{t.met} ({100.0 * t.met / t.due:.1f}%)" if t.due else "0"),
        ("late, by cause", _causes(t.late)),
        ("missed, by cause", _causes(t.missed)),
        ("doubled", str(len(t.doubled))),
        ("not judged (image gone before seen)", str(t.unobserved)),
        ("snapshots outside slots (catch-up)", str(t.outside)),
        ("fault -> next on-time slot", _recovery(result)),
        (
            "RSS slope, after malloc_trim" if result.rss_trimmed else "RSS slope",
            _slope(result.rss, 1024.0, "MiB", bounds),
        ),
        *(
            [("RSS slope, raw (not judged)", _slope(result.rss_raw, 1024.0, "MiB", bounds))]
            if result.rss_trimmed and result.rss_raw is not None
            else []
        ),
        ("threads slope", _slope(result.threads, 1.0, "threads", bounds)),
        (
            "status p50 / p99 / max",
            f"{_ms(result.status.p50)} / {_ms(result.status.p99)} / {_ms(result.status.worst)}"
            f" ({result.status.count} calls, {len(result.status.violations)} over bound)",
        ),
        (
            "mgr restarts caused / active changes",
            f"{result.restarts_caused} / {result.active_changes}",
        ),
        ("mgr crashes", str(len(result.crashes))),
        (
            "schedule listings equal to the model",
            f"{result.listing_checks - len(result.listing_problems)} of {result.listing_checks}",
        ),
        ("nothing left open", opened),
        ("commands refused", _causes(result.refused)),
        ("invariants failed", str(len(violations(result, bounds)))),
    ]


def format_report(results: Sequence[ClusterResult], bounds: Bounds) -> str:
    """Every cluster's rows side by side, then each cluster's notes and violations."""
    table = [rows(r, bounds) for r in results]
    labels = [label for label, _ in table[0]]
    columns = [[value for _, value in t] for t in table]
    widths = [max(len("figure"), *(len(label) for label in labels))]
    widths += [max(len(r.name), *(len(v) for v in col)) for r, col in zip(results, columns)]
    out = ["  ".join(h.ljust(w) for h, w in zip(["figure", *(r.name for r in results)], widths))]
    out.append("  ".join("-" * w for w in widths))
    for i, label in enumerate(labels):
        cells = [label, *(col[i] for col in columns)]
        out.append("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
    for result in results:
        for note in result.notes:
            out.append(f"{result.name}: note: {note}")
        for r in result.recoveries:
            after = "-" if r.fault.end is None else f"{r.fault.end - r.fault.start:.0f}s"
            nxt = "never" if r.next_on_time is None else f"{r.next_on_time:.0f}s"
            out.append(
                f"{result.name}: fault {r.fault.kind} at {hms(r.fault.start)}: recovered "
                f"after {after}, next on-time slot after {nxt} {r.fault.note}".rstrip()
            )
        for life in result.lives:
            rate = "-" if math.isnan(life.per_hour) else f"{life.per_hour / 1024:+.0f} MiB/h"
            out.append(
                f"{result.name}: mgr life {life.run} from {hms(life.start)}, "
                f"{life.minutes:.0f} min: RSS{' after malloc_trim' if result.rss_trimmed else ''}"
                f" {life.rss_kib[0] / 1024:.0f} -> "
                f"{life.rss_kib[1] / 1024:.0f} MiB after warm-up ({rate})"
            )
        found = violations(result, bounds)
        for v in found[:50]:
            out.append(f"{result.name}: VIOLATION {v}")
        if len(found) > 50:
            out.append(f"{result.name}: … and {len(found) - 50} more violations")
    return "\n".join(out)
