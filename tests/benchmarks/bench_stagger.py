"""Staggering on a real cluster: peak requests in flight and waiting, request latency p50/p99.

Not a test. Boots a throwaway cluster of one release (the host's by default), makes ``--images``
snapshot-mirrored images in one pool, sets ``max_concurrent_snap_create`` to 10 and schedules the
pool every ``2m``. Then it watches one slot with the ``stagger`` option off (every image due at
once) and one interval with it on (each minute, the images of that phase), sampling the module's
metrics endpoint every ``--every`` seconds:

- peak ``rbd_snapsched_requests_in_flight`` and ``rbd_snapsched_requests_waiting``;
- p50/p99 request latency (dispatch to end, waiting for the cap included) from the deltas of the
  ``rbd_snapsched_snapshot_request_duration_seconds`` histogram (interpolated in the bucket as
  Prometheus' ``histogram_quantile`` does), and from each image's ``last_attempt_start`` /
  ``last_attempt_end`` in ``status`` (whole seconds);
- the drain: from the slot to the last request's end.

    /usr/bin/python3 -m tests.benchmarks.bench_stagger                  # about 6-8 minutes
    /usr/bin/python3 -m tests.benchmarks.bench_stagger --release reef --images 240

The cluster is torn down at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from rbd_snapsched.pycompat import zip_equal
from tests.benchmarks.report import percentile
from tests.cephcluster import Cluster
from tests.cluster.helpers import make_images, raw, wait_until
from tests.slots import sleep_until, utcnow

P = "rbd_snapsched_"
HISTOGRAM = P + "snapshot_request_duration_seconds"
STAGGER_OPTION = "mgr/rbd_snapsched/stagger"
MAX_CONCURRENT_OPTION = "mgr/rbd_snapsched/max_concurrent_snap_create"
ISO = "%Y-%m-%dT%H:%M:%SZ"
MINUTE = timedelta(minutes=1)


@dataclass
class Scrape:
    at: datetime
    in_flight: float
    waiting: float
    buckets: dict[float, float]  # cumulative counts per upper bound (+Inf included)
    count: float


def scrape(url: str) -> Scrape:
    at = utcnow()
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        if name.startswith(HISTOGRAM + "_bucket"):
            bound = name.split('le="', 1)[1].split('"', 1)[0]
            buckets[math.inf if bound == "+Inf" else float(bound)] = float(value)
        else:
            values[name] = float(value)
    return Scrape(
        at,
        values.get(P + "requests_in_flight", 0.0),
        values.get(P + "requests_waiting", 0.0),
        buckets,
        values.get(HISTOGRAM + "_count", 0.0),
    )


def histogram_quantile(q: float, before: Scrape, after: Scrape) -> float:
    """Prometheus' histogram_quantile over the bucket deltas (linear within a bucket)."""
    bounds = sorted(after.buckets)
    deltas = [after.buckets[b] - before.buckets.get(b, 0.0) for b in bounds]
    total = deltas[-1]
    if total <= 0:
        return math.nan
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, cumulative in zip_equal(bounds, deltas):
        if cumulative >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / max(cumulative - below, 1e-9)
        lower, below = bound, cumulative
    return lower


@dataclass
class Result:
    mode: str
    window: str
    requests: int
    peak_in_flight: float
    peak_waiting: float
    hist_p50: float
    hist_p99: float
    status_p50: float
    status_p99: float
    drain: float  # seconds from the (last) slot to the last request's end
    samples: int
    sample_gap: float  # the largest gap between samples, seconds


def rows_by_image(cluster: Cluster, pool: str) -> dict[str, dict[str, Any]]:
    rows = json.loads(raw(cluster, "status", f"{pool}/").stdout)["scheduled_images"]
    return {str(r["image"]): r for r in rows}


def idle(url: str) -> bool:
    s = scrape(url)
    return s.in_flight == 0 and s.waiting == 0


def watch(
    cluster: Cluster, url: str, pool: str, slots: list[datetime], images: int, every: float
) -> tuple[list[Scrape], Scrape, Scrape]:
    """Sample from just before the first slot until every image has served one of ``slots``
    and nothing runs or waits; the baseline scrape and the last one."""
    names = {s.strftime(ISO) for s in slots}
    sleep_until(slots[0] - timedelta(seconds=1.5))
    wait_until(lambda: idle(url), 30, "no request before the slot")
    baseline = scrape(url)
    samples: list[Scrape] = []
    deadline = slots[-1] + timedelta(seconds=120)
    checked = utcnow()
    while True:
        sample = scrape(url)
        samples.append(sample)
        after_last = sample.at > slots[-1] + timedelta(seconds=2)
        quiet = sample.in_flight == 0 and sample.waiting == 0
        if after_last and quiet and sample.at - checked > timedelta(seconds=1):
            checked = sample.at
            rows = rows_by_image(cluster, pool)
            done = [r for r in rows.values() if r["last_attempt_slot"] in names]
            if len(done) == images and all(r["last_attempt_end"] for r in done):
                return samples, baseline, scrape(url)
        if sample.at > deadline:
            raise TimeoutError(f"slots {sorted(names)} not done by {deadline:%H:%M:%S}")
        time.sleep(max(0.0, every - (utcnow() - sample.at).total_seconds()))


