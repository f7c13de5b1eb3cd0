"""Hours of churn in fake time: what the module keeps in Python memory stays level.

The soak (``python3 -m tests.soak``) judges the mgr's RSS from /proc, which mixes our module
with librbd, the allocator and every other module. This test isolates ours: images come and go,
are renamed, gain and lose schedules, levels pause and resume, and every reader runs, minute
after minute, with the population steady. tracemalloc counts what rbd_snapsched's own code
allocated and still holds; after the warm-up hours it must not grow with the hours that follow.
"""

from __future__ import annotations

import gc
import random
import tracemalloc
from datetime import timedelta

from rbd_snapsched import render, status_rows
from rbd_snapsched.levels import ImageSpec
from tests.unit.harness import START, Setup

IMAGES = 40
HOURS = 10
WARM = 3  # hours: image-level schedules pile up until as many go with their images as come
OURS = tracemalloc.Filter(True, "*/rbd_snapsched/*")


def _let_go_of_bounded_caches(s: Setup) -> None:
    """What is bounded by construction but fills for hours first, emptied before each count so
    that what is counted is what could grow without end: the printed-text caches, the status
    rows' shared pieces and texts around names (4,096 or 1,024 entries, then they start again),
    the status view's due times (a batch's worth), and the stale entries the queue and the
    book's deadline heap keep until they exceed twice the live ones (then compacted)."""
    for cache in (render._ISO_TEXT, render._STATUS_TEXT, status_rows._SINCE, status_rows._ALIKE):
        cache.clear()
    status_rows._ENCODED.clear()
    status_rows._ENCODED.update(status_rows._HELD)
    handler = s.handler
    handler._status.rows._pieces.clear()
    handler._status._dues.clear()
    handler._timetable._queue._compact()
    handler._book._compact()


def _held(s: Setup) -> int:
    _let_go_of_bounded_caches(s)
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces([OURS])
    return sum(stat.size for stat in snapshot.statistics("filename"))


def _churn(s: Setup, rng: random.Random, images: list[ImageSpec], minute: int) -> None:
    """One change a minute, each kind in turn, keeping the number of images steady."""
    kind = minute % 6
    if kind == 0:  # one image leaves, a new one (with a new id) comes
        gone = images.pop(rng.randrange(len(images)))
        s.cluster.remove_image(gone)
        namespace = rng.choice(["", "ns"])
        images.append(s.cluster.add_image(s.pool, f"new{minute}", namespace))
    elif kind == 1:  # a rename
        image = rng.choice(images)
        names = s.cluster.pools[image.pool_id].namespaces[image.namespace].images
        names[image.image_id] = f"r{minute}"
    elif kind == 2:  # an image-level schedule comes, on an image that may leave later
        image = rng.choice(images)
        name = s.cluster.pools[image.pool_id].namespaces[image.namespace].images[image.image_id]
        prefix = f"rbd/{image.namespace}/" if image.namespace else "rbd/"
        s.add(prefix + name, "2m")
    elif kind == 3:  # and the namespace's changes
        s.remove("rbd/ns/")
        s.add("rbd/ns/", rng.choice(["1m", "5m"]))
    elif kind == 4:  # pause and resume
        level = s.handler.resolve(rng.choice(["rbd/", "rbd/ns/"]))
        s.handler.pause(level)
        s.handler.resume(level)
    else:  # every reader
        everything = s.handler.resolve("")
        s.handler.status_text(everything, lambda image: True)
        s.handler.list_text(everything, lambda level: True)
        s.handler.report(everything, lambda image: True)
        s.handler.metrics(1000)
        s.handler.health_checks()
    s.handler.request_refresh()


def test_hours_of_churn_keep_the_modules_memory_level() -> None:
    rng = random.Random(22)
    s = Setup()
    images = [s.cluster.add_image(s.pool, f"img{i}", "ns" if i % 2 else "") for i in range(IMAGES)]
    s.add("rbd/", "1m")
    s.add("rbd/ns/", "1m")
    tracemalloc.start()
    try:
        held = []
        for minute in range(HOURS * 60):
            _churn(s, rng, images, minute)
            s.run_until(START + timedelta(minutes=minute + 1))
            s.driver.outcomes.clear()  # the fake's own records
            s.driver.started.clear()
            if minute % 60 == 59:
                held.append(_held(s))
    finally:
        tracemalloc.stop()
    created = sum(len(s.cluster.rbd.images[i].snap_ids) for i in images)
    assert created > IMAGES * 60  # the churn ran with snapshots being taken throughout
    warm = held[WARM - 1]
    # what the hours after the warm-up added: level within 16 KiB. 40 images' records are about
    # 40 KiB: one kept per image that left (one each 6 minutes) would pass it within two hours.
    grown = max(held[WARM:]) - warm
    assert grown < 16 * 1024, " ".join(f"{h / 1024:.1f}" for h in held)
