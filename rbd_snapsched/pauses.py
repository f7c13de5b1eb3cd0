"""Paused levels: no scheduled mirror snapshots for the images under them until resumed.

A pause is an operator flag (like ``ceph osd set noout``), kept beside the schedules, never in
their records (which stay rbd_support's format): one module option ``paused_levels`` holding a
JSON object ``{level id: {"name": level name, "since": ISO 8601 UTC}}``. It survives a mgr
restart or failover. A level whose pool, namespace or image is gone is dropped at load.

The model (``Pauses``) is pure; ``PauseStore`` reads and writes it through the same
``OptionBackend`` protocol as the global schedule and resolves ids through a ``Resolver``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Final

from .errors import NotFound, SnapSchedError
from .levels import ImageSpec, LevelSpec, Resolver, StaleLevel, resolve_id
from .store import OptionBackend

OPTION: Final = "paused_levels"


def covers(level: LevelSpec, image: ImageSpec) -> bool:
    """``image`` lies under ``level`` (``POOL/`` covers every namespace, ``POOL//`` only the
    default one)."""
    if level.pool_id is None:
        return True
    if level.pool_id != image.pool_id:
        return False
    if level.namespace is not None and level.namespace != image.namespace:
        return False
    return level.image_id is None or level.image_id == image.image_id


@dataclass(frozen=True)
class Pauses:
    """Paused levels and since when (aware UTC)."""

    levels: Mapping[LevelSpec, datetime] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.levels)

    def __iter__(self) -> Iterator[tuple[LevelSpec, datetime]]:
        return iter(sorted(self.levels.items(), key=lambda item: item[0].name))

    def since(self, level: LevelSpec) -> datetime | None:
        return self.levels.get(level)

    def covering(self, image: ImageSpec) -> LevelSpec | None:
        """The paused level the image lies under (the most specific one), if any."""
        found = [level for level in self.levels if covers(level, image)]
        return max(found, key=lambda lv: lv.level.value) if found else None

    def toggled(self, level: LevelSpec, *, paused: bool, now: datetime) -> Pauses:
        """``level`` paused (since ``now`` if it was not) or resumed; resuming a level that is
        not paused is ENOENT."""
        if paused:
            return self.with_pause(level, now)
        if self.since(level) is None:
            raise NotFound(f"level {level.name or '(global)'} is not paused")
        return self.without(level)

    def with_pause(self, level: LevelSpec, now: datetime) -> Pauses:
        """Pause ``level``; pausing it again keeps the first time."""
        if level in self.levels:
            return self
        return Pauses({**self.levels, level: now.astimezone(timezone.utc)})

    def without(self, level: LevelSpec) -> Pauses:
        return Pauses({lv: t for lv, t in self.levels.items() if lv != level})

    def to_json(self) -> str:
        return json.dumps(
            {lv.id: {"name": lv.name, "since": t.isoformat()} for lv, t in self},
            indent=4,
            sort_keys=True,
        )


class PauseStore:
    """Loads and saves ``Pauses`` in one module option."""

    def __init__(self, option: OptionBackend, resolver: Resolver, log: logging.Logger) -> None:
        self._option = option
        self._resolver = resolver
        self._log = log

    def load(self) -> Pauses:
        """The stored pauses; stale levels are dropped (and the option rewritten without them),
        a record that does not decode is logged and skipped."""
        text = self._option.get()
        if not text:
            return Pauses()
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            self._log.error("Failed to decode the paused levels %r: %s", text, e)
            return Pauses()
        levels: dict[LevelSpec, datetime] = {}
        stale = False
        for key, entry in raw.items():
            try:
                level = resolve_id(str(key), self._resolver)
                since = datetime.fromisoformat(str(entry["since"])).astimezone(timezone.utc)
            except StaleLevel as e:
                self._log.info("Dropping the pause of %s: %s", key, e)
                stale = True
                continue
            except (SnapSchedError, KeyError, TypeError, ValueError) as e:
                self._log.error("Failed to decode the pause of %r: %s (skipped)", key, e)
                continue
            levels[level] = since
        pauses = Pauses(levels)
        if stale:
            self.save(pauses)
        return pauses

    def save(self, pauses: Pauses) -> None:
        self._option.set(pauses.to_json() if pauses else None)
