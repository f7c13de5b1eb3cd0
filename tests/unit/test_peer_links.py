"""``cluster.peer_links``: which primary mirror snapshots a peer has not released yet."""

from __future__ import annotations

from typing import Any

import rbd

from rbd_snapsched.cluster import peer_links

MIRROR = rbd.RBD_SNAP_NAMESPACE_TYPE_MIRROR
PRIMARY = rbd.RBD_SNAP_MIRROR_STATE_PRIMARY
DEMOTED = rbd.RBD_SNAP_MIRROR_STATE_PRIMARY_DEMOTED
NON_PRIMARY = rbd.RBD_SNAP_MIRROR_STATE_NON_PRIMARY


def snap(snap_id: int, state: int = PRIMARY, *peers: str) -> dict[str, Any]:
    """One ``Image.list_snaps()`` entry of the mirror namespace, as the binding gives it."""
    return {
        "id": snap_id,
        "name": f".mirror.x.{snap_id}",
        "namespace": MIRROR,
        "mirror": {"state": state, "mirror_peer_uuids": list(peers), "complete": True},
    }


def test_counts_each_peers_linked_primary_snapshots() -> None:
    # As seen on Pacific with site-b's rbd-mirror stopped: the synced base and every newer one.
    snaps = [snap(6, PRIMARY, "b"), snap(8, PRIMARY, "b", "c"), snap(10, PRIMARY, "b")]
    assert peer_links(snaps) == {"b": 3, "c": 1}


def test_a_caught_up_peer_is_linked_to_the_newest_only() -> None:
    snaps = [snap(6), snap(8), snap(10), snap(17, PRIMARY, "b")]
    assert peer_links(snaps) == {"b": 1}


def test_user_snapshots_and_snapshots_of_other_namespaces_do_not_count() -> None:
    user = {"id": 3, "name": "before-upgrade", "namespace": rbd.RBD_SNAP_NAMESPACE_TYPE_USER}
    assert peer_links([user, snap(7, PRIMARY, "b")]) == {"b": 1}


def test_only_snapshots_since_the_image_last_became_primary_count() -> None:
    # Linked snapshots of an earlier term as primary, then a demotion, a replica's copy and a
    # promotion: a failed-back image starts afresh (listed out of id order on purpose).
    earlier = [snap(4, PRIMARY, "b"), snap(5, PRIMARY, "b"), snap(9, DEMOTED, "b")]
    back = [snap(12, NON_PRIMARY), snap(15, PRIMARY, "b")]
    assert peer_links([*back, *earlier]) == {"b": 1}


def test_no_mirror_snapshot_no_peer() -> None:
    assert peer_links([]) == {}
