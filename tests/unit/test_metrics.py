"""The Prometheus text exposition: exact shape, escaping, histogram, omissions, parse-back."""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rbd_snapsched.metrics import (
    CONTENT_TYPE,
    ImageSample,
    PoolSample,
    Sample,
    escape_label_value,
    format_value,
    render,
)

P = "rbd_snapsched_"


def small() -> Sample:
    return Sample(
        now=1_700_000_100.0,
        heartbeat=1_700_000_099.5,
        pools={
            "ssd": PoolSample(1, 0, 1, 1, None),
            "rbd": PoolSample(2, 1, 0, 0, 1_700_000_000.0),
        },
        results={
            ("ssd", "failed", "failed"): 2,
            ("rbd", "created", "created"): 7,
            ("rbd", "skipped", "not_primary"): 1,
        },
        latency_bounds=(0.5, 1.0, 2.5),
        latency_buckets=(3, 0, 2),
        latency_count=6,
        latency_sum=9.25,
        in_flight=1,
        waiting=0,
        queue_length=3,
        known_images=4,
        refresh_duration=0.125,
        last_refresh=1_700_000_090.0,
        late_factor=2.0,
        images=(
            ImageSample("ssd/ns/c", "ssd", None, 1_700_000_160.0, False, True),
            ImageSample("rbd/b", "rbd", 1_700_000_000.0, 1_700_000_160.0, True, False),
            ImageSample("rbd/a", "rbd", 1_700_000_090.25, None, False, False),
        ),
        image_series_limit=10000,
    )


