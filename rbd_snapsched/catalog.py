"""Every level's schedule in memory, and the lookups the scheduler and commands need."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional

from .levels import ImageSpec, Level, LevelSpec
from .schedule import Schedule

_Key = tuple[Optional[int], Optional[str], Optional[str]]


class ScheduleCatalog:
    """Level -> non-empty Schedule. The most specific level with a schedule governs an image."""

    def __init__(self, entries: dict[LevelSpec, Schedule] | None = None) -> None:
        self._by_level: dict[LevelSpec, Schedule] = {}
        # The stored LevelSpec carries the display name; lookups by id-equal specs find it.
        self._specs: dict[LevelSpec, LevelSpec] = {}
        self._by_key: dict[_Key, tuple[LevelSpec, Schedule]] = {}
        for level, schedule in (entries or {}).items():
            self.set(level, schedule)

    def __bool__(self) -> bool:
        return bool(self._by_level)

    def __len__(self) -> int:
        return len(self._by_level)

    def __iter__(self) -> Iterator[tuple[LevelSpec, Schedule]]:
        return iter(sorted(self._by_level.items(), key=lambda e: e[0].id))

    def copy(self) -> ScheduleCatalog:
        return ScheduleCatalog(dict(self._by_level))

    def get(self, level: LevelSpec) -> Schedule | None:
        return self._by_level.get(level)

    def spec(self, level: LevelSpec) -> LevelSpec:
        """The stored spec equal to ``level`` (it has the display name), else ``level``."""
        return self._specs.get(level, level)

    def set(self, level: LevelSpec, schedule: Schedule) -> None:
        """Store ``schedule`` for ``level``; an empty schedule removes the level."""
        key = (level.pool_id, level.namespace, level.image_id)
        if schedule:
            self._by_level[level] = schedule
            self._specs[level] = level
            self._by_key[key] = (level, schedule)
        else:
            self._by_level.pop(level, None)
            self._specs.pop(level, None)
            self._by_key.pop(key, None)

    def governing_level(self, image: ImageSpec) -> LevelSpec | None:
        """The most specific level with a schedule that covers ``image``."""
        entry = self._find(image)
        return None if entry is None else entry[0]

    def find(self, image: ImageSpec) -> Schedule | None:
        entry = self._find(image)
        return None if entry is None else entry[1]

    def candidates(self, image: ImageSpec) -> list[tuple[LevelSpec, Schedule]]:
        """Every level with a schedule that covers ``image``, most specific first (the first
        one governs)."""
        pool_id, namespace, image_id = image
        keys = ((pool_id, namespace, image_id), (pool_id, namespace, None), (pool_id, None, None))
        found = [self._by_key.get(key) for key in (*keys, (None, None, None))]
        return [entry for entry in found if entry is not None]

    def _find(self, image: ImageSpec) -> tuple[LevelSpec, Schedule] | None:
        # Hot path (every image, every refresh): plain tuple keys, most specific first.
        if not self._by_key:
            return None
        pool_id, namespace, image_id = image
        for key in (
            (pool_id, namespace, image_id),
            (pool_id, namespace, None),
            (pool_id, None, None),
            (None, None, None),
        ):
            entry = self._by_key.get(key)
            if entry is not None:
                return entry
        return None

    def intersects(self, level: LevelSpec) -> bool:
        """Some schedule's level contains ``level`` or lies inside it."""
        return any(stored.intersects(level) for stored in self._by_level)

    def select(self, level: LevelSpec) -> list[tuple[LevelSpec, Schedule]]:
        """What ``list`` shows for ``level``, as upstream.

        The level itself, or, if it has no schedule, its nearest ancestor that has one; plus
        every strict descendant that has one. Other ancestors are not shown.
        """
        chosen: list[LevelSpec] = []
        if level in self._by_level:
            chosen.append(level)
        else:
            nearest = next((a for a in level.ancestors() if a in self._by_level), None)
            if nearest is not None:
                chosen.append(nearest)
        if level.level is not Level.IMAGE:  # an image level has no descendants
            chosen.extend(stored for stored in self._by_level if stored.is_child_of(level))
        return [(self._specs[s], self._by_level[s]) for s in sorted(chosen, key=lambda s: s.id)]
