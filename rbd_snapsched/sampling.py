"""The metrics' :class:`~rbd_snapsched.metrics.Sample`, taken from the book. Pure.

Label cardinality is bounded by design: per-pool aggregates always (one series per pool and
family), per-image series only while the scheduled images number at most ``image_limit``.

A :class:`Collector` takes the records a chunk at a time, so the caller can hold its lock for
one chunk, not for every image: at 100k images one pass is tens of milliseconds, and a
command must not wait behind a scrape. Records that change between chunks are read as they
are then: a scrape is a moment's view, not a transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import NamedTuple

from .book import LATENCY_BUCKETS, Book
from .levels import ImageSpec
from .metrics import ImageSample, PoolSample, Sample
from .pauses import Pauses

_INF = float("inf")
CHUNK = 4096  # records per lock hold


class Live(NamedTuple):
    """The scheduler's own figures at one moment (read under its lock)."""

    now: datetime
    heartbeat: datetime
    pauses: Pauses
    in_flight: int
    waiting: int
    queue_length: int
    refreshed: tuple[datetime, float] | None  # the last full refresh: end, seconds
    timed_out_in_flight: int = 0  # requests past their bound, still in librbd


def sample(
    lock: AbstractContextManager[object],
    book: Book,
    live: Callable[[], Live],
    image_limit: int,
) -> Sample:
    """One scrape, holding ``lock`` (the scheduler's) for one chunk of records at a time;
    ``live`` is called with it held and must advance the book to its ``now``."""
    with lock:
        live()
        images = list(book)
        collector = Collector(per_image=0 < book.scheduled <= image_limit)
    for start in range(0, len(images), CHUNK):
        with lock:
            collector.add(book, images[start : start + CHUNK], live().pauses)
    with lock:
        return collector.sample(book, live(), image_limit)


class Collector:
    """Accumulates one scrape's per-pool aggregates (and per-image samples) chunk by chunk."""

    def __init__(self, *, per_image: bool) -> None:
        self.per_image = per_image
        self._pools: dict[str, list[float]] = {}  # pool -> [images, late, failing, paused, oldest]
        self._images: list[ImageSample] = []

    def add(self, book: Book, images: Iterable[ImageSpec], pauses: Pauses) -> None:
        """Fold in these images' records (those still known and scheduled); ``book.advance``
        must have run for the scrape's time."""
        pools, per_image = self._pools, self.per_image
        for image in images:
            record = book.get(image)
            if record is None or record.schedule is None:
                continue
            agg = pools.get(record.pool)
            if agg is None:
                agg = pools[record.pool] = [0, 0, 0, 0, _INF]
            success = record.last_success.timestamp() if record.last_success else None
            paused = bool(pauses) and pauses.covering(image) is not None
            # As in health: a paused image is neither late nor failing (its pause is the news).
            is_late = not paused and book.is_late(image)
            is_failing = not paused and book.is_failing(image)
            agg[0] += 1
            agg[1] += is_late
            agg[2] += is_failing
            agg[3] += paused
            if success is not None and success < agg[4]:
                agg[4] = success
            if per_image:
                due = record.next_run.timestamp() if record.next_run else None
                self._images.append(
                    ImageSample(record.name, record.pool, success, due, is_late, is_failing)
                )

    def sample(self, book: Book, live: Live, image_limit: int) -> Sample:
        """The Sample: the aggregates so far plus the book's counters (read now)."""
        totals = book.totals
        refreshed = live.refreshed
        return Sample(
            now=live.now.timestamp(),
            heartbeat=live.heartbeat.timestamp(),
            pools={
                name: PoolSample(
                    int(a[0]), int(a[1]), int(a[2]), int(a[3]), a[4] if a[4] < _INF else None
                )
                for name, a in self._pools.items()
            },
            results=totals.all_results(),
            latency_bounds=list(LATENCY_BUCKETS),
            latency_buckets=list(totals.latency_buckets),
            latency_count=totals.latency_count,
            latency_sum=totals.latency_sum,
            in_flight=live.in_flight,
            waiting=live.waiting,
            timed_out_in_flight=live.timed_out_in_flight,
            queue_length=live.queue_length,
            known_images=len(book),
            refresh_duration=refreshed[1] if refreshed else None,
            last_refresh=refreshed[0].timestamp() if refreshed else None,
            late_factor=book.late_factor,
            images=self._images if self.per_image else None,
            image_series_limit=image_limit,
        )