SMALL = """\
# HELP rbd_snapsched_scheduler_heartbeat_timestamp_seconds Unix time of the scheduler thread's last pass.
# TYPE rbd_snapsched_scheduler_heartbeat_timestamp_seconds gauge
rbd_snapsched_scheduler_heartbeat_timestamp_seconds 1700000099.5
# HELP rbd_snapsched_image_last_success_timestamp_seconds Unix time of the image's last successful mirror snapshot.
# TYPE rbd_snapsched_image_last_success_timestamp_seconds gauge
rbd_snapsched_image_last_success_timestamp_seconds{pool="rbd",image="rbd/a"} 1700000090.25
rbd_snapsched_image_last_success_timestamp_seconds{pool="rbd",image="rbd/b"} 1700000000.0
# HELP rbd_snapsched_image_next_run_timestamp_seconds Unix time of the image's next scheduled mirror snapshot.
# TYPE rbd_snapsched_image_next_run_timestamp_seconds gauge
rbd_snapsched_image_next_run_timestamp_seconds{pool="rbd",image="rbd/b"} 1700000160.0
rbd_snapsched_image_next_run_timestamp_seconds{pool="ssd",image="ssd/ns/c"} 1700000160.0
# HELP rbd_snapsched_image_series_enabled 1 when per-image series are exported, 0 when they are off or over the limit.
# TYPE rbd_snapsched_image_series_enabled gauge
rbd_snapsched_image_series_enabled 1
# HELP rbd_snapsched_image_series_limit Scheduled images above which only pool aggregates are exported.
# TYPE rbd_snapsched_image_series_limit gauge
rbd_snapsched_image_series_limit 10000
# HELP rbd_snapsched_pool_images Scheduled images in the pool.
# TYPE rbd_snapsched_pool_images gauge
rbd_snapsched_pool_images{pool="rbd"} 2
rbd_snapsched_pool_images{pool="ssd"} 1
# HELP rbd_snapsched_pool_late_images Scheduled images without a successful mirror snapshot for late_factor times their interval.
# TYPE rbd_snapsched_pool_late_images gauge
rbd_snapsched_pool_late_images{pool="rbd"} 1
rbd_snapsched_pool_late_images{pool="ssd"} 0
# HELP rbd_snapsched_pool_failing_images Scheduled images whose last mirror snapshot request failed.
# TYPE rbd_snapsched_pool_failing_images gauge
rbd_snapsched_pool_failing_images{pool="rbd"} 0
rbd_snapsched_pool_failing_images{pool="ssd"} 1
# HELP rbd_snapsched_pool_paused_images Scheduled images under a paused level.
# TYPE rbd_snapsched_pool_paused_images gauge
rbd_snapsched_pool_paused_images{pool="rbd"} 0
rbd_snapsched_pool_paused_images{pool="ssd"} 1
# HELP rbd_snapsched_pool_oldest_success_timestamp_seconds Oldest last successful mirror snapshot of the pool's scheduled images (Unix time).
# TYPE rbd_snapsched_pool_oldest_success_timestamp_seconds gauge
rbd_snapsched_pool_oldest_success_timestamp_seconds{pool="rbd"} 1700000000.0
# HELP rbd_snapsched_snapshots_total Mirror snapshot requests finished, by result and reason.
# TYPE rbd_snapsched_snapshots_total counter
rbd_snapsched_snapshots_total{pool="rbd",result="created",reason="created"} 7
rbd_snapsched_snapshots_total{pool="rbd",result="skipped",reason="not_primary"} 1
rbd_snapsched_snapshots_total{pool="ssd",result="failed",reason="failed"} 2
# HELP rbd_snapsched_snapshot_request_duration_seconds Time snapshot requests took, from start to end.
# TYPE rbd_snapsched_snapshot_request_duration_seconds histogram
rbd_snapsched_snapshot_request_duration_seconds_bucket{le="0.5"} 3
rbd_snapsched_snapshot_request_duration_seconds_bucket{le="1.0"} 3
rbd_snapsched_snapshot_request_duration_seconds_bucket{le="2.5"} 5
rbd_snapsched_snapshot_request_duration_seconds_bucket{le="+Inf"} 6
rbd_snapsched_snapshot_request_duration_seconds_sum 9.25
rbd_snapsched_snapshot_request_duration_seconds_count 6
# HELP rbd_snapsched_requests_in_flight Snapshot requests running now.
# TYPE rbd_snapsched_requests_in_flight gauge
rbd_snapsched_requests_in_flight 1
# HELP rbd_snapsched_requests_waiting Due images waiting for a free request slot.
# TYPE rbd_snapsched_requests_waiting gauge
rbd_snapsched_requests_waiting 0
# HELP rbd_snapsched_requests_timed_out_in_flight Snapshot requests past snap_create_timeout that librbd has not ended yet (their slots are released; their images get no new request).
# TYPE rbd_snapsched_requests_timed_out_in_flight gauge
rbd_snapsched_requests_timed_out_in_flight 0
# HELP rbd_snapsched_queue_length Images queued for a future slot.
# TYPE rbd_snapsched_queue_length gauge
rbd_snapsched_queue_length 3
# HELP rbd_snapsched_images_known Primary snapshot-mirrored images found by the last discovery.
# TYPE rbd_snapsched_images_known gauge
rbd_snapsched_images_known 4
# HELP rbd_snapsched_refresh_duration_seconds How long the last full refresh took.
# TYPE rbd_snapsched_refresh_duration_seconds gauge
rbd_snapsched_refresh_duration_seconds 0.125
# HELP rbd_snapsched_last_refresh_timestamp_seconds Unix time the last full refresh ended.
# TYPE rbd_snapsched_last_refresh_timestamp_seconds gauge
rbd_snapsched_last_refresh_timestamp_seconds 1700000090.0
# HELP rbd_snapsched_late_factor An image is late after this many times its interval without a successful snapshot.
# TYPE rbd_snapsched_late_factor gauge
rbd_snapsched_late_factor 2.0
"""  # noqa: E501


# --- a small exposition parser: what a scraper would read back --------------------------------

Labels = tuple[tuple[str, str], ...]


@dataclass
class Family:
    name: str
    kind: str = ""
    help: str = ""
    samples: dict[tuple[str, Labels], float] = dataclasses.field(default_factory=dict)


class ExpositionError(ValueError):
    pass


