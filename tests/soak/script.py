"""The soak's script: every event of a run, generated up front from one seed.

A run is reproduced by its seed (and its ``--minutes`` and ``--images``): ``generate`` draws
from ``random.Random(seed)`` only, simulating the state its own events make (which images
exist and are primary, which schedule items and pauses there are), so each event makes sense
when it was drawn: a promote picks a demoted image, a remove an item that was added. Whether it
succeeds on a cluster is the driver's business; the model records what did.

Two lanes: faults (one at a time, each given time to recover before the next) and operations
(image, schedule, pause, option and client events, which keep coming during faults: that
overlap is what the fault suite never tries). Standard library only, no cluster code.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

FAULTS = ("mgr_failover", "mgr_kill", "blocklist", "osd_restart", "mon_restart")
IMAGE_EVENTS = (
    "image_create",
    "image_delete",
    "image_rename",
    "image_demote",
    "image_promote",
    "mirror_disable",
    "mirror_enable",
)
INTERVALS = (1, 2, 5)  # minutes: the soak's schedule intervals
CLIS = ("rbd", "ceph")  # `rbd mirror snapshot schedule …` and `ceph rbd mirror snapshot schedule …`
OPTIONS = {
    # Ours has all three; rbd_support only max_concurrent_snap_create (the driver says so).
    "max_concurrent_snap_create": ("10", "20", "50"),
    "refresh_interval": ("15", "30", "60"),
    "stagger": ("true", "false"),
}
# Relative weights of the operation events (a drawn event that is impossible in the simulated
# state, e.g. a promote with no demoted image, is dropped).
OP_WEIGHTS = {
    "image_create": 2.0,
    "image_delete": 1.0,
    "image_rename": 1.0,
    "image_demote": 1.0,
    "image_promote": 1.5,
    "mirror_disable": 1.0,
    "mirror_enable": 1.0,
    "schedule_add": 3.0,
    "schedule_remove": 2.0,
    "pause": 0.7,
    "option": 1.0,
    "clients": 1.0,
}
RECOVERY_GAP = 60.0  # seconds after one fault's planned end before the next fault may start


@dataclass(frozen=True)
class Level:
    """A schedule (or pause) level: global (all None), a pool, a named namespace of a pool, or
    an image (``image`` is the image's handle: the name it was created with, which never
    changes, while its name on the cluster may: see ``model.ClusterModel.name_of``)."""

    pool: str | None = None
    namespace: str | None = None
    image: str | None = None

    @property
    def kind(self) -> str:
        if self.pool is None:
            return "global"
        if self.image is not None:
            return "image"
        return "pool" if self.namespace is None else "namespace"

    @property
    def sort_key(self) -> tuple[int, str, str, str]:
        return (self.rank, self.pool or "", self.namespace or "", self.image or "")

    @property
    def rank(self) -> int:
        """How specific the level is: the most specific level with a schedule governs."""
        return ("global", "pool", "namespace", "image").index(self.kind)

    def covers(self, spot: ImageSpot) -> bool:
        if self.pool is None:
            return True
        if self.image is not None:
            return self.image == spot.handle
        if self.pool != spot.pool:
            return False
        return self.namespace is None or self.namespace == spot.namespace

    def spec(self, image_name: str | None = None) -> str:
        """The level spec of the ``ceph rbd mirror snapshot schedule`` commands (``POOL/``,
        ``POOL/NS/``, ``POOL/NS/IMAGE`` or ``POOL/IMAGE``), the image under ``image_name``."""
        if self.pool is None:
            return ""
        if self.image is None:
            return f"{self.pool}/{self.namespace}/" if self.namespace else f"{self.pool}/"
        name = image_name or self.image
        return f"{self.pool}/{self.namespace}/{name}" if self.namespace else f"{self.pool}/{name}"

    def rbd_args(self, image_name: str | None = None) -> list[str]:
        """The same level as options of the ``rbd`` CLI."""
        args: list[str] = []
        if self.pool is not None:
            args += ["--pool", self.pool]
        if self.namespace:
            args += ["--namespace", self.namespace]
        if self.image is not None:
            args += ["--image", image_name or self.image]
        return args

    def __str__(self) -> str:
        return self.spec() or "(global)"


@dataclass(frozen=True)
class ImageSpot:
    """Where an image lives and its handle (its name when created; ``""`` is the default
    namespace)."""

    handle: str
    pool: str
    namespace: str = ""


@dataclass(frozen=True)
class Layout:
    """What both clusters hold when the script starts."""

    pools: tuple[str, ...]
    namespaces: tuple[str, ...]  # named namespaces, in every pool
    images: tuple[ImageSpot, ...]
    schedules: tuple[tuple[Level, int], ...]  # (level, interval in minutes)


def make_layout(
    images: int, pools: Sequence[str] = ("soak_a", "soak_b"), namespaces: Sequence[str] = ("ns1",)
) -> Layout:
    """``images`` images round-robin over every (pool, namespace), and schedules at every
    level with every interval: global 5m, the first pool 2m, each pool's first named
    namespace 1m and 2m, and every 10th image 1m (every 20th also 5m)."""
    spots = [(pool, ns) for pool in pools for ns in ("", *namespaces)]
    made = tuple(ImageSpot(f"img{i:03d}", *spots[i % len(spots)]) for i in range(images))
    schedules: list[tuple[Level, int]] = [(Level(), 5), (Level(pools[0]), 2)]
    if namespaces:
        schedules.append((Level(pools[0], namespaces[0]), 1))
        if len(pools) > 1:
            schedules.append((Level(pools[1], namespaces[0]), 2))
    for i, spot in enumerate(made):
        if i % 10 == 3:
            schedules.append((Level(spot.pool, spot.namespace or None, spot.handle), 1))
        if i % 20 == 3:
            schedules.append((Level(spot.pool, spot.namespace or None, spot.handle), 5))
    return Layout(tuple(pools), tuple(namespaces), made, tuple(schedules))


@dataclass(frozen=True)
class Event:
    """One step of the script, ``at`` seconds after the run's start."""

    at: float
    kind: str
    level: Level | None = None  # schedule and pause events
    interval: int | None = None  # minutes; schedule_remove: None removes the whole level
    image: str | None = None  # image events: the handle
    spot: ImageSpot | None = None  # image events: where the image lives
    new_name: str | None = None  # image_rename
    cli: str = "ceph"
    option: str | None = None
    value: str | None = None
    duration: float = 0.0  # mgr_kill: restart after; osd_restart/mon_restart: down for
    count: int = 0  # blocklist: times in a row; clients: how many at once

    @property
    def lane(self) -> str:
        return "fault" if self.kind in FAULTS else "ops"

    def describe(self) -> str:
        what = self.kind
        if self.kind in ("schedule_add", "schedule_remove"):
            every = f" {self.interval}m" if self.interval else " (whole level)"
            what += f" {self.level}{every} via {self.cli}"
        elif self.kind in ("pause", "resume"):
            what += f" {self.level}"
        elif self.kind in IMAGE_EVENTS and self.spot is not None:
            what += f" {Level(self.spot.pool, self.spot.namespace or None, self.spot.handle)}"
            if self.new_name is not None:
                what += f" -> {self.new_name}"
        elif self.kind == "option":
            what += f" {self.option}={self.value}"
        elif self.kind == "clients":
            what += f" x{self.count} (status and ls -R, both CLIs)"
        elif self.kind == "mgr_kill":
            what += f" (restarted after {self.duration:.0f}s)"
        elif self.kind in ("osd_restart", "mon_restart"):
            what += f" (down {self.duration:.0f}s)"
        elif self.kind == "blocklist":
            what += f" x{self.count}"
        return what


