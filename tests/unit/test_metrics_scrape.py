"""Real Prometheus scrapes our endpoint: the exposition is accepted, escapes and all.

Starts a MetricsServer on 127.0.0.1 serving render() of a fixed Sample (big enough to be sent
gzipped, as Prometheus asks), a second one answering 503 like a standby mgr, and a throwaway
Prometheus (tests/prometheus.py) scraping both every second; then asks its HTTP API.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest

from rbd_snapsched.httpd import MetricsServer
from rbd_snapsched.metrics import ImageSample, PoolSample, Sample, render
from tests.prometheus import PrometheusServer

ODD_POOL = 'we\\ird"pool'
IMAGES = 200  # ~20 KiB of exposition: over the gzip threshold


def sample() -> Sample:
    images = [
        ImageSample(f"rbd/img{i:03d}", "rbd", 1_700_000_000.0 + i, 1_700_003_600.0, False, False)
        for i in range(IMAGES)
    ]
    images.append(
        ImageSample(f'{ODD_POOL}/ns/a "b"\nc', ODD_POOL, 1_700_000_500.0, None, True, True)
    )
    return Sample(
        now=1_700_000_100.0,
        heartbeat=1_700_000_099.5,
        pools={
            "rbd": PoolSample(IMAGES, 0, 0, 0, 1_700_000_000.0),
            ODD_POOL: PoolSample(1, 1, 1, 0, 1_700_000_500.0),
        },
        results={("rbd", "created", "created"): 40, (ODD_POOL, "failed", "failed"): 3},
        latency_bounds=(0.05, 0.1, 0.25, 0.5, 1.0),
        latency_buckets=(10, 20, 5, 2, 1),
        latency_count=43,
        latency_sum=7.5,
        in_flight=2,
        waiting=1,
        queue_length=IMAGES + 1,
        known_images=IMAGES + 1,
        refresh_duration=0.25,
        last_refresh=1_700_000_090.0,
        late_factor=2.0,
        images=images,
        image_series_limit=10000,
    )


class Scrape(NamedTuple):
    prom: PrometheusServer
    active: str  # the target that serves numbers; the other answers 503


@pytest.fixture(scope="module")
def scrape() -> Iterator[Scrape]:
    log = logging.getLogger("test_metrics_scrape")
    body = render(sample())
    assert len(body) > 4096
    active = MetricsServer("127.0.0.1", 0, lambda: body, log)
    standby = MetricsServer("127.0.0.1", 0, lambda: None, log, unavailable=lambda: "standby")
    active.start()
    standby.start()
    try:
        targets = [f"127.0.0.1:{active.port}", f"127.0.0.1:{standby.port}"]
        with PrometheusServer(targets) as prom:
            prom.wait_for("up", lambda result: len(result) == 2, timeout=60)
            yield Scrape(prom, targets[0])
    finally:
        active.stop()
        standby.stop()


def value(result: list[dict[str, Any]]) -> float:
    (only,) = result
    return float(only["value"][1])


def test_the_active_endpoint_is_up_and_the_standby_down(scrape: Scrape) -> None:
    prom, active = scrape
    up = {r["metric"]["instance"]: r["value"][1] for r in prom.wait_for("up", timeout=30)}
    assert up[active] == "1", prom.query_targets()
    assert [v for instance, v in up.items() if instance != active] == ["0"]
    errors = [t["lastError"] for t in prom.query_targets() if t["health"] != "up"]
    assert errors and "503" in errors[0]


def test_pool_images_reach_prometheus_with_their_labels(scrape: Scrape) -> None:
    prom = scrape.prom
    result = prom.wait_for("rbd_snapsched_pool_images", lambda r: len(r) == 2, timeout=30)
    by_pool = {r["metric"]["pool"]: float(r["value"][1]) for r in result}
    assert by_pool == {"rbd": IMAGES, ODD_POOL: 1}
    assert {r["metric"]["job"] for r in result} == {"rbd_snapsched"}


def test_the_histogram_is_read_as_one(scrape: Scrape) -> None:
    prom = scrape.prom
    name = "rbd_snapsched_snapshot_request_duration_seconds"
    assert value(prom.wait_for(f"{name}_count")) == 43
    assert value(prom.query(f"{name}_sum")) == 7.5
    buckets = {r["metric"]["le"]: float(r["value"][1]) for r in prom.query(f"{name}_bucket")}
    assert buckets == {"0.05": 10, "0.1": 30, "0.25": 35, "0.5": 37, "1.0": 38, "+Inf": 43}
    median = value(prom.query(f"histogram_quantile(0.5, {name}_bucket)"))
    assert 0.05 < median <= 0.1


def test_escaped_label_values_arrive_unescaped(scrape: Scrape) -> None:
    prom = scrape.prom
    result = prom.wait_for(
        'rbd_snapsched_image_last_success_timestamp_seconds{pool="we\\\\ird\\"pool"}'
    )
    (only,) = result
    assert only["metric"]["image"] == f'{ODD_POOL}/ns/a "b"\nc'
    assert float(only["value"][1]) == 1_700_000_500.0
    failed = prom.query('rbd_snapsched_snapshots_total{result="failed"}')
    assert [r["metric"]["pool"] for r in failed] == [ODD_POOL]


def test_every_image_series_is_there(scrape: Scrape) -> None:
    prom = scrape.prom
    count = prom.wait_for("count(rbd_snapsched_image_last_success_timestamp_seconds)")
    assert value(count) == IMAGES + 1
    assert value(prom.query("count(rbd_snapsched_image_next_run_timestamp_seconds)")) == IMAGES