def _parse_labels(text: str, at: int) -> tuple[Labels, int]:
    """Labels from ``{`` at ``at``: the pairs, unescaped, and the index after ``}``."""
    assert text[at] == "{"
    pairs: list[tuple[str, str]] = []
    i = at + 1
    while text[i] != "}":
        eq = text.index("=", i)
        name = text[i:eq]
        if not name.isidentifier() or text[eq + 1] != '"':
            raise ExpositionError(f"bad label at {text[i:]!r}")
        i, value = eq + 2, []
        while text[i] != '"':
            if text[i] == "\\":
                escaped = text[i + 1]
                if escaped not in '\\"n':
                    raise ExpositionError(f"bad escape \\{escaped}")
                value.append("\n" if escaped == "n" else escaped)
                i += 2
            else:
                if text[i] == "\n":
                    raise ExpositionError("raw newline in a label value")
                value.append(text[i])
                i += 1
        pairs.append((name, "".join(value)))
        i += 1
        if text[i] == ",":
            i += 1
        elif text[i] != "}":
            raise ExpositionError(f"expected , or }} at {text[i:]!r}")
    return tuple(pairs), i + 1


def parse(body: bytes) -> dict[str, Family]:
    """Strict for what we write: HELP and TYPE once each, before the family's samples, which
    are contiguous; every sample belongs to a typed family; no series twice."""
    text = body.decode()
    if not text.endswith("\n"):
        raise ExpositionError("no final newline")
    families: dict[str, Family] = {}
    current: Family | None = None
    for line in text[:-1].split("\n"):
        if line.startswith("# "):
            _, keyword, name, rest = [*line.split(" ", 3), ""][:4]
            if keyword not in ("HELP", "TYPE"):
                continue
            if name not in families:
                families[name] = Family(name)
            elif families[name].samples:
                raise ExpositionError(f"{keyword} of {name} after its samples")
            current = families[name]
            if keyword == "HELP":
                if current.help:
                    raise ExpositionError(f"two HELP for {name}")
                current.help = rest
            else:
                if current.kind or rest not in ("gauge", "counter", "histogram"):
                    raise ExpositionError(f"bad or second TYPE for {name}: {rest}")
                current.kind = rest
            continue
        brace = line.find("{")
        space = line.find(" ")
        if 0 < brace < space:
            name = line[:brace]
            labels, end = _parse_labels(line, brace)
            value_text = line[end:]
            if not value_text.startswith(" "):
                raise ExpositionError(f"no space before the value: {line!r}")
            value_text = value_text[1:]
        else:
            name, value_text = line[:space], line[space + 1 :]
            labels = ()
        if current is None or name not in _names(current):
            raise ExpositionError(f"sample {name} outside its family")
        if (name, labels) in current.samples:
            raise ExpositionError(f"series twice: {line!r}")
        current.samples[(name, labels)] = float(value_text)  # Go's +Inf/NaN read the same
    for family in families.values():
        if not family.kind or not family.samples:
            raise ExpositionError(f"family {family.name} without TYPE or samples")
    return families


def _names(family: Family) -> tuple[str, ...]:
    if family.kind == "histogram":
        return tuple(family.name + s for s in ("_bucket", "_sum", "_count"))
    return (family.name,)


def values(families: dict[str, Family], suffix: str) -> dict[Labels, float]:
    family = families[P + suffix]
    return {labels: value for (_, labels), value in family.samples.items()}


# --- tests ------------------------------------------------------------------------------------


def test_small_sample_renders_exactly() -> None:
    assert render(small()).decode() == SMALL
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


def test_output_is_sorted_and_stable_whatever_the_input_order() -> None:
    sample = small()
    assert sample.images is not None
    shuffled = list(sample.images)
    random.Random(7).shuffle(shuffled)
    pools = dict(reversed(list(sample.pools.items())))
    results = dict(reversed(list(sample.results.items())))
    again = dataclasses.replace(sample, images=shuffled, pools=pools, results=results)
    assert render(again) == render(sample)