def format_script(events: Sequence[Event]) -> list[str]:
    return [f"+{e.at:7.1f}s  {e.describe()}" for e in events]


@dataclass
class _SimImage:
    spot: ImageSpot
    name: str
    exists: bool = True
    primary: bool = True
    mirrored: bool = True


@dataclass
class _Sim:
    """The state the script's own events make, assuming each succeeds."""

    layout: Layout
    images: dict[str, _SimImage] = field(default_factory=dict)
    items: set[tuple[Level, int]] = field(default_factory=set)
    paused: set[Level] = field(default_factory=set)
    made: int = 0
    renamed: int = 0

    def handles(self, **want: bool) -> list[str]:
        return sorted(
            h for h, im in self.images.items() if all(getattr(im, k) == v for k, v in want.items())
        )


def generate(
    seed: int,
    minutes: float,
    layout: Layout,
    *,
    fault_every: float = 240.0,
    ops_per_minute: float = 3.0,
    lead: float = 30.0,
    quiet_tail: float = 90.0,
) -> list[Event]:
    """The run's events, in time order. Faults start ``lead`` + 30 s in at the earliest and
    come every ``fault_every`` s on average, one kind after another from a shuffled deck (so
    a run meets every kind early); operations come ``ops_per_minute`` a minute (a Poisson
    process). Nothing happens in the last ``quiet_tail`` s, so the final state settles."""
    rng = random.Random(seed)
    end = minutes * 60.0 - quiet_tail
    events = _faults(rng, lead + 30.0, end, fault_every)
    events += _operations(rng, lead, end, ops_per_minute, layout)
    return sorted(events, key=lambda e: (e.at, e.lane))


