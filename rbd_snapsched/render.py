"""Text and JSON shapes built from plain data: status rows, schedule text, health checks.

Pure. The handler hands over what it knows (names, times, levels); everything an operator
reads is worded here, so JSON, tables and health checks say the same thing the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple, Optional

from .book import RESULTS, STEP_NAMES, ImageRecord, Late
from .levels import LevelSpec
from .pauses import Pauses
from .pycompat import zip_equal
from .schedule import Schedule, ScheduleItem

STATUS_TIME: Final = "%Y-%m-%d %H:%M:00"  # upstream's schedule_time, in UTC here
ISO: Final = "%Y-%m-%dT%H:%M:%SZ"  # every new time field: UTC ISO 8601
DETAIL_LINES: Final = 30  # health detail lines at most, then "and N more"

Check = dict[str, Any]


class LogLine(NamedTuple):
    """A line worded for the log and not logged yet: the pure rooms (``watchdog.py``,
    ``changes.py``) return these, the handler hands each to ``Logger.log`` as it is (the
    arguments stay apart, as with a direct call)."""

    level: int  # logging.INFO, logging.WARNING, ...
    text: str  # %-style, as Logger.log takes it
    args: tuple[object, ...] = ()


def describe(item: ScheduleItem) -> str:
    """``every 1h`` / ``every 1d starting at 14:00:00-05:00``, as the rbd CLI prints them."""
    text = f"every {item.interval}"
    return text if item.start_time is None else f"{text} starting at {item.start_time}"


def iso(when: datetime | None) -> str | None:
    return None if when is None else when.strftime(ISO)


def duration(span: timedelta) -> str:
    """``45s``, ``3m20s``, ``2h05m``, ``3d04h``: short, for tables and health detail."""
    seconds = max(int(span.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def result(record: ImageRecord) -> str:
    """The last attempt in a word or two: ``created``, ``failed``, ``running``, ``skipped: …``."""
    attempt = record.last_attempt
    if attempt is None:
        return "none"
    if attempt.outcome is None:
        return "running"
    kind, why = RESULTS[attempt.outcome.kind]
    return kind if kind in ("created", "failed") else f"{kind}: {why}"


def image_fields(record: ImageRecord, now: datetime) -> dict[str, Any]:
    """The per-image keys ``status`` adds beside upstream's (times UTC ISO 8601)."""
    attempt = record.last_attempt
    outcome = attempt.outcome if attempt is not None else None
    late_at = record.late_at
    failed = attempt is not None and attempt.failed and outcome is not None
    skipped = outcome is not None and RESULTS[outcome.kind][0] == "skipped"
    return {
        "next_run": iso(record.next_run),
        "last_success": iso(record.last_success),
        "lateness_seconds": int(record.lateness(now).total_seconds()),
        "late": late_at is not None and now >= late_at,
        "missed_slots": record.missed,
        "last_attempt_slot": iso(attempt.slot) if attempt else None,
        "last_attempt_start": iso(attempt.started) if attempt else None,
        "last_attempt_end": iso(attempt.finished) if attempt else None,
        "last_result": result(record),
        "last_failed_step": STEP_NAMES[outcome.step] if failed and outcome else None,
        "last_errno": -outcome.rc if failed and outcome and outcome.rc < 0 else None,
        "last_error": outcome.detail if failed and outcome else None,
        "failures_in_a_row": record.failures,
        "peer_lag_skips_in_a_row": record.lag_skips,
        "last_skip_detail": outcome.detail if skipped and outcome else None,
    }


StatusEntry = tuple[datetime, ImageRecord, Optional[LevelSpec]]
StatusEntries = list[StatusEntry]


def status(entries: Iterable[StatusEntry], now: datetime) -> dict[str, Any]:
    """Upstream's ``status`` JSON from (next run, record, paused level) in queue order, each
    row with the extra keys of :func:`image_fields`; a paused image also has ``paused_by``."""
    rows: list[dict[str, Any]] = []
    for due, record, paused_by in entries:
        row: dict[str, Any] = {"schedule_time": due.strftime(STATUS_TIME), "image": record.name}
        row.update(image_fields(record, now))
        if paused_by is not None:
            row["paused_by"] = paused_by.name
        rows.append(row)
    return {"scheduled_images": rows}


REPORT_COLUMNS: Final = ("IMAGE", "NEXT RUN", "LAST SUCCESS", "AGO", "LATE", "MISSED", "LAST")


