"""Where schedules live: the global level in a module option, every other level in omap.

The record format is rbd_support's (omap key = level id, value = JSON list of
``{interval, start_time}``), under our own names, so rbd_support never acts on our schedules:
object ``rbd_snapsched_mirror_snapshot_schedule`` in each pool's default namespace, and our
module option ``mirror_snapshot_schedule``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final, NamedTuple, Protocol

from .catalog import ScheduleCatalog
from .errors import SnapSchedError, StorageError
from .levels import LevelSpec, PoolInfo, Resolver, StaleLevel, resolve_id
from .schedule import Schedule

SCHEDULE_OID: Final = "rbd_snapsched_mirror_snapshot_schedule"
UPSTREAM_SCHEDULE_OID: Final = "rbd_mirror_snapshot_schedule"


class PoolGone(LookupError):
    """The pool no longer exists."""


class Skipped(NamedTuple):
    """A stored record the last load did not use: its level is gone (stale) or it is corrupt."""

    where: str  # pool name, or "" for the global option
    key: str
    reason: str
    stale: bool


class Loaded(NamedTuple):
    """What ``ScheduleStore.load`` read: the catalog, and the records it did not use."""

    catalog: ScheduleCatalog
    skipped: list[Skipped]


class OmapBackend(Protocol):
    """Key/value records of one object per pool, in the pool's default namespace."""

    def read(self, pool_id: int) -> dict[str, bytes]:
        """Every record; {} if the object does not exist. Raises PoolGone."""
        ...

    def write(self, pool_id: int, key: str, value: bytes) -> None: ...

    def delete(self, pool_id: int, keys: Sequence[str]) -> None:
        """Remove keys (missing keys and a missing object are fine)."""
        ...


class OptionBackend(Protocol):
    """The global level's record (a module option)."""

    def get(self) -> str | None: ...

    def set(self, value: str | None) -> None: ...


class ModuleOptions(Protocol):
    """The mgr's module option calls ``ModuleOption`` uses (a ``MgrModule``)."""

    def get_module_option_ex(self, module: str, key: str) -> object: ...

    def set_module_option_ex(self, module: str, key: str, val: str) -> None: ...


