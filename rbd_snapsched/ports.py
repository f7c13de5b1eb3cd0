"""The scheduler's ports: what it asks of the cluster and of the snapshot driver.

``cluster.RadosClusterIO`` and ``rbd_driver.RbdDriver`` implement them over librados/librbd;
``tests/fake_cluster.py`` over memory. The contract suites in ``tests/contract/`` hold both to
the same behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from .levels import ImageSpec, LevelSpec, PoolInfo
from .requests import Outcome, State


class ClusterIO(Protocol):
    """What the scheduler reads from the cluster, besides stored schedules."""

    def rbd_pools(self) -> list[PoolInfo]: ...

    def discover(
        self, pool: PoolInfo, wanted: Callable[[LevelSpec], bool]
    ) -> dict[ImageSpec, str] | None:
        """Primary snapshot-mirrored images -> display name; None if the pool failed."""
        ...

    def has_tx_peer(self, pool_id: int) -> bool:
        """The pool has a mirror peer to send snapshots to (librbd refuses them otherwise)."""
        ...

    def newest_mirror_snapshot(self, image: ImageSpec) -> datetime | None:
        """When the image's newest primary mirror snapshot was taken; None if it has none or
        it cannot be read (logged)."""
        ...


class SnapshotDriver(Protocol):
    """Runs one image's snapshot request and calls ``done`` exactly once, on any thread."""

    def start(
        self,
        image: ImageSpec,
        name: str,
        done: Callable[[ImageSpec, Outcome], None],
        recent_since: datetime | None = None,
    ) -> None:
        """``recent_since``: a catch-up, which skips the snapshot if the image has a mirror
        snapshot at least that recent."""
        ...

    def in_flight(self, image: ImageSpec) -> State | None:
        """The step ``image``'s request is in (None: no request of it before ``done``).

        The scheduler asks when a request outlives its bound (``snap_create_timeout``), to
        say where it is stuck; librbd cannot cancel it, so the driver still runs it to its
        end, closes the image and calls ``done``, however late."""
        ...