def test_small_sample_parses_back() -> None:
    families = parse(render(small()))
    assert values(families, "pool_images") == {(("pool", "rbd"),): 2, (("pool", "ssd"),): 1}
    assert values(families, "image_last_success_timestamp_seconds") == {
        (("pool", "rbd"), ("image", "rbd/a")): 1_700_000_090.25,
        (("pool", "rbd"), ("image", "rbd/b")): 1_700_000_000.0,
    }
    assert families[P + "snapshots_total"].kind == "counter"
    assert families[P + "snapshot_request_duration_seconds"].kind == "histogram"
    assert all(f.help for f in families.values())


def test_histogram_buckets_are_cumulative_and_inf_is_the_count() -> None:
    sample = dataclasses.replace(
        small(),
        latency_bounds=(0.1, 1.0, 10.0, 60.0),
        latency_buckets=(4, 0, 3, 1),
        latency_count=10,  # two took longer than the last bound
        latency_sum=123.5,
    )
    family = parse(render(sample))[P + "snapshot_request_duration_seconds"]
    name = P + "snapshot_request_duration_seconds"
    buckets = {
        labels[0][1]: value
        for (sample_name, labels), value in family.samples.items()
        if sample_name == name + "_bucket"
    }
    assert buckets == {"0.1": 4, "1.0": 4, "10.0": 7, "60.0": 8, "+Inf": 10}
    assert list(buckets) == ["0.1", "1.0", "10.0", "60.0", "+Inf"]  # ascending, as written
    assert family.samples[(name + "_sum", ())] == 123.5
    assert family.samples[(name + "_count", ())] == 10


def test_empty_histogram_still_has_inf_sum_and_count() -> None:
    sample = dataclasses.replace(
        small(), latency_bounds=(), latency_buckets=(), latency_count=0, latency_sum=0.0
    )
    text = render(sample).decode()
    name = P + "snapshot_request_duration_seconds"
    assert f'{name}_bucket{{le="+Inf"}} 0\n{name}_sum 0.0\n{name}_count 0\n' in text


def test_mismatched_histogram_is_an_error_not_a_wrong_answer() -> None:
    with pytest.raises(ValueError, match="3 latency bounds but 2"):
        render(dataclasses.replace(small(), latency_buckets=(1, 2)))


def test_label_values_are_escaped() -> None:
    pool = 'we\\ird"po\nol'
    image = f'{pool}/a "b"\\c\nd'
    sample = dataclasses.replace(
        small(),
        pools={pool: PoolSample(1, 0, 0, 0, None)},
        results={(pool, "failed", 'say "no"'): 1},
        images=[ImageSample(image, pool, 5.0, None, False, False)],
    )
    text = render(sample).decode()
    escaped_pool = 'we\\\\ird\\"po\\nol'
    assert f'{P}pool_images{{pool="{escaped_pool}"}} 1\n' in text
    assert (
        f'{P}image_last_success_timestamp_seconds{{pool="{escaped_pool}",'
        f'image="{escaped_pool}/a \\"b\\"\\\\c\\nd"}} 5.0\n'
    ) in text
    assert 'reason="say \\"no\\""} 1\n' in text
    families = parse(text.encode())
    assert values(families, "image_last_success_timestamp_seconds") == {
        (("pool", pool), ("image", image)): 5.0
    }
    assert escape_label_value("plain/name") == "plain/name"


def test_without_image_series_only_their_switch_says_so() -> None:
    text = render(dataclasses.replace(small(), images=None)).decode()
    assert "image_last_success" not in text and "image_next_run" not in text
    assert f"{P}image_series_enabled 0\n" in text
    assert f"{P}image_series_limit 10000\n" in text
    parse(text.encode())


