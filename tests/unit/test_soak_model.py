"""The soak's model of a cluster (``tests/soak/model.py``): eligibility, slot grids, the
listing it expects, and commands whose outcome is unknown."""

from __future__ import annotations

import zlib

from tests.soak.model import ClusterModel, initial_model, listing_of
from tests.soak.script import ImageSpot, Layout, Level

T0 = 1_800_000_000.0  # a whole minute
A, B = ImageSpot("a", "p", ""), ImageSpot("b", "p", "ns")
LAYOUT = Layout(("p",), ("ns",), (A, B), ((Level(), 5), (Level("p", "ns"), 1)))


def model() -> ClusterModel:
    return initial_model(LAYOUT, bound=30, at=T0)


def row(pool: str, ns: str, image: str, *intervals: str) -> dict[str, object]:
    items = [{"interval": i, "start_time": ""} for i in intervals]
    return {"pool": pool, "namespace": ns, "image": image, "items": items}


def test_the_most_specific_level_governs() -> None:
    m = model()
    assert m.signature("a") == frozenset({(5, 0)})
    assert m.signature("b") == frozenset({(1, 0)})
    m.schedule_change(T0 + 1, Level("p", None, "b"), 2, add=True, outcome="ok", settle=5)
    assert m.signature("b") == frozenset({(2, 0)})


def test_pauses_demotions_and_disabled_mirroring_make_images_ineligible() -> None:
    m = model()
    m.pause(T0 + 1, Level("p"), True)
    assert m.signature("a") is None and m.signature("b") is None
    m.pause(T0 + 2, Level("p"), False)
    m.image_primary(T0 + 3, "a", False)
    m.image_mirrored(T0 + 4, "b", False)
    assert m.signature("a") is None and m.signature("b") is None
    assert [s for _, s in m.timeline["a"]] == [frozenset({(5, 0)}), None, frozenset({(5, 0)}), None]


def test_a_failed_command_changes_nothing() -> None:
    m = model()
    m.schedule_change(T0 + 1, Level("p"), 2, add=True, outcome="failed", settle=5)
    assert m.signature("a") == frozenset({(5, 0)}) and not m.disturbances


def test_stagger_phases_come_from_the_ids() -> None:
    m = model()
    m.pool_ids["p"] = 3
    m.images["b"].image_id = "abc123"
    m.schedule_change(T0, Level("p", "ns"), 5, add=True, outcome="ok", settle=5)
    m.set_stagger(T0 + 1, True)
    key = zlib.crc32(b"3/ns/abc123")
    assert m.signature("b") == frozenset({(1, 0), (5, key % 5)})


def test_the_listing_matches_and_mismatches_are_named() -> None:
    m = model()
    rows = [row("-", "-", "-", "5m"), row("p", "ns", "-", "1m")]
    assert m.check_listing(rows, T0) == []
    problems = m.check_listing([row("-", "-", "-", "5m")], T0)
    assert problems == ["p/ns/-: listed [], expected ['1m@']"]


def test_a_renamed_image_is_listed_under_its_new_name() -> None:
    m = model()
    m.schedule_change(T0, Level("p", None, "a"), 2, add=True, outcome="ok", settle=5)
    m.image_renamed(T0 + 1, "a", "a-r1", rename_within=90)
    rows = [row("-", "-", "-", "5m"), row("p", "ns", "-", "1m"), row("p", "", "a-r1", "2m")]
    assert m.check_listing(rows, T0 + 2) == []
    assert m.check_listing(rows, T0 + 100) == []


def test_a_renamed_image_may_keep_its_old_name_until_the_next_refresh() -> None:
    # The soak's 35-minute run at seed 1407149993: `ls` 12 s after a rename still showed the
    # old name (names are learned at a refresh, as rbd_support's are); after it, not any more.
    m = model()
    m.schedule_change(T0, Level("p", None, "a"), 2, add=True, outcome="ok", settle=5)
    m.image_renamed(T0 + 1, "a", "a-r1", rename_within=90)
    rows = [row("-", "-", "-", "5m"), row("p", "ns", "-", "1m"), row("p", "", "a", "2m")]
    assert m.check_listing(rows, T0 + 13) == []
    assert m.check_listing(rows, T0 + 92) == [
        "p//a: listed ['2m@'], expected []",
        "p//a-r1: listed [], expected ['2m@']",
    ]


def test_a_deleted_images_schedule_may_linger_until_pruned() -> None:
    m = model()
    m.schedule_change(T0, Level("p", None, "a"), 2, add=True, outcome="ok", settle=5)
    m.image_deleted(T0 + 10, "a", prune_within=60)
    rows = [row("-", "-", "-", "5m"), row("p", "ns", "-", "1m"), row("p", "", "a", "2m")]
    assert m.check_listing(rows, T0 + 30) == []
    assert m.check_listing(rows, T0 + 71) == ["p//a: listed ['2m@'], expected []"]
    assert m.signature("a") is None


def test_an_unknown_outcome_takes_the_state_the_listing_shows() -> None:
    m = model()
    level = Level("p")
    m.schedule_change(T0, level, 2, add=True, outcome="unknown", settle=5)
    base = [row("-", "-", "-", "5m"), row("p", "ns", "-", "1m")]
    assert m.check_listing(base, T0 + 20) == []  # not applied after all
    assert level not in m.schedules and not m.uncertain
    assert m.signature("a") == frozenset({(5, 0)})
    causes = [d.cause for d in m.disturbances]
    assert causes == ["schedule add p/", "unknown outcome: schedule add p/"]
    m.schedule_change(T0 + 30, level, 2, add=True, outcome="unknown", settle=5)
    assert m.check_listing([*base, row("p", "-", "-", "2m")], T0 + 40) == []
    assert m.schedules[level] == frozenset({2})


def test_handles_are_found_by_id_first_then_by_name() -> None:
    m = model()
    m.images["a"].image_id = "id-a"
    assert m.handle_of("p", "", "whatever", "id-a") == "a"
    assert m.handle_of("p", "ns", "b", None) == "b"
    assert m.handle_of("p", "ns", "nope", "id-x") is None


def test_listing_rows_parse() -> None:
    got = listing_of([row("p", "", "a", "1m", "5m")])
    assert got == {("p", "", "a"): frozenset({"1m@", "5m@"})}


def test_an_image_command_without_an_answer_stops_judging_that_image() -> None:
    m = model()
    m.schedule_change(T0, Level("p", None, "a"), 2, add=True, outcome="ok", settle=5)
    m.image_unsure(T0 + 10, "a", "image_rename", {"a", "a-r1"})
    (last,) = [d for d in m.disturbances if d.cause == "unknown outcome: image_rename"]
    assert last.explains("a", T0 + 10**6) and not last.explains("b", T0 + 20)
    rows = [row("-", "-", "-", "5m"), row("p", "ns", "-", "1m"), row("p", "", "a-r1", "2m")]
    assert m.check_listing(rows, T0 + 20) == []