def summarize(
    mode: str,
    cluster: Cluster,
    pool: str,
    slots: list[datetime],
    watched: tuple[list[Scrape], Scrape, Scrape],
) -> Result:
    samples, baseline, last = watched
    names = {s.strftime(ISO) for s in slots}
    rows = [r for r in rows_by_image(cluster, pool).values() if r["last_attempt_slot"] in names]

    def parse(text: str) -> datetime:
        return datetime.strptime(text, ISO).replace(tzinfo=timezone.utc)

    latencies = [
        (parse(r["last_attempt_end"]) - parse(r["last_attempt_start"])).total_seconds()
        for r in rows
    ]
    ends = {
        r["last_attempt_slot"]: max(
            parse(x["last_attempt_end"])
            for x in rows
            if x["last_attempt_slot"] == r["last_attempt_slot"]
        )
        for r in rows
    }
    drain = max((end - parse(slot)).total_seconds() for slot, end in ends.items())
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(samples, samples[1:])]
    window = ", ".join(s.strftime("%H:%M") for s in slots)
    return Result(
        mode=mode,
        window=window,
        requests=int(last.count - baseline.count),
        peak_in_flight=max(s.in_flight for s in samples),
        peak_waiting=max(s.waiting for s in samples),
        hist_p50=histogram_quantile(0.5, baseline, last),
        hist_p99=histogram_quantile(0.99, baseline, last),
        status_p50=percentile(latencies, 0.5),
        status_p99=percentile(latencies, 0.99),
        drain=drain,
        samples=len(samples),
        sample_gap=max(gaps, default=0.0),
    )


def print_table(results: list[Result], images: int, interval: int, release: str) -> None:
    print()
    print(
        f"{release}: {images} images, one pool, `{interval}m` schedule, "
        "max_concurrent_snap_create=10"
    )
    head = (
        "| stagger | slot(s) | requests | peak in flight | peak waiting | "
        "p50 / p99 (histogram) | p50 / p99 (status, 1 s) | slot to last end |"
    )
    print(head)
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.mode} | {r.window} | {r.requests} | {r.peak_in_flight:.0f} | "
            f"{r.peak_waiting:.0f} | {r.hist_p50:.2f} s / {r.hist_p99:.2f} s | "
            f"{r.status_p50:.0f} s / {r.status_p99:.0f} s | {r.drain:.0f} s |"
        )
    for r in results:
        print(f"  {r.mode}: {r.samples} samples, largest gap {r.sample_gap:.2f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--release", help="pacific, reef or tentacle (default: the host's)")
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--interval", type=int, default=2, help="schedule interval, minutes")
    parser.add_argument("--every", type=float, default=0.1, help="seconds between samples")
    args = parser.parse_args(argv)
    began = time.monotonic()

    cluster = Cluster.boot(release=args.release)
    try:
        print(f"cluster {cluster.root} ({cluster.release}) booted", flush=True)
        pool = "stagger"
        cluster.create_rbd_pool(pool)
        t0 = time.monotonic()
        make_images(cluster, *(f"{pool}/img{i:03d}" for i in range(args.images)))
        print(f"{args.images} images in {time.monotonic() - t0:.0f} s", flush=True)
        cluster.run("ceph", "config", "set", "mgr", MAX_CONCURRENT_OPTION, "10")
        cluster.run("ceph", "config", "set", "mgr", STAGGER_OPTION, "false")
        url = cluster.metrics_url()
        cluster.run("rbd", "mirror", "snapshot", "schedule", "add", "-p", pool, f"{args.interval}m")
        wait_until(
            lambda: len(rows_by_image(cluster, pool)) == args.images, 30, "every image in status"
        )
        period = timedelta(minutes=args.interval)
        epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)

        # Off: every image at the next slot of the interval's grid (a few seconds away at least).
        now = utcnow() + timedelta(seconds=5)
        slot = epoch + ((now - epoch) // period + 1) * period
        print(f"stagger off: watching the {slot:%H:%M} slot", flush=True)
        off = summarize(
            "off", cluster, pool, [slot], watch(cluster, url, pool, [slot], args.images, args.every)
        )

        # On: each image at its phase; one interval of minute slots serves each once.
        cluster.run("ceph", "config", "set", "mgr", STAGGER_OPTION, "true")
        time.sleep(2)
        first = (utcnow() + timedelta(seconds=3)).replace(second=0, microsecond=0) + MINUTE
        slots = [first + k * MINUTE for k in range(args.interval)]
        print(f"stagger on: watching {', '.join(f'{s:%H:%M}' for s in slots)}", flush=True)
        on = summarize(
            "on", cluster, pool, slots, watch(cluster, url, pool, slots, args.images, args.every)
        )
        print_table([off, on], args.images, args.interval, cluster.release)
    finally:
        cluster.teardown()
    print(f"total {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