def _faults(rng: random.Random, first: float, end: float, every: float) -> list[Event]:
    events: list[Event] = []
    deck: list[str] = []
    t = first
    while t < end:
        if not deck:
            deck = list(FAULTS)
            rng.shuffle(deck)
        kind = deck.pop()
        duration, count = 0.0, 0
        if kind == "mgr_kill":
            duration = round(rng.uniform(15, 45), 1)
        elif kind == "osd_restart":
            duration = round(rng.uniform(15, 40), 1)
        elif kind == "mon_restart":
            duration = round(rng.uniform(5, 20), 1)
        elif kind == "blocklist":
            count = rng.randint(1, 3)
        events.append(Event(round(t, 1), kind, duration=duration, count=count))
        t += max(duration + RECOVERY_GAP, rng.uniform(0.5, 1.5) * every)
    return events


def _operations(
    rng: random.Random, start: float, end: float, per_minute: float, layout: Layout
) -> list[Event]:
    sim = _Sim(layout, {s.handle: _SimImage(s, s.handle) for s in layout.images})
    sim.items = set(layout.schedules)
    kinds = sorted(OP_WEIGHTS)
    weights = [OP_WEIGHTS[k] for k in kinds]
    events: list[Event] = []
    resumes: list[Event] = []
    t = start
    while True:
        t += rng.expovariate(per_minute / 60.0)
        for resume in sorted((r for r in resumes if r.at <= min(t, end)), key=lambda r: r.at):
            if resume.level is not None:
                sim.paused.discard(resume.level)
            events.append(resume)
            resumes.remove(resume)
        if t >= end:
            break
        made = _draw(rng, sim, rng.choices(kinds, weights)[0], round(t, 1))
        if made is None:
            continue
        events.append(made)
        if made.kind == "pause":
            later = min(made.at + rng.uniform(60, 150), end)
            resumes.append(replace(made, at=round(later, 1), kind="resume"))
    for resume in resumes:  # pauses drawn near the end are resumed at its start
        events.append(replace(resume, at=round(end, 1)))
    return events


