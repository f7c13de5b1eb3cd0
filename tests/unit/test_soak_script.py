"""The soak's script generator (``tests/soak/script.py``): reproducible from its seed, and
every event it draws makes sense in the state its earlier events made."""

from __future__ import annotations

from collections import Counter

from tests.soak.script import (
    FAULTS,
    INTERVALS,
    RECOVERY_GAP,
    Event,
    ImageSpot,
    Level,
    format_script,
    generate,
    make_layout,
)

LAYOUT = make_layout(200)


def test_one_seed_one_script_and_another_seed_another() -> None:
    assert generate(7, 60, LAYOUT) == generate(7, 60, LAYOUT)
    assert format_script(generate(7, 60, LAYOUT)) == format_script(generate(7, 60, LAYOUT))
    assert generate(7, 60, LAYOUT) != generate(8, 60, LAYOUT)


def test_events_are_in_order_inside_the_run_with_a_quiet_tail() -> None:
    events = generate(1, 60, LAYOUT, lead=30, quiet_tail=90)
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert all(30 <= e.at <= 60 * 60 - 90 for e in events)


def test_faults_take_turns_and_each_kind_comes_in_an_hour() -> None:
    for seed in range(20):
        faults = [e for e in generate(seed, 60, LAYOUT) if e.lane == "fault"]
        assert {f.kind for f in faults} == set(FAULTS), seed
        for before, after in zip(faults, faults[1:]):
            assert after.at >= before.at + before.duration + RECOVERY_GAP - 0.1, (before, after)
        assert faults[0].at >= 60


def test_a_short_run_still_has_faults_and_operations() -> None:
    events = generate(22, 4, make_layout(40))
    lanes = Counter(e.lane for e in events)
    assert lanes["fault"] >= 1 and lanes["ops"] >= 3, events


def _replay(events: list[Event]) -> None:
    """Every event is possible in the state the ones before it made."""
    primary = {s.handle: True for s in LAYOUT.images}
    mirrored = {s.handle: True for s in LAYOUT.images}
    items = set(LAYOUT.schedules)
    paused: set[Level] = set()
    for e in events:
        if e.kind == "image_create":
            assert e.spot is not None and e.spot.handle not in primary
            primary[e.spot.handle] = mirrored[e.spot.handle] = True
        elif e.kind == "image_delete":
            assert e.image is not None and primary.pop(e.image)
            items = {(lv, i) for lv, i in items if lv.image != e.image}
            paused = {lv for lv in paused if lv.image != e.image}
        elif e.kind == "image_demote":
            assert e.image is not None and primary[e.image] and mirrored[e.image]
            primary[e.image] = False
        elif e.kind == "image_promote":
            assert e.image is not None and not primary[e.image]
            primary[e.image] = True
        elif e.kind == "mirror_disable":
            assert e.image is not None and mirrored[e.image] and primary[e.image]
            mirrored[e.image] = False
        elif e.kind == "mirror_enable":
            assert e.image is not None and not mirrored[e.image]
            mirrored[e.image] = True
        elif e.kind == "schedule_add":
            assert e.level is not None and e.interval in INTERVALS and e.cli in ("rbd", "ceph")
            assert e.level.image is None or e.level.image in primary
            items.add((e.level, e.interval))
        elif e.kind == "schedule_remove":
            assert e.level is not None
            if e.interval is None:
                assert e.level.kind != "global"
                assert any(lv == e.level for lv, _ in items)
                items = {(lv, i) for lv, i in items if lv != e.level}
            else:
                assert (e.level, e.interval) in items
                items.discard((e.level, e.interval))
            assert any(lv.kind == "global" for lv, _ in items), "the last global item went"
        elif e.kind == "pause":
            assert e.level is not None and e.level not in paused
            paused.add(e.level)
        elif e.kind == "resume":
            assert e.level is not None and e.level in paused
            paused.discard(e.level)
    assert not paused, "every pause is resumed by the end"


def test_every_event_is_possible_when_it_comes() -> None:
    for seed in range(30):
        _replay(generate(seed, 60, LAYOUT))


def test_the_layout_has_every_level_and_interval() -> None:
    assert {lv.kind for lv, _ in LAYOUT.schedules} == {"global", "pool", "namespace", "image"}
    assert {i for _, i in LAYOUT.schedules} == set(INTERVALS)
    assert len(LAYOUT.images) == 200
    assert Counter((s.pool, s.namespace) for s in LAYOUT.images) == {
        ("soak_a", ""): 50,
        ("soak_a", "ns1"): 50,
        ("soak_b", ""): 50,
        ("soak_b", "ns1"): 50,
    }


def test_levels_speak_both_clis() -> None:
    image = Level("p", "ns", "img")
    assert (Level().spec(), Level("p").spec(), Level("p", "ns").spec()) == ("", "p/", "p/ns/")
    assert image.spec("renamed") == "p/ns/renamed"
    assert Level("p", None, "img").spec() == "p/img"
    assert image.rbd_args("renamed") == ["--pool", "p", "--namespace", "ns", "--image", "renamed"]
    assert Level().rbd_args() == []
    assert image.covers(ImageSpot("img", "p", "ns"))
    assert not Level("p", "ns").covers(ImageSpot("x", "p", ""))
    assert Level("p").covers(ImageSpot("x", "p", "ns"))
    assert [lv.rank for lv in (Level(), Level("p"), Level("p", "n"), image)] == [0, 1, 2, 3]
