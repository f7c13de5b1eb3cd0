"""``explain``: which level governs each image, why, and its next runs. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from . import render
from .catalog import ScheduleCatalog
from .levels import ImageSpec, LevelSpec
from .pauses import Pauses
from .schedule import stagger_key


def explain(
    level: LevelSpec,
    images: Mapping[ImageSpec, str],
    *,
    catalog: ScheduleCatalog,
    upstream: ScheduleCatalog,
    pauses: Pauses,
    now: datetime,
    count: int,
    stagger: bool = False,
) -> dict[str, Any]:
    """One entry per image (by name): candidate levels, rbd_support, pause, next ``count`` runs
    (staggered per image when ``stagger`` is on, as the scheduler runs them)."""
    entries: list[dict[str, Any]] = []
    for image, name in sorted(images.items(), key=lambda item: item[1]):
        candidates = catalog.candidates(image)
        theirs = upstream.governing_level(image)
        paused = pauses.covering(image)
        runs: list[datetime] = []
        if candidates and theirs is None:
            schedule, due = candidates[0][1], now
            key = stagger_key(*image) if stagger else None
            for _ in range(count):
                try:
                    due = schedule.next_run(due, key)
                except OverflowError:  # the next run would be after 9999-12-31: there is none
                    break
                runs.append(due)
        entries.append(
            render.explain(
                name,
                [(lv.name, list(items)) for lv, items in candidates],
                rbd_support=None if theirs is None else theirs.name,
                paused_by=None if paused is None else paused.name,
                next_runs=runs,
            )
        )
    return {"level": level.name, "now": render.iso(now), "images": entries}