def report(entries: Iterable[StatusEntry], now: datetime) -> str:
    """``status`` as a table for people, latest first: one line per scheduled image."""
    rows = sorted(entries, key=lambda e: (e[1].reference, e[1].name))
    table = [REPORT_COLUMNS]
    for due, record, paused_by in rows:
        success = record.last_success
        last = result(record)
        if record.failures:
            last = f"{last} x{record.failures}"
        if paused_by is not None:
            last = f"{last}, paused by {paused_by.name}"
        table.append(
            (
                record.name,
                due.strftime("%Y-%m-%d %H:%M"),
                success.strftime("%Y-%m-%d %H:%M:%S") if success else "never",
                duration(now - success) if success else "-",
                "yes" if record.late_at is not None and now >= record.late_at else "no",
                str(record.missed),
                last,
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(REPORT_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip_equal(row, widths)).rstrip() for row in table
    ]
    return "\n".join(lines) + "\n"


def listing(selected: Sequence[tuple[LevelSpec, Schedule]], pauses: Pauses) -> dict[str, Any]:
    """Upstream's ``list`` JSON (level id -> name, schedule); a paused level adds
    ``paused_since``."""
    listed: dict[str, Any] = {}
    for spec, schedule in selected:
        entry: dict[str, Any] = {"name": spec.name, "schedule": schedule.items_for_json()}
        since = pauses.since(spec)
        if since is not None:
            entry["paused_since"] = since.isoformat()
        listed[spec.id] = entry
    return listed


def paused_text(level: str, *, paused: bool, covered: int) -> str:
    verb = "paused" if paused else "resumed"
    return f"{verb} {level or '(global)'}: {covered} scheduled image(s) under it"


def explain(
    name: str,
    candidates: Sequence[tuple[str, Sequence[ScheduleItem]]],
    *,
    rbd_support: str | None,
    paused_by: str | None,
    next_runs: Sequence[datetime],
) -> dict[str, Any]:
    """One image's ``explain`` entry: who governs it, why, and when it runs next (UTC)."""
    governing = candidates[0][0] if candidates else None
    if rbd_support is not None:
        why = f"rbd_support still schedules it (its level {rbd_support or '(global)'}): ours waits"
    elif governing is None:
        why = "no level above it has a schedule"
    else:
        why = f"{governing or '(global)'} is the most specific level with a schedule"
    return {
        "image": name,
        "governed_by": governing,
        "why": why,
        "levels": [
            {"level": level, "schedule": ", ".join(describe(item) for item in items)}
            for level, items in candidates
        ],
        "rbd_support": rbd_support,
        "paused_by": paused_by,
        "next_runs": [due.strftime("%Y-%m-%dT%H:%M:00Z") for due in next_runs],
    }


def capped(lines: Sequence[str], most: int = DETAIL_LINES) -> list[str]:
    """At most ``most`` detail lines; past that, the first ``most - 1`` and "and N more"."""
    if len(lines) <= most:
        return list(lines)
    return [*lines[: most - 1], f"and {len(lines) - most + 1} more"]


def no_tx_peer(pool_names: Sequence[str]) -> Check:
    names = sorted(pool_names)
    return {
        "severity": "warning",
        "summary": f"{len(names)} pool(s) with mirror snapshot schedules but no tx peer",
        "count": len(names),
        "detail": capped(
            [
                f"pool {name}: scheduled images get no mirror snapshots until a peer is added"
                for name in names
            ]
        ),
    }


def paused(levels: Sequence[tuple[str, datetime]]) -> Check:
    """The operator flag left on: like OSDMAP_FLAGS, named until resumed."""
    return {
        "severity": "warning",
        "summary": f"{len(levels)} level(s) paused: no scheduled mirror snapshots there",
        "count": len(levels),
        "detail": capped(
            [
                f"level {name or '(global)'} paused since {since.strftime(STATUS_TIME)} UTC "
                f"(ceph rbd mirror snapshot schedule resume '{name}')"
                for name, since in levels
            ]
        ),
    }


def rbd_support_schedules(level_names: Sequence[str]) -> Check:
    levels = [name or "(global)" for name in level_names]
    return {
        "severity": "warning",
        "summary": f"rbd_support still holds {len(levels)} mirror snapshot schedule(s) "
        "(the Ceph dashboard writes its schedules there): its images are not scheduled by "
        "rbd_snapsched",
        "count": len(levels),
        "detail": capped(
            [
                "move them with `ceph rbd mirror snapshot schedule takeover` (add --dry-run "
                "to preview), or have them adopted as they appear: `ceph config set mgr "
                "mgr/rbd_snapsched/adopt_rbd_support_schedules true`",
                *(f"rbd_support schedule at level {name}" for name in levels),
            ]
        ),
    }


def late(images: Sequence[Late], factor: float) -> Check:
    """Images with no mirror snapshot for longer than ``factor`` times their interval."""
    lines = []
    for item in images:
        record = item.record
        since = "" if record.last_success else " since it became known"
        interval = record.interval or timedelta(0)
        lines.append(
            f"image {record.name}: no mirror snapshot for {duration(item.lateness)}{since} "
            f"(interval {duration(interval)}, {record.missed} slot(s) missed)"
        )
    return {
        "severity": "warning",
        "summary": f"{len(images)} image(s) without a mirror snapshot for more than "
        f"{factor:g}x their interval",
        "count": len(images),
        "detail": capped(lines),
    }


def peer_lagging(images: Sequence[ImageRecord]) -> Check:
    """Images whose slots are skipped because a peer has not synced the last snapshot."""
    lines = []
    for record in images:
        outcome = record.outcome
        if outcome is None:
            continue
        lines.append(
            f"image {record.name}: {record.lag_skips} slot(s) skipped in a row, last at "
            f"{iso(record.finished)}: {outcome.detail}"
        )
    return {
        "severity": "warning",
        "summary": f"{len(lines)} image(s) whose mirror peer has not synced the previous "
        "mirror snapshot: scheduled snapshots skipped until it does",
        "count": len(lines),
        "detail": capped(lines),
    }


def failing(images: Sequence[ImageRecord]) -> Check:
    """Images whose last snapshot attempt failed, with the step and the error."""
    lines = []
    for record in images:
        attempt = record.last_attempt
        outcome = attempt.outcome if attempt is not None else None
        if attempt is None or outcome is None:
            continue
        when = iso(attempt.finished)
        lines.append(
            f"image {record.name}: {record.failures} attempt(s) failed in a row, last at "
            f"{when} in step {STEP_NAMES[outcome.step]}: {outcome.detail}"
        )
    return {
        "severity": "warning",
        "summary": f"{len(lines)} image(s) whose last mirror snapshot attempt failed",
        "count": len(lines),
        "detail": capped(lines),
    }