class ModuleOption:
    """``OptionBackend`` over a (non-localized) module option: ours, or rbd_support's.

    The mgr serves a module option from its own cache: a write sets it at once, then the mon's
    config updates overwrite it as they arrive. Under load an update sent for an earlier write
    can land after a later one, and the cache serves that older value until the next update
    (seen on Reef: ``set(A)``, ``set("")``, then a read of A). The mon acknowledged our write,
    so for ``SETTLE`` seconds after it ``get`` answers the value written; after that, the
    cache again, which by then holds any other writer's value too.
    """

    SETTLE: Final = 30.0

    def __init__(
        self,
        mgr: ModuleOptions,
        owner: str,
        name: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._mgr = mgr
        self._owner = owner
        self._name = name
        self._clock = clock
        self._written: tuple[str | None, float] | None = None  # (value, when) of our last write

    def get(self) -> str | None:
        if self._written is not None:
            value, when = self._written
            if self._clock() - when < self.SETTLE:
                return value
            self._written = None
        return self._read()

    def _read(self) -> str | None:
        value = self._mgr.get_module_option_ex(self._owner, self._name)
        return str(value) if value else None

    def set(self, value: str | None) -> None:
        # Cleared as "", not removed: a Pacific mgr keeps serving a removed option's old value
        # until it restarts, so a standby taking over would resurrect the schedule.
        wanted = value or ""
        where = f"mgr/{self._owner}/{self._name}"
        self._written = None
        try:
            self._mgr.set_module_option_ex(self._owner, self._name, wanted)
        except ValueError as e:  # Reef and Tentacle: the mon's refusal, raised
            raise StorageError(f"the mon did not store {where}: {e}; nothing changed") from e
        # Pacific's mgr only logs a write the mon refuses ("unrecognized config option"): read
        # it back (the cache is set at once on success), so a command never reports a change
        # that was not stored.
        if (self._read() or "") != wanted:
            raise StorageError(
                f"the mon did not store {where} (the mgr log says why); nothing changed"
            )
        self._written = (wanted or None, self._clock())


class ScheduleStore:
    """Loads the catalog from storage and persists one level at a time."""

    def __init__(
        self,
        omap: OmapBackend,
        option: OptionBackend,
        resolver: Resolver,
        log: logging.Logger,
        *,
        prune: bool = True,
    ) -> None:
        self._omap = omap
        self._option = option
        self._resolver = resolver
        self._log = log
        self._prune = prune  # False for storage that is not ours (rbd_support's): read only
        # Corrupt records the last load() reported, (where, key, value): each is logged at
        # error once, then at debug while it stays the same (every refresh reads it again).
        self._reported: set[tuple[str, str, bytes]] = set()

    def load(self, pools: Iterable[PoolInfo], previous: ScheduleCatalog | None = None) -> Loaded:
        """Read every level's schedule from the RBD ``pools`` (and the global option).

        Stale levels (pool, namespace or image gone) are deleted from omap. A record that
        does not decode is logged and skipped. A pool that cannot be read keeps the levels
        it had in ``previous``, so a passing error never drops a schedule. What it did not use
        comes back with the catalog.
        """
        catalog = ScheduleCatalog()
        skipped: list[Skipped] = []
        reported, self._reported = self._reported, set()
        global_text = self._option.get()
        if global_text:
            try:
                catalog.set(LevelSpec.global_level(), Schedule.from_json(global_text))
            except SnapSchedError as e:
                self._corrupt(
                    ("", "", global_text.encode()),
                    reported,
                    "Failed to decode the global schedule %r: %s",
                    global_text,
                    e,
                )
                skipped.append(Skipped("", "", str(e), stale=False))
        for pool in pools:
            try:
                records = self._omap.read(pool.id)
            except PoolGone:
                continue
            except Exception as e:
                self._log.error("Failed to load schedules for pool %s: %s", pool.name, e)
                if previous is not None:
                    for level, schedule in previous:
                        if level.pool_id == pool.id:
                            catalog.set(level, schedule)
                continue
            skipped.extend(self._load_pool(pool, records, catalog, reported))
        return Loaded(catalog, skipped)

    def _corrupt(
        self, record: tuple[str, str, bytes], reported: set[tuple[str, str, bytes]], *args: object
    ) -> None:
        """Log a corrupt record: at error the first time, at debug while it stays the same."""
        self._reported.add(record)
        self._log.log(logging.DEBUG if record in reported else logging.ERROR, *args)

    def _load_pool(
        self,
        pool: PoolInfo,
        records: Mapping[str, bytes],
        catalog: ScheduleCatalog,
        reported: set[tuple[str, str, bytes]],
    ) -> list[Skipped]:
        """Add the pool's levels to ``catalog``; the records it did not use."""
        stale: list[str] = []
        skipped: list[Skipped] = []
        for key, value in records.items():
            level: LevelSpec | None = None
            try:
                level = resolve_id(key, self._resolver)
                if level.pool_id != pool.id:
                    raise SnapSchedError(f"level {key!r} does not belong to pool {pool.name}")
                schedule = Schedule.from_json(value.decode())
            except StaleLevel as e:
                if self._prune:
                    self._log.info("Pruning schedule of %s in pool %s: %s", key, pool.name, e)
                stale.append(key)
                skipped.append(Skipped(pool.name, key, str(e), stale=True))
                continue
            except (SnapSchedError, UnicodeDecodeError) as e:
                self._corrupt(
                    (pool.name, key, value),
                    reported,
                    "Failed to decode schedule %r%s in pool %s: %s (skipped and kept in "
                    "storage; logged once until it changes)",
                    key,
                    f" (level {level.name})" if level is not None else "",
                    pool.name,
                    e,
                )
                skipped.append(Skipped(pool.name, key, str(e), stale=False))
                continue
            catalog.set(level, schedule)
        if stale and self._prune:
            try:
                self._omap.delete(pool.id, stale)
            except Exception as e:
                self._log.error("Failed to prune stale schedules in pool %s: %s", pool.name, e)
        return skipped

    def read(self, level: LevelSpec) -> Schedule | None:
        """One level's stored schedule, read back from storage (None if it has none)."""
        if level.pool_id is None:
            text = self._option.get()
        else:
            value = self._omap.read(level.pool_id).get(level.id)
            text = None if value is None else value.decode()
        return Schedule.from_json(text) if text else None

    def save(self, level: LevelSpec, schedule: Schedule) -> None:
        """Persist one level's schedule; an empty schedule deletes its record."""
        if level.pool_id is None:
            self._option.set(schedule.to_json() if schedule else None)
        elif schedule:
            self._omap.write(level.pool_id, level.id, schedule.to_json().encode())
        else:
            self._omap.delete(level.pool_id, [level.id])