def _draw(rng: random.Random, sim: _Sim, kind: str, t: float) -> Event | None:
    """A ``kind`` event that makes sense in ``sim`` at ``t`` (applied to ``sim``), or None."""
    layout = sim.layout
    if kind == "image_create":
        sim.made += 1
        pool = rng.choice(layout.pools)
        spot = ImageSpot(f"new{sim.made:03d}", pool, rng.choice(("", *layout.namespaces)))
        sim.images[spot.handle] = _SimImage(spot, spot.handle)
        return Event(t, kind, spot=spot, image=spot.handle)
    if kind in IMAGE_EVENTS:
        want = {
            "image_delete": {"exists": True, "primary": True},
            "image_rename": {"exists": True},
            "image_demote": {"exists": True, "primary": True, "mirrored": True},
            "image_promote": {"exists": True, "primary": False},
            "mirror_disable": {"exists": True, "primary": True, "mirrored": True},
            "mirror_enable": {"exists": True, "mirrored": False},
        }[kind]
        candidates = sim.handles(**want)
        if not candidates:
            return None
        handle = rng.choice(candidates)
        image = sim.images[handle]
        if kind == "image_delete":
            image.exists = False
            sim.items = {(lv, i) for lv, i in sim.items if lv.image != handle}
            sim.paused = {lv for lv in sim.paused if lv.image != handle}
        elif kind == "image_rename":
            sim.renamed += 1
            image.name = f"{handle}-r{sim.renamed}"
            return Event(t, kind, image=handle, spot=image.spot, new_name=image.name)
        elif kind == "image_demote":
            image.primary = False
        elif kind == "image_promote":
            image.primary = True
        elif kind == "mirror_disable":
            image.mirrored = False
        else:
            image.mirrored = True
        return Event(t, kind, image=handle, spot=image.spot)
    if kind == "schedule_add":
        level = _level(rng, sim, (1, 2, 2, 4))
        if level is None:
            return None
        interval = rng.choice(INTERVALS)
        sim.items.add((level, interval))
        return Event(t, kind, level=level, interval=interval, cli=rng.choice(CLIS))
    if kind == "schedule_remove":
        # Never the last global item: every image stays under some schedule, so slots keep
        # falling due everywhere and a miss is seen wherever it happens.
        globals_left = sum(1 for lv, _ in sim.items if lv.kind == "global")
        items = sorted(
            ((lv, i) for lv, i in sim.items if lv.kind != "global" or globals_left > 1),
            key=lambda item: (item[0].sort_key, item[1]),
        )
        if not items:
            return None
        level, interval = rng.choice(items)
        if level.kind != "global" and rng.random() < 0.25:
            sim.items = {(lv, i) for lv, i in sim.items if lv != level}
            return Event(t, kind, level=level, interval=None, cli=rng.choice(CLIS))
        sim.items.discard((level, interval))
        return Event(t, kind, level=level, interval=interval, cli=rng.choice(CLIS))
    if kind == "pause":
        level = _level(rng, sim, (0, 1, 1, 3))
        if level is None or level in sim.paused:
            return None
        sim.paused.add(level)
        return Event(t, kind, level=level)
    if kind == "option":
        option = rng.choice(sorted(OPTIONS))
        return Event(t, kind, option=option, value=rng.choice(OPTIONS[option]))
    if kind == "clients":
        return Event(t, kind, count=rng.randint(3, 8))
    raise ValueError(f"unknown event kind {kind!r}")


def _level(rng: random.Random, sim: _Sim, weights: Sequence[int]) -> Level | None:
    """A level drawn by kind (global, pool, namespace, image) with ``weights``."""
    layout = sim.layout
    kind = rng.choices(("global", "pool", "namespace", "image"), weights)[0]
    if kind == "global":
        return Level()
    if kind == "pool":
        return Level(rng.choice(layout.pools))
    if kind == "namespace":
        if not layout.namespaces:
            return None
        return Level(rng.choice(layout.pools), rng.choice(layout.namespaces))
    candidates = sim.handles(exists=True)
    if not candidates:
        return None
    spot = sim.images[rng.choice(candidates)].spot
    return Level(spot.pool, spot.namespace or None, spot.handle)
