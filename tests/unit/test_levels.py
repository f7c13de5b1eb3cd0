"""Level specs: pure parsing, upstream's validation order and messages, relations."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rbd_snapsched.errors import InvalidArgument
from rbd_snapsched.levels import (
    ImageSpec,
    Level,
    LevelName,
    LevelSpec,
    StaleLevel,
    caps_args,
    parse_id,
    resolve_id,
    resolve_name,
)
from tests.fake_cluster import JOURNAL, FakeCluster, FakePool


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", LevelName(None, None, None)),
        ("rbd/", LevelName("rbd", None, None)),
        ("rbd//", LevelName("rbd", "", None)),
        ("rbd/ns/", LevelName("rbd", "ns", None)),
        ("rbd/img", LevelName("rbd", "", "img")),
        ("rbd//img", LevelName("rbd", "", "img")),
        ("rbd/ns/img", LevelName("rbd", "ns", "img")),
    ],
)
def test_parse_every_name_form(text: str, expected: LevelName) -> None:
    assert LevelName.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["rbd", "/", "//", "rbd/ns/img/x", "rbd/img@snap", "/img", "a/b/c/"]
)
def test_parse_rejects_other_names(text: str) -> None:
    with pytest.raises(InvalidArgument, match=f"^failed to parse {text}$"):
        LevelName.parse(text)


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
def pool(cluster: FakeCluster) -> FakePool:
    pool = cluster.add_pool("rbd")
    cluster.add_namespace(pool, "ns")
    cluster.add_namespace(pool, "journal_ns", image_mode=False)
    cluster.add_image(pool, "img")
    cluster.add_image(pool, "img", "ns")
    cluster.add_image(pool, "jimg", mode=JOURNAL)
    cluster.add_image(pool, "secondary", primary=False)
    return pool


def test_resolve_names_normalise_as_upstream(cluster: FakeCluster, pool: FakePool) -> None:
    img = resolve_name("rbd//img", cluster)
    assert (img.name, img.level) == ("rbd/img", Level.IMAGE)
    assert img.id == f"{pool.id}//{img.image_id}"
    ns_img = resolve_name("rbd/ns/img", cluster)
    assert ns_img.name == "rbd/ns/img" and ns_img.id == f"{pool.id}/ns/{ns_img.image_id}"
    assert ns_img.image_id != img.image_id
    assert resolve_name("rbd/", cluster).id == str(pool.id)
    default_ns = resolve_name("rbd//", cluster)
    assert (default_ns.name, default_ns.id, default_ns.level) == (
        "rbd//",
        f"{pool.id}/",
        Level.NAMESPACE,
    )
    assert resolve_name("rbd/ns/", cluster).id == f"{pool.id}/ns"
    assert resolve_name("", cluster) == LevelSpec.global_level()
    # Primary status is not required.
    assert resolve_name("rbd/secondary", cluster).level is Level.IMAGE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope/", "pool nope does not exist"),
        ("data/", "data is not an RBD pool"),
        ("rbd/missing/", "namespace missing does not exist"),
        ("rbd/journal_ns/", "namespace journal_ns is not in mirror image mode"),
        ("rbd/journal_ns/x", "namespace journal_ns is not in mirror image mode"),
        ("rbd/missing", "image missing does not exist"),
        ("rbd/ns/missing", "image missing does not exist"),
        ("rbd/jimg", "image jimg is not in snapshot mirror mode"),
    ],
)
def test_resolve_rejects_with_upstream_messages(
    cluster: FakeCluster, pool: FakePool, text: str, message: str
) -> None:
    cluster.add_pool("data", is_rbd=False)
    with pytest.raises(InvalidArgument) as info:
        resolve_name(text, cluster)
    assert str(info.value) == message
    assert info.value.errno == 22


def test_disabled_image_is_not_in_snapshot_mode(cluster: FakeCluster, pool: FakePool) -> None:
    image = resolve_name("rbd/img", cluster)
    cluster.image(ImageSpec(pool.id, "", image.image_id or "")).state = 0
    with pytest.raises(InvalidArgument, match="image img is not in snapshot mirror mode"):
        resolve_name("rbd/img", cluster)


def test_ids_round_trip_and_resolve(cluster: FakeCluster, pool: FakePool) -> None:
    for name in ("", "rbd/", "rbd//", "rbd/ns/", "rbd/img", "rbd/ns/img"):
        spec = resolve_name(name, cluster)
        assert parse_id(spec.id) == spec
        resolved = resolve_id(spec.id, cluster)
        assert resolved == spec and resolved.name == spec.name


@pytest.mark.parametrize("level_id", ["x", "1/ns/img/extra", "-1", "1//img@s", "1\n"])
def test_parse_id_rejects_junk(level_id: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_id(level_id)


def test_resolve_id_reports_stale_levels(cluster: FakeCluster, pool: FakePool) -> None:
    image = resolve_name("rbd/img", cluster)
    with pytest.raises(StaleLevel):
        resolve_id("99", cluster)
    with pytest.raises(StaleLevel):
        resolve_id(f"{pool.id}/gone", cluster)
    with pytest.raises(StaleLevel):
        resolve_id(f"{pool.id}//nosuchid", cluster)
    # Mirroring switched off: not stale, the schedule stays.
    cluster.image(ImageSpec(pool.id, "", image.image_id or "")).mode = JOURNAL
    assert resolve_id(image.id, cluster) == image


def test_relations() -> None:
    glob = LevelSpec.global_level()
    pool = LevelSpec(1, None, None, "p/")
    default_ns = LevelSpec(1, "", None, "p//")
    ns = LevelSpec(1, "ns", None, "p/ns/")
    image = LevelSpec(1, "ns", "abc", "p/ns/i")
    other_pool = LevelSpec(2, None, None, "q/")
    assert image.ancestors() == [ns, pool, glob]
    assert image.is_child_of(pool) and image.is_child_of(glob) and not pool.is_child_of(image)
    assert default_ns.is_child_of(pool) and not ns.is_child_of(default_ns)
    assert not glob.is_child_of(glob)
    assert pool.intersects(image) and image.intersects(glob) and not other_pool.intersects(ns)
    assert not default_ns.intersects(ns)
    inside = ImageSpec(1, "ns", "abc")
    # status's filter: an empty namespace matches every namespace, as upstream.
    assert default_ns.matches(inside) and not other_pool.matches(inside)
    assert {pool: 1}[LevelSpec(1, None, None, "")] == 1  # names do not take part in equality


@pytest.mark.parametrize(
    ("text", "args"),
    [
        ("", {}),
        ("p/", {"pool": "p"}),
        ("p//", {"pool": "p", "namespace": ""}),
        ("p/ns/", {"pool": "p", "namespace": "ns"}),
        ("p/img", {"pool": "p", "namespace": ""}),
        ("p//img", {"pool": "p", "namespace": ""}),
        ("p/ns/img", {"pool": "p", "namespace": "ns"}),
        ("nosuchpool/nosuchns/nosuchimg", {"pool": "nosuchpool", "namespace": "nosuchns"}),
    ],
)
def test_caps_args_come_from_the_name_alone(text: str, args: dict[str, str]) -> None:
    """What the caller's caps must allow is known before any lookup, so a refused client
    learns nothing about what exists outside its caps."""
    assert caps_args(LevelName.parse(text)) == args


specs = st.builds(
    LevelSpec,
    st.none() | st.sampled_from([1, 2]),
    st.none() | st.sampled_from(["", "ns"]),
    st.none() | st.sampled_from(["i1", "i2"]),
    st.just(""),
)


@settings(max_examples=500, derandomize=True)
@given(specs, specs)
def test_is_child_of_is_being_among_the_ancestors(child: LevelSpec, other: LevelSpec) -> None:
    """``list`` asks it of every stored level, so it no longer builds the ancestors; it must
    answer as they would, for any spec (even one no command resolves to)."""
    assert child.is_child_of(other) == (other in child.ancestors())
