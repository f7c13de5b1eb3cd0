"""Storage: upstream's record format under our names, pruning, corrupt records, failing pools."""

from __future__ import annotations

import json
import logging

import pytest

from rbd_snapsched.levels import LevelSpec, resolve_name
from rbd_snapsched.schedule import Interval, Schedule, ScheduleItem, StartTime
from rbd_snapsched.store import SCHEDULE_OID, ScheduleStore
from tests.fake_cluster import JOURNAL, FakeCluster, FakeOmap, FakeOption, FakePool


def every(text: str, start: str = "") -> Schedule:
    return Schedule().with_item(ScheduleItem(Interval.parse(text), StartTime.parse(start)))


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
def pool(cluster: FakeCluster) -> FakePool:
    pool = cluster.add_pool("rbd")
    cluster.add_namespace(pool, "ns")
    cluster.add_image(pool, "img")
    return pool


@pytest.fixture
def option() -> FakeOption:
    return FakeOption()


@pytest.fixture
def store(cluster: FakeCluster, option: FakeOption) -> ScheduleStore:
    return ScheduleStore(
        FakeOmap(cluster, SCHEDULE_OID), option, cluster, logging.getLogger("test")
    )


def test_save_writes_upstreams_record_format(
    cluster: FakeCluster, pool: FakePool, store: ScheduleStore, option: FakeOption
) -> None:
    image = resolve_name("rbd/img", cluster)
    store.save(image, every("1d", "14:00-05:00"))
    store.save(LevelSpec.global_level(), every("1h"))
    record = pool.objects[SCHEDULE_OID][image.id]
    assert json.loads(record) == [{"interval": "1d", "start_time": "14:00:00-05:00"}]
    assert record.decode() == json.dumps(json.loads(record), indent=4, sort_keys=True)
    assert json.loads(option.value or "") == [{"interval": "1h", "start_time": None}]
    # An empty schedule deletes the record / clears the option.
    store.save(image, Schedule())
    store.save(LevelSpec.global_level(), Schedule())
    assert image.id not in pool.objects[SCHEDULE_OID] and option.value is None


def test_load_round_trips_every_level(
    cluster: FakeCluster, pool: FakePool, store: ScheduleStore, option: FakeOption
) -> None:
    levels = [resolve_name(n, cluster) for n in ("", "rbd/", "rbd//", "rbd/ns/", "rbd/img")]
    for n, level in enumerate(levels, start=1):
        store.save(level, every(f"{n}h"))
    catalog = store.load(cluster.rbd_pools()).catalog
    loaded = {(level.id, level.name): schedule for level, schedule in catalog}
    assert loaded == {(lv.id, lv.name): every(f"{n}h") for n, lv in enumerate(levels, start=1)}


def test_load_reads_rbd_support_records(
    cluster: FakeCluster, pool: FakePool, store: ScheduleStore, option: FakeOption
) -> None:
    pool.objects[SCHEDULE_OID] = {
        str(pool.id): b'[{"interval": "60m"}, {"interval": "1d", "start_time": "01:30:00"}]'
    }
    catalog = store.load(cluster.rbd_pools()).catalog
    schedule = catalog.get(LevelSpec(pool.id, None, None, ""))
    assert schedule == every("1h").with_item(
        ScheduleItem(Interval.parse("1d"), StartTime.parse("01:30"))
    )


def test_stale_levels_are_pruned_but_unmirrored_images_keep_theirs(
    cluster: FakeCluster, pool: FakePool, store: ScheduleStore, option: FakeOption
) -> None:
    image = resolve_name("rbd/img", cluster)
    gone = cluster.add_image(pool, "gone")
    gone_level = resolve_name("rbd/gone", cluster)
    ns_level = resolve_name("rbd/ns/", cluster)
    for level in (image, gone_level, ns_level):
        store.save(level, every("1h"))
    cluster.remove_image(gone)
    del pool.namespaces["ns"]
    cluster.image(next(iter(cluster.rbd.images))).mode = JOURNAL  # img: mirroring switched
    catalog = store.load(cluster.rbd_pools()).catalog
    assert [level for level, _ in catalog] == [image]
    assert set(pool.objects[SCHEDULE_OID]) == {image.id}


def test_corrupt_records_are_logged_and_skipped_never_deleted(
    cluster: FakeCluster,
    pool: FakePool,
    store: ScheduleStore,
    option: FakeOption,
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = resolve_name("rbd/", cluster)
    store.save(good, every("1h"))
    records = pool.objects[SCHEDULE_OID]
    records[f"{pool.id}/"] = b"{not json"
    records[f"{pool.id}//"] = b'[{"interval": "0m"}]'
    records["junk key"] = b"[]"
    records[f"{pool.id}/ns"] = b"\xff\xfe"
    option.value = "nonsense"
    with caplog.at_level(logging.ERROR):
        catalog = store.load(cluster.rbd_pools()).catalog
    assert [level for level, _ in catalog] == [good]
    assert len(records) == 5
    assert "Failed to decode" in caplog.text


def test_a_pool_that_fails_to_load_keeps_its_previous_schedules(
    cluster: FakeCluster, pool: FakePool, store: ScheduleStore, option: FakeOption
) -> None:
    level = resolve_name("rbd/", cluster)
    other = cluster.add_pool("other")
    other_level = resolve_name("other/", cluster)
    store.save(level, every("1h"))
    store.save(other_level, every("2h"))
    previous = store.load(cluster.rbd_pools()).catalog
    cluster.failing_pools.add(pool.id)
    pool.objects.clear()  # would read as "no schedules" if it were read
    catalog = store.load(cluster.rbd_pools(), previous).catalog
    assert catalog.get(level) == every("1h") and catalog.get(other_level) == every("2h")
    assert other.id not in cluster.failing_pools


def test_a_corrupt_record_is_logged_once_naming_its_key_until_it_changes(
    cluster: FakeCluster, pool: FakePool, store: ScheduleStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Every refresh reads the record again: one error line, not one a minute."""
    good = resolve_name("rbd/", cluster)
    store.save(good, every("1h"))
    records = pool.objects[SCHEDULE_OID]
    image_key = f"{pool.id}//{cluster.image_by_name(pool.id, '', 'img').id}"  # type: ignore[union-attr]
    records[image_key] = b"{not json"
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            catalog = store.load(cluster.rbd_pools()).catalog
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, errors
    assert repr(image_key) in errors[0] and "(level rbd/img)" in errors[0]
    assert [level for level, _ in catalog] == [good]  # the other schedule kept
    records[image_key] = b'{"interval": "1m"}'  # changed: told again
    with caplog.at_level(logging.ERROR):
        store.load(cluster.rbd_pools())
        store.load(cluster.rbd_pools())
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and "must be a JSON list" in errors[1], errors
