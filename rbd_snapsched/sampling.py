"""The metrics' :class:`~rbd_snapsched.metrics.Sample`, taken from the book. Pure.

Label cardinality is bounded by design: per-pool aggregates always (one series per pool and
family), per-image series only while the scheduled images number at most ``image_limit``.
"""

from __future__ import annotations

from datetime import datetime

from .book import LATENCY_BUCKETS, Book
from .metrics import ImageSample, PoolSample, Sample
from .pauses import Pauses

_INF = float("inf")


def collect(
    book: Book,
    *,
    now: datetime,
    heartbeat: datetime,
    pauses: Pauses,
    in_flight: int,
    waiting: int,
    queue_length: int,
    refreshed: tuple[datetime, float] | None,
    image_limit: int,
) -> Sample:
    """One scrape's numbers; ``book.advance(now)`` must have run. O(images)."""
    late = {item.image for item in book.late(now)}
    failing = {image for image, _ in book.failing()}
    scheduled = [(image, record) for image, record in book.items() if record.schedule]
    per_image = 0 < len(scheduled) <= image_limit
    pools: dict[str, list[float]] = {}  # pool -> [images, late, failing, paused, oldest]
    images: list[ImageSample] = []
    for image, record in scheduled:
        agg = pools.get(record.pool)
        if agg is None:
            agg = pools[record.pool] = [0, 0, 0, 0, _INF]
        success = record.last_success.timestamp() if record.last_success else None
        is_late, is_failing = image in late, image in failing
        agg[0] += 1
        agg[1] += is_late
        agg[2] += is_failing
        agg[3] += bool(pauses) and pauses.covering(image) is not None
        if success is not None and success < agg[4]:
            agg[4] = success
        if per_image:
            due = record.next_run.timestamp() if record.next_run else None
            images.append(ImageSample(record.name, record.pool, success, due, is_late, is_failing))
    totals = book.totals
    return Sample(
        now=now.timestamp(),
        heartbeat=heartbeat.timestamp(),
        pools={
            name: PoolSample(
                int(a[0]), int(a[1]), int(a[2]), int(a[3]), a[4] if a[4] < _INF else None
            )
            for name, a in pools.items()
        },
        results=totals.all_results(),
        latency_bounds=list(LATENCY_BUCKETS),
        latency_buckets=list(totals.latency_buckets),
        latency_count=totals.latency_count,
        latency_sum=totals.latency_sum,
        in_flight=in_flight,
        waiting=waiting,
        queue_length=queue_length,
        known_images=len(book),
        refresh_duration=refreshed[1] if refreshed else None,
        last_refresh=refreshed[0].timestamp() if refreshed else None,
        late_factor=book.late_factor,
        images=images if per_image else None,
        image_series_limit=image_limit,
    )
