"""Text and JSON shapes built from plain data: status rows, schedule text, health checks.

Pure. The handler hands over what it knows (names, times, levels); everything an operator
reads is worded here, so JSON, tables and health checks say the same thing the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Final, NamedTuple, Optional

from .book import RESULTS, STEP_NAMES, ImageRecord, Late
from .levels import LevelSpec
from .pauses import Pauses
from .pycompat import zip_equal
from .requests import OutcomeKind
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
    if when is None:
        return None
    if when.tzinfo is timezone.utc:
        text = _ISO_TEXT.get(when)
        return _utc_text(_ISO_TEXT, when, ISO) if text is None else text
    return when.strftime(ISO)


# UTC times printed, by instant: a slot, a dispatch batch's start and a request's end are shared
# by many status rows. Keyed by the instant, so only UTC times come here (an equal instant in
# another zone prints other fields). Let go when full.
_ISO_TEXT: Final[dict[datetime, str]] = {}
_STATUS_TEXT: Final[dict[datetime, str]] = {}
_MOST_TIMES: Final = 4096


def _utc_text(cache: dict[datetime, str], when: datetime, fmt: str) -> str:
    """``when.strftime(fmt)`` for a UTC time, remembered in ``cache``."""
    if len(cache) >= _MOST_TIMES:
        cache.clear()
    text = cache[when] = when.strftime(fmt)
    return text


def status_time(due: datetime) -> str:
    """Upstream's ``schedule_time``: ``YYYY-MM-DD HH:MM:00`` (in UTC here)."""
    if due.tzinfo is timezone.utc:
        text = _STATUS_TEXT.get(due)
        return _utc_text(_STATUS_TEXT, due, STATUS_TIME) if text is None else text
    return due.strftime(STATUS_TIME)


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
    if record.started is None:
        return "none"
    outcome = record.outcome
    if outcome is None:
        return "running"
    kind, why = RESULTS[outcome.kind]
    return kind if kind in ("created", "failed") else f"{kind}: {why}"


# The keys of a status row whose values move with the time of the call alone; every other key
# changes only when the image's record, due time or pausing level does (``status_rows.py``
# keeps those rows encoded, and splices these two in at each call).
CLOCK_KEYS: Final = ("late", "lateness_seconds")
_ANY_DUE: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_UTC: Final = timezone.utc
_CREATED_KIND: Final = OutcomeKind.CREATED  # row_values' test: a global, not an enum lookup
_CREATED_WORD: Final = RESULTS[_CREATED_KIND][0]  # what result() says of a created attempt


# Every key of a status row but :data:`CLOCK_KEYS`, in the order :func:`row_values` gives
# their values: upstream's two, the per-image ones beside them (times UTC ISO 8601), and
# ``paused_by``, in :data:`OMITTED_IF_NONE`: left out of the row of an image not paused.
# ``status_rows.py`` derives its templates from these, so this is the one list of the keys.
ROW_KEYS: Final = (
    "schedule_time",
    "image",
    "next_run",
    "last_success",
    "missed_slots",
    "last_attempt_slot",
    "last_attempt_start",
    "last_attempt_end",
    "last_result",
    "last_failed_step",
    "last_errno",
    "last_error",
    "failures_in_a_row",
    "peer_lag_skips_in_a_row",
    "last_skip_detail",
    "paused_by",
)
OMITTED_IF_NONE: Final = frozenset({"paused_by"})

StatusEntry = tuple[datetime, ImageRecord, Optional[LevelSpec]]
StatusEntries = list[StatusEntry]


def row_values(due: datetime, record: ImageRecord, paused_by: LevelSpec | None) -> tuple[Any, ...]:
    """The values of one image's ``status`` row, as :data:`ROW_KEYS` names them (scalars:
    str, int, bool or None).

    A ``status`` call computes this for every row that changed since the last, with the
    scheduler's lock held: :func:`iso` is inlined for the UTC times it remembered (five a
    row), and a created attempt's result is named without :func:`result`'s lookup."""
    get = _ISO_TEXT.get
    step = errno = error = skip = None
    started = record.started
    if started is None:
        slot = begun = end = None
        last = "none"
    else:
        when = record.slot
        slot = None if when is None else (when.tzinfo is _UTC and get(when)) or iso(when)
        when = record.finished
        end = None if when is None else (when.tzinfo is _UTC and get(when)) or iso(when)
        outcome = record.outcome
        if outcome is not None and outcome.kind is _CREATED_KIND:
            last = _CREATED_WORD
        else:
            last = result(record)
            if outcome is not None and outcome.kind is OutcomeKind.FAILED:
                step, error = STEP_NAMES[outcome.step], outcome.detail
                errno = -outcome.rc if outcome.rc < 0 else None
            elif outcome is not None and RESULTS[outcome.kind][0] == "skipped":
                skip = outcome.detail
        begun = (started.tzinfo is _UTC and get(started)) or iso(started)
    when = record.next_run
    next_run = None if when is None else (when.tzinfo is _UTC and get(when)) or iso(when)
    when = record.last_success
    success = None if when is None else (when.tzinfo is _UTC and get(when)) or iso(when)
    return (
        status_time(due),
        record.name,
        next_run,
        success,
        record.missed,
        slot,
        begun,
        end,
        last,
        step,
        errno,
        error,
        record.failures,
        record.lag_skips,
        skip,
        None if paused_by is None else paused_by.name,
    )


def record_fields(record: ImageRecord) -> dict[str, Any]:
    """The per-image keys ``status`` adds beside upstream's, but :data:`CLOCK_KEYS` (times
    UTC ISO 8601)."""
    values = row_values(_ANY_DUE, record, None)
    return dict(zip_equal(ROW_KEYS[2:-1], values[2:-1]))


def clock_fields(record: ImageRecord, now: datetime) -> dict[str, Any]:
    """The keys of :data:`CLOCK_KEYS`: how long since the image's last mirror snapshot (whole
    seconds), and whether that is late."""
    late_at = record.late_at
    return {
        "late": late_at is not None and now >= late_at,
        "lateness_seconds": int(record.lateness(now).total_seconds()),
    }


def status_row(due: datetime, record: ImageRecord, paused_by: LevelSpec | None) -> dict[str, Any]:
    """One image's ``status`` row but its :data:`CLOCK_KEYS`: upstream's keys, those of
    :func:`record_fields`, and ``paused_by`` for a paused image."""
    return row_of(row_values(due, record, paused_by))


def row_of(values: tuple[Any, ...]) -> dict[str, Any]:
    """The ``status`` row of :func:`row_values`' ``values``: each key of :data:`ROW_KEYS`
    with its value, those of :data:`OMITTED_IF_NONE` left out when None."""
    row = dict(zip_equal(ROW_KEYS, values))
    for key in OMITTED_IF_NONE:
        if row[key] is None:
            del row[key]
    return row


def status(entries: Iterable[StatusEntry], now: datetime) -> dict[str, Any]:
    """Upstream's ``status`` JSON from (next run, record, paused level) in queue order: each
    row as :func:`status_row`, with its :func:`clock_fields` at ``now``."""
    rows: list[dict[str, Any]] = []
    for due, record, paused_by in entries:
        row = status_row(due, record, paused_by)
        row.update(clock_fields(record, now))
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
    items: dict[Schedule, list[dict[str, str | None]]] = {}  # levels share few schedules
    for spec, schedule in selected:
        shown = items.get(schedule)
        if shown is None:
            shown = items[schedule] = schedule.items_for_json()
        entry: dict[str, Any] = {"name": spec.name, "schedule": shown}
        since = pauses.since(spec) if pauses else None
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
