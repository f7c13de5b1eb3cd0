"""Which restricted clients lose the schedule commands, and the grant that keeps them."""

from __future__ import annotations

import pytest

from rbd_snapsched.caps import (
    CapsError,
    missing_grants,
    module_grant,
    split_grants,
    with_grants,
    without_ours,
)


def texts(caps: str) -> list[str]:
    return [g.text() for g in missing_grants(caps)]


def test_split_grants_keeps_quoted_separators() -> None:
    assert split_grants("profile rbd pool=a, allow r ;allow command 'x, y'") == [
        "profile rbd pool=a",
        "allow r",
        "allow command 'x, y'",
    ]
    with pytest.raises(CapsError):
        split_grants("allow command 'x")


@pytest.mark.parametrize(
    ("caps", "needed"),
    [
        ("profile rbd pool=p1", ["allow module rbd_snapsched with pool=p1 rw"]),
        (
            "profile rbd pool=p1 namespace=ns1",
            ["allow module rbd_snapsched with pool=p1 namespace=ns1 rw"],
        ),
        ("allow profile rbd pool=p1", ["allow module rbd_snapsched with pool=p1 rw"]),
        ("profile rbd-read-only pool=p2", ["allow module rbd_snapsched with pool=p2 r"]),
        ("profile rbd", ["allow module rbd_snapsched rw"]),  # unrestricted stays unrestricted
        (
            "profile rbd pool=a, profile rbd pool=b",
            [
                "allow module rbd_snapsched with pool=a rw",
                "allow module rbd_snapsched with pool=b rw",
            ],
        ),
        (
            "allow module rbd_support with pool=p1 r",
            ["allow module rbd_snapsched with pool=p1 r"],
        ),
        (
            "profile rbd pool=p1 network 10.0.0.0/8",
            ["allow module rbd_snapsched with pool=p1 rw network 10.0.0.0/8"],
        ),
        (
            "allow module rbd_support with pool prefix tenant- rw",
            ["allow module rbd_snapsched with pool prefix tenant- rw"],
        ),
    ],
)
def test_the_matching_grant_has_the_same_scope(caps: str, needed: list[str]) -> None:
    assert texts(caps) == needed


@pytest.mark.parametrize(
    "caps",
    [
        "allow *",
        "allow r",
        "allow rw",
        "profile mgr",
        "profile crash",
        "allow module prometheus rw",
        'allow command "rbd mirror snapshot schedule ls"',
        # Already extended: nothing more to add, and no duplicate.
        "profile rbd pool=p1, allow module rbd_snapsched with pool=p1 rw",
        "",
    ],
)
def test_clients_that_keep_the_commands_need_nothing(caps: str) -> None:
    assert texts(caps) == []


def test_a_wider_grant_of_ours_is_not_taken_for_the_matching_one() -> None:
    # The client's own rbd_snapsched grant is read-only: the write grant is still missing.
    caps = "profile rbd pool=p1, allow module rbd_snapsched with pool=p1 r"
    assert texts(caps) == ["allow module rbd_snapsched with pool=p1 rw"]


def test_extend_and_restore_round_trip() -> None:
    caps = "profile rbd pool=p1 namespace=ns1"
    extended = with_grants(caps, missing_grants(caps))
    assert extended == (
        "profile rbd pool=p1 namespace=ns1, "
        "allow module rbd_snapsched with pool=p1 namespace=ns1 rw"
    )
    assert missing_grants(extended) == []
    restored, removed = without_ours(extended)
    assert restored == caps
    assert removed == ["allow module rbd_snapsched with pool=p1 namespace=ns1 rw"]


def test_values_that_need_quotes_are_quoted() -> None:
    grant = module_grant('allow module rbd_support with pool="my pool" rw')
    assert grant is not None
    assert grant.same_scope("rbd_snapsched").text() == (
        'allow module rbd_snapsched with pool="my pool" rw'
    )


@pytest.mark.parametrize("caps", ["allow module rbd_support with pool=p1", "profile rbd pool=p1 x"])
def test_unreadable_grants_are_refused_not_guessed(caps: str) -> None:
    with pytest.raises(CapsError):
        missing_grants(caps)
