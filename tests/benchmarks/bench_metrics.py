"""Metrics benchmark: render() and a full HTTP scrape at 100,000 images.

Run from the repository root with the interpreter ceph-mgr embeds::

    /usr/bin/python3 -m tests.benchmarks.bench_metrics               # 100k images, 50 pools
    /usr/bin/python3 -m tests.benchmarks.bench_metrics --images 10k  # the default series limit

A script, not a pytest test, and it asserts nothing about time. Standard library only, plus our
package. Two samples are measured: per-image series on (every image has its two timestamps,
except every tenth that never succeeded yet) and off (``images=None``: pool aggregates only,
what the module exports above ``metrics_image_series_limit``).

Figures: render time (min and median of ``--runs``, wall clock, gc on); the exposition's size and
its series (sample lines); gzip at level 1 (what the endpoint sends Prometheus, which asks for
it) and its time; memory by tracemalloc: the Sample as retained, and render's peak on top of it;
then a scrape through MetricsServer on 127.0.0.1 with urllib, rendering afresh per request as
the module does, plain and gzipped.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import logging
import os
import statistics
import sys
import time
import tracemalloc
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rbd_snapsched.book import LATENCY_BUCKETS
from rbd_snapsched.httpd import MetricsServer
from rbd_snapsched.metrics import ImageSample, PoolSample, Sample, render
from rbd_snapsched.sampling import CHUNK, Collector
from tests.benchmarks.report import table

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
NAMESPACES = ("", "ns1", "ns2")

LOG = logging.getLogger("bench_metrics")
LOG.propagate = False
LOG.addHandler(logging.NullHandler())


def build(n_images: int, n_pools: int, per_image: bool) -> Sample:
    """A Sample like the handler's at ``n_images`` scheduled images over ``n_pools`` pools."""
    pools = [f"pool{p:02d}" for p in range(n_pools)]
    images: list[ImageSample] = []
    for i in range(n_images):
        pool = pools[i % n_pools]
        namespace = NAMESPACES[i % len(NAMESPACES)]
        name = f"{pool}/{namespace}/img{i:07d}" if namespace else f"{pool}/img{i:07d}"
        last = None if i % 10 == 0 else NOW - 60.0 - (i % 3600) * 0.731
        images.append(ImageSample(name, pool, last, NOW + 60.0 - (i % 60), i % 97 == 0, False))
    per_pool = {
        pool: PoolSample(
            images=len(range(k, n_images, n_pools)),
            late=sum(1 for i in range(k, n_images, n_pools) if i % 97 == 0),
            failing=k % 3,
            paused=0,
            oldest_success=NOW - 3600.0,
        )
        for k, pool in enumerate(pools)
    }
    results = {}
    for k, pool in enumerate(pools):
        results[(pool, "created", "created")] = 1000 + k
        results[(pool, "skipped", "not_primary")] = k
        results[(pool, "failed", "failed")] = k % 3
    return Sample(
        now=NOW,
        heartbeat=NOW - 0.5,
        pools=per_pool,
        results=results,
        latency_bounds=LATENCY_BUCKETS,
        latency_buckets=[n_images // len(LATENCY_BUCKETS)] * len(LATENCY_BUCKETS),
        latency_count=n_images,
        latency_sum=n_images * 0.21,
        in_flight=10,
        waiting=42,
        queue_length=n_images,
        known_images=n_images,
        refresh_duration=1.25,
        last_refresh=NOW - 10.0,
        late_factor=2.0,
        images=images if per_image else None,
        image_series_limit=n_images if per_image else 10_000,
    )


@dataclass
class Result:
    label: str
    render_s: list[float]
    size: int
    series: int
    gzip_size: int
    gzip_s: float
    sample_bytes: int
    render_peak_bytes: int
    scrape_plain_s: list[float]
    scrape_gzip_s: list[float]


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return times


def memory(n_images: int, n_pools: int, per_image: bool) -> tuple[int, int]:
    """(bytes the Sample retains, render's peak above that) by tracemalloc."""
    gc.collect()
    tracemalloc.start()
    try:
        sample = build(n_images, n_pools, per_image)
        gc.collect()
        retained, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        body = render(sample)
        _, peak = tracemalloc.get_traced_memory()
        del body
    finally:
        tracemalloc.stop()
    return retained, peak - retained


def scrape(url: str, accept_gzip: bool) -> int:
    headers = {"Accept-Encoding": "gzip"} if accept_gzip else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as answer:
        body = answer.read()
        if accept_gzip and answer.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
    return len(body)


def bench(label: str, n_images: int, n_pools: int, per_image: bool, runs: int) -> Result:
    sample = build(n_images, n_pools, per_image)
    body = render(sample)
    render_s = timed(lambda: render(sample), runs)
    began = time.perf_counter()
    packed = gzip.compress(body, compresslevel=1)
    gzip_s = time.perf_counter() - began
    series = sum(1 for line in body.split(b"\n") if line and not line.startswith(b"#"))
    sample_bytes, render_peak = memory(n_images, n_pools, per_image)

    server = MetricsServer("127.0.0.1", 0, lambda: render(sample), LOG)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        assert scrape(url, False) == len(body) == scrape(url, True)
        plain = timed(lambda: scrape(url, False), runs)
        zipped = timed(lambda: scrape(url, True), runs)
    finally:
        server.stop()
    return Result(
        label,
        render_s,
        len(body),
        series,
        len(packed),
        gzip_s,
        sample_bytes,
        render_peak,
        plain,
        zipped,
    )


def ms(times: Sequence[float]) -> str:
    low, mid = min(times) * 1000, statistics.median(times) * 1000
    return f"{low:.1f} / {mid:.1f}" if mid < 10 else f"{low:.0f} / {mid:.0f}"


def mib(size: int) -> str:
    return f"{size / 2**20:.1f}"


def parse_count(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1000, "m": 1_000_000}.get(text[-1:], 1)
    value = int(float(text.rstrip("km")) * scale)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def handler_path(n_images: int, limit: int, runs: int) -> tuple[str, str, str, str, str]:
    """Time ``Handler.metrics`` (the lock-held part of a scrape) and its render, from a real
    handler whose every image got one snapshot; and the book's memory per image."""
    from tests.benchmarks.fakes import build_ours, drain_ours

    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        setup, _ = build_ours(n_images)
        drain_ours(setup)
        gc.collect()
        with_book, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    book = setup.handler._book
    records = sum(sys.getsizeof(book[i]) for i in book) / max(len(book), 1)
    handler = setup.handler
    collect_s = timed(lambda: handler.metrics(limit), runs)
    sample = handler.metrics(limit)
    render_s = timed(lambda: render(sample), runs)
    chunk = list(book)[:CHUNK]  # one lock hold: Collector.add over one chunk
    per_chunk = Collector(per_image=sample.images is not None)
    hold_s = timed(lambda: per_chunk.add(book, chunk, handler._plan.pauses), runs)
    per_image = (with_book - base) / max(n_images, 1)
    label = f"{limit}" + (" (per-image on)" if 0 < n_images <= limit else " (pools only)")
    return (
        label,
        ms(collect_s),
        ms(hold_s),
        ms(render_s),
        f"{records:.0f} record, {per_image:.0f} handler in all",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m tests.benchmarks.bench_metrics", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--images", type=parse_count, default=100_000, help="e.g. 10k, 100k")
    parser.add_argument("--pools", type=parse_count, default=50)
    parser.add_argument("--runs", type=int, default=7, help="timed runs (min and median)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be >= 1")

    print(
        f"rbd_snapsched metrics benchmark  python {sys.version.split()[0]}  pid {os.getpid()}"
        f"  {os.cpu_count()} CPUs"
    )
    print(
        f"{args.images} images in {args.pools} pools, {args.runs} runs each; wall clock, gc enabled"
    )
    print()
    results = [
        bench("per-image on", args.images, args.pools, True, args.runs),
        bench("images=None", args.images, args.pools, False, args.runs),
    ]
    rows = [
        (
            r.label,
            ms(r.render_s),
            mib(r.size),
            f"{r.series}",
            f"{mib(r.gzip_size)} ({r.gzip_s * 1000:.1f} ms)",
            mib(r.sample_bytes),
            mib(r.render_peak_bytes),
            ms(r.scrape_plain_s),
            ms(r.scrape_gzip_s),
        )
        for r in results
    ]
    headers = (
        "sample",
        "render ms min/med",
        "MiB",
        "series",
        "gzip-1 MiB (time)",
        "Sample MiB",
        "render peak MiB",
        "scrape ms",
        "scrape gzip ms",
    )
    for line in table(headers, rows):
        print("  " + line)
    print()
    print("  From the handler: the real Book after one drained 1m slot (bench_scheduler's fakes)")
    hrows = [handler_path(args.images, limit, args.runs) for limit in (args.images, 0)]
    for line in table(
        ("series limit", "metrics() ms", "lock hold ms", "render ms", "memory B/image"), hrows
    ):
        print("  " + line)
    print()
    print("  metrics() = Handler.metrics() in all; lock hold = its longest hold of the handler's")
    print("  lock (one chunk of records, what a command can wait behind a scrape); memory =")
    print("  sys.getsizeof of one record, and tracemalloc of the whole handler per image")
    print()
    print("  render = render(sample) alone; series = sample lines of the exposition;")
    print("  Sample MiB = what the Sample retains (tracemalloc); render peak = render's transient")
    print("  memory above it, output included; scrape = GET /metrics through MetricsServer on")
    print("  127.0.0.1 with urllib, rendering afresh per request (gzip: Accept-Encoding gzip,")
    print("  compressed at level 1 and decompressed by the client, as Prometheus would)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