def test_unknown_values_leave_their_family_out_whole() -> None:
    sample = dataclasses.replace(
        small(),
        pools={"rbd": PoolSample(0, 0, 0, 0, None)},
        results={},
        refresh_duration=None,
        last_refresh=None,
        images=[ImageSample("rbd/a", "rbd", None, None, False, False)],
    )
    families = parse(render(sample))
    for gone in (
        "image_last_success_timestamp_seconds",
        "image_next_run_timestamp_seconds",
        "pool_oldest_success_timestamp_seconds",
        "snapshots_total",
        "refresh_duration_seconds",
        "last_refresh_timestamp_seconds",
    ):
        assert P + gone not in families
    assert values(families, "pool_images") == {(("pool", "rbd"),): 0}
    assert values(families, "image_series_enabled") == {(): 1}


def test_driver_handles_are_gauges_once_known() -> None:
    assert P + "open_images" not in parse(render(small()))  # a sample without a driver
    families = parse(render(dataclasses.replace(small(), open_images=3, open_ioctxs=1)))
    assert values(families, "open_images") == {(): 3}
    assert values(families, "open_ioctxs") == {(): 1}
    assert families[P + "open_images"].kind == "gauge"


def test_no_pools_no_pool_families() -> None:
    families = parse(render(dataclasses.replace(small(), pools={}, images=[])))
    assert not [name for name in families if name.startswith(P + "pool_")]
    assert P + "scheduler_heartbeat_timestamp_seconds" in families


def test_values_are_written_as_go_reads_them() -> None:
    assert format_value(1.5) == "1.5"
    assert format_value(7) == "7"
    assert format_value(True) == "1"
    assert format_value(1e21) == "1e+21"
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert format_value(math.nan) == "NaN"
    images = [
        ImageSample("p/a", "p", math.inf, math.nan, False, False),
        ImageSample("p/b", "p", 3.0, -math.inf, False, False),
    ]
    text = render(dataclasses.replace(small(), images=images, late_factor=math.inf)).decode()
    assert '_last_success_timestamp_seconds{pool="p",image="p/a"} +Inf\n' in text
    assert '_next_run_timestamp_seconds{pool="p",image="p/a"} NaN\n' in text
    assert '_next_run_timestamp_seconds{pool="p",image="p/b"} -Inf\n' in text
    assert f"{P}late_factor +Inf\n" in text


def test_extra_gauges_take_no_taken_or_invalid_name() -> None:
    extra = {"threads": 3.0, "pool_images": 99.0, "bad name": 1.0, "queue_length": 5.0}
    text = render(dataclasses.replace(small(), extra=extra)).decode()
    assert f"# TYPE {P}threads gauge\n{P}threads 3.0\n" in text
    assert "99.0" not in text and "bad name" not in text
    assert f"{P}queue_length 3\n" in text
    parse(text.encode())


names = st.text(alphabet=st.sampled_from('ab/_-.\\"\n é€\t{}=,'), min_size=1, max_size=12)
times = st.one_of(st.none(), st.floats(min_value=0, max_value=4e9, allow_nan=False))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(names, names, times, times), max_size=20, unique_by=lambda t: (t[0], t[1])),
    st.dictionaries(st.tuples(names, names, names), st.integers(0, 2**53), max_size=5),
)
def test_any_names_and_values_parse_back_to_themselves(
    rows: list[tuple[str, str, float | None, float | None]],
    results: dict[tuple[str, str, str], int],
) -> None:
    images = [
        ImageSample(f"{pool}/{image}", pool, last, nxt, False, False)
        for pool, image, last, nxt in rows
    ]
    pools = {pool: PoolSample(1, 0, 0, 0, None) for pool, _, _, _ in rows}
    sample = dataclasses.replace(small(), images=images, pools=pools, results=results)
    families = parse(render(sample))
    got = families.get(P + "image_last_success_timestamp_seconds")
    want = {("p", i.pool, i.image): i.last_success for i in images if i.last_success is not None}
    assert {
        ("p", dict(labels)["pool"], dict(labels)["image"]): value
        for (_, labels), value in (got.samples.items() if got else ())
    } == want
    if results:
        assert {
            tuple(dict(labels)[k] for k in ("pool", "result", "reason")): value
            for labels, value in values(families, "snapshots_total").items()
        } == results
    if pools:
        assert values(families, "pool_images") == {(("pool", pool),): 1 for pool in pools}
