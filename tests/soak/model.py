"""What one soak cluster should hold, from the commands that succeeded on it.

The model is the reference the checks hold the cluster to, never the module's word: which
schedule items each level has (compared with ``rbd mirror snapshot schedule ls -R``), and which
images are eligible for scheduled snapshots (they exist, are primary, are snapshot-mirrored,
fall under a schedule and are not paused), with each image's slot grid. Every change is
recorded with its time, so ``accounting`` can replay when each image was due.

A command whose outcome is unknown (the CLI timed out: the mgr may still apply it) leaves its
level *uncertain*: the next listing may show either state, and the model adopts the one it
shows; until then the level's images are disturbed (a miss there is explained, not failed).

Changes also open *disturbances*: spans in which a missed slot is explained by an event (a
fault, a change of the image, its schedule or an option), each with the cause the report
gives. Standard library only, no cluster code.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from tests.soak.script import ImageSpot, Layout, Level

# An image's slot grid while it is eligible: (interval, phase) in minutes, its slots falling on
# the minutes m with (m - phase) % interval == 0; None while it is not eligible.
Signature = Optional[frozenset[tuple[int, int]]]
RowKey = tuple[str, str, str]  # (pool, namespace, image) as `ls -R --format json` prints them


@dataclass
class ImageState:
    spot: ImageSpot
    name: str
    exists: bool = True
    primary: bool = True
    mirrored: bool = True
    image_id: str | None = None


@dataclass(frozen=True)
class Disturbance:
    """From ``start`` to ``end`` (epoch s), a missed slot of the images ``handles`` (None:
    every image) is explained by ``cause``."""

    start: float
    end: float
    cause: str
    handles: frozenset[str] | None = None

    def explains(self, handle: str, at: float) -> bool:
        return self.start <= at <= self.end and (self.handles is None or handle in self.handles)


@dataclass
class _Uncertain:
    since: float
    cause: str
    candidates: list[frozenset[int]]


@dataclass
class ClusterModel:
    """One cluster's expected state. ``bound``: seconds a slot may take to be met, which also
    reaches back from an event to the slots it may have disturbed."""

    layout: Layout
    bound: float
    images: dict[str, ImageState] = field(default_factory=dict)
    schedules: dict[Level, frozenset[int]] = field(default_factory=dict)
    paused: set[Level] = field(default_factory=set)
    stagger: bool = False
    pool_ids: dict[str, int] = field(default_factory=dict)
    timeline: dict[str, list[tuple[float, Signature]]] = field(default_factory=dict)
    disturbances: list[Disturbance] = field(default_factory=list)
    uncertain: dict[Level, _Uncertain] = field(default_factory=dict)
    # (pool, namespace, deadline): image-level rows of deleted images may linger in the
    # listing until the cluster prunes them at a refresh.
    pending_prunes: list[tuple[str, str, float]] = field(default_factory=list)
    unsure_rows: set[RowKey] = field(default_factory=set)  # see image_unsure
    # (row key, deadline): a renamed image's rows, under its old name and its new one, until
    # the cluster learns the name at a refresh (rbd_support and ours alike)
    pending_renames: list[tuple[RowKey, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for spot in self.layout.images:
            self.images.setdefault(spot.handle, ImageState(spot, spot.handle))

    # -- queries ----------------------------------------------------------------------------

    def name_of(self, handle: str) -> str:
        image = self.images.get(handle)
        return image.name if image is not None else handle

    def spec(self, level: Level) -> str:
        return level.spec(self.name_of(level.image) if level.image else None)

    def rbd_args(self, level: Level) -> list[str]:
        return level.rbd_args(self.name_of(level.image) if level.image else None)

    def governing(self, handle: str) -> tuple[Level, frozenset[int]] | None:
        """The most specific level with a schedule over the image, and its intervals."""
        spot = self.images[handle].spot
        found = [(lv, items) for lv, items in self.schedules.items() if items and lv.covers(spot)]
        return max(found, key=lambda f: f[0].rank) if found else None

    def eligible(self, handle: str) -> bool:
        image = self.images[handle]
        if not (image.exists and image.primary and image.mirrored):
            return False
        if any(level.covers(image.spot) for level in self.paused):
            return False
        return self.governing(handle) is not None

    def signature(self, handle: str) -> Signature:
        governing = self.governing(handle)
        if governing is None or not self.eligible(handle):
            return None
        return frozenset((minutes, self.phase(handle, minutes)) for minutes in governing[1])

    def phase(self, handle: str, minutes: int) -> int:
        """The image's slot phase: 0, or with ``stagger`` on, CRC-32 of ``<pool id>/<namespace>/
        <image id>`` modulo the interval (README, *Staggering*), computed here from the ids."""
        image = self.images[handle]
        pool_id = self.pool_ids.get(image.spot.pool)
        if not self.stagger or image.image_id is None or pool_id is None:
            return 0
        key = zlib.crc32(f"{pool_id}/{image.spot.namespace}/{image.image_id}".encode())
        return key % minutes

    def covered(self, level: Level) -> frozenset[str]:
        return frozenset(h for h, im in self.images.items() if im.exists and level.covers(im.spot))

    def handle_of(self, pool: str, namespace: str, name: str, image_id: str | None) -> str | None:
        """The handle of the live image ``pool/namespace/name`` (or of id ``image_id``)."""
        for handle, image in self.images.items():
            if image_id is not None and image.image_id == image_id:
                return handle
        for handle, image in self.images.items():
            spot = image.spot
            if image.exists and (spot.pool, spot.namespace, image.name) == (pool, namespace, name):
                return handle
        return None

    # -- changes ----------------------------------------------------------------------------

    def record(self, at: float) -> None:
        """Append each image whose signature changed at ``at`` to its timeline."""
        for handle in self.images:
            signature = self.signature(handle)
            line = self.timeline.setdefault(handle, [])
            if not line or line[-1][1] != signature:
                line.append((at, signature))

    def disturb(
        self, start: float, end: float, cause: str, handles: Iterable[str] | None = None
    ) -> None:
        frozen = None if handles is None else frozenset(handles)
        self.disturbances.append(Disturbance(start, end, cause, frozen))

    def schedule_change(
        self,
        at: float,
        level: Level,
        interval: int | None,
        *,
        add: bool,
        outcome: str,
        settle: float,
    ) -> None:
        """A schedule command at ``at`` that ended ``outcome`` (``ok``, ``failed`` or
        ``unknown``); its images are disturbed from ``bound`` before it to ``settle`` after."""
        if outcome == "failed":
            return
        cause = f"schedule {'add' if add else 'remove'} {self.spec(level)}"
        self.disturb(at - self.bound, at + settle, cause, self.covered(level))
        if outcome == "unknown":
            pending = self.uncertain.get(level)
            before = self.schedules.get(level, frozenset())
            candidates = pending.candidates if pending else [before]
            after = [_apply(c, interval, add) for c in candidates]
            self.uncertain[level] = _Uncertain(
                pending.since if pending else at, cause, list(dict.fromkeys([*candidates, *after]))
            )
        elif level in self.uncertain:
            pending = self.uncertain[level]
            pending.candidates = list(
                dict.fromkeys(_apply(c, interval, add) for c in pending.candidates)
            )
        self._set(level, _apply(self.schedules.get(level, frozenset()), interval, add))
        self.record(at)

    def image_created(self, at: float, spot: ImageSpot, image_id: str | None) -> None:
        self.images[spot.handle] = ImageState(spot, spot.handle, image_id=image_id)
        self.record(at)

    def image_deleted(self, at: float, handle: str, prune_within: float) -> None:
        """Deleted: its image-level schedules and pauses go (the cluster prunes the schedules
        at a refresh, so their rows may linger ``prune_within`` s)."""
        image = self.images[handle]
        image.exists = False
        for level in [lv for lv in self.schedules if lv.image == handle]:
            del self.schedules[level]
            self.uncertain.pop(level, None)
            self.pending_prunes.append((image.spot.pool, image.spot.namespace, at + prune_within))
        self.paused = {lv for lv in self.paused if lv.image != handle}
        self.record(at)

    def image_unsure(self, at: float, handle: str, cause: str, names: Iterable[str]) -> None:
        """A command on the image ended without an answer (it may have happened, in part):
        its slots are explained from then on, and its image-level rows, under any of
        ``names``, are not compared any more."""
        spot = self.images[handle].spot
        self.disturb(at - self.bound, math.inf, f"unknown outcome: {cause}", [handle])
        self.unsure_rows.update((spot.pool, spot.namespace, name) for name in names)

    def image_renamed(self, at: float, handle: str, name: str, rename_within: float) -> None:
        """The image is ``name`` now; its image-level rows may show either name until
        ``rename_within`` s from now (names are learned at a refresh)."""
        levels = [level for level in self.schedules if level.image == handle]
        old = [self.row_key(level) for level in levels]
        self.images[handle].name = name
        deadline = at + rename_within
        self.pending_renames += [(key, deadline) for key in old]
        self.pending_renames += [(self.row_key(level), deadline) for level in levels]
        self.record(at)

    def image_primary(self, at: float, handle: str, primary: bool) -> None:
        self.images[handle].primary = primary
        self.record(at)

    def image_mirrored(self, at: float, handle: str, mirrored: bool) -> None:
        self.images[handle].mirrored = mirrored
        self.record(at)

    def pause(self, at: float, level: Level, paused: bool) -> None:
        if paused:
            self.paused.add(level)
        else:
            self.paused.discard(level)
        self.record(at)

    def set_stagger(self, at: float, on: bool) -> None:
        self.stagger = on
        self.record(at)

    def finish(self, at: float) -> None:
        """Close what is still open at the run's end: unresolved levels stay disturbed."""
        for level, pending in self.uncertain.items():
            cause = f"unknown outcome: {pending.cause}"
            self.disturb(pending.since - self.bound, at, cause, self.covered(level))
        self.uncertain.clear()

    # -- the listing ------------------------------------------------------------------------

    def row_key(self, level: Level) -> RowKey:
        if level.pool is None:
            return ("-", "-", "-")
        if level.image is None:
            return (level.pool, level.namespace or "-", "-")
        return (level.pool, level.namespace or "", self.name_of(level.image))

    def expected_listing(self) -> dict[RowKey, frozenset[str]]:
        return {
            self.row_key(level): _texts(items) for level, items in self.schedules.items() if items
        }

    def check_listing(self, rows: Sequence[Mapping[str, Any]], now: float) -> list[str]:
        """Compare ``ls -R --format json`` rows with the model; each difference, described.
        An uncertain level takes the state the listing shows, if it is one of its
        candidates (its disturbance ends now)."""
        seen = listing_of(rows)
        for level, pending in list(self.uncertain.items()):
            shown = seen.get(self.row_key(level), frozenset())
            for candidate in pending.candidates:
                if _texts(candidate) == shown:
                    self._set(level, candidate)
                    del self.uncertain[level]
                    cause = f"unknown outcome: {pending.cause}"
                    self.disturb(pending.since - self.bound, now, cause, self.covered(level))
                    self.record(now)
                    break
        expected = self.expected_listing()
        lingering = {(p, ns) for p, ns, deadline in self.pending_prunes if deadline > now}
        unsure = {self.row_key(level) for level in self.uncertain} | self.unsure_rows
        unsure |= {key for key, deadline in self.pending_renames if deadline > now}
        problems = []
        for key in sorted(set(seen) | set(expected)):
            if key in unsure or seen.get(key) == expected.get(key):
                continue
            if key not in expected and key[2] != "-" and (key[0], key[1]) in lingering:
                continue  # a deleted image's schedule, not pruned yet
            problems.append(
                f"{'/'.join(key)}: listed {sorted(seen.get(key, ()))}, "
                f"expected {sorted(expected.get(key, ()))}"
            )
        return problems

    def _set(self, level: Level, items: frozenset[int]) -> None:
        if items:
            self.schedules[level] = items
        else:
            self.schedules.pop(level, None)


def _apply(items: frozenset[int], interval: int | None, add: bool) -> frozenset[int]:
    if add:
        return items | {interval} if interval is not None else items
    return frozenset() if interval is None else items - {interval}


def _texts(items: Iterable[int]) -> frozenset[str]:
    return frozenset(f"{minutes}m@" for minutes in items)


def listing_of(rows: Sequence[Mapping[str, Any]]) -> dict[RowKey, frozenset[str]]:
    """``ls -R --format json`` rows as {(pool, namespace, image): {"<interval>@<start>"}}."""
    found: dict[RowKey, frozenset[str]] = {}
    for row in rows:
        key = (str(row.get("pool", "")), str(row.get("namespace", "")), str(row.get("image", "")))
        items = row.get("items") or []
        found[key] = frozenset(f"{i.get('interval')}@{i.get('start_time') or ''}" for i in items)
    return found


def initial_model(layout: Layout, bound: float, at: float) -> ClusterModel:
    """The model of a cluster set up as ``layout`` says, at ``at``."""
    model = ClusterModel(layout, bound)
    for level, minutes in layout.schedules:
        model.schedules[level] = model.schedules.get(level, frozenset()) | {minutes}
    model.record(at)
    return model
