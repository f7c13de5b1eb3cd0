"""Fixtures shared by the cluster tests (helpers in ``tests/cluster/helpers.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cephcluster import Cluster
from tests.cluster.helpers import Pools, pool_prefix, sched


@pytest.fixture
def pools(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[Pools]:
    """Pools named after the test module and the test, deleted when the test ends."""
    made = Pools(cluster, pool_prefix(request.module.__name__, request.node.name))
    try:
        yield made
    finally:
        made.delete_all()


@pytest.fixture
def no_global_schedule_after(cluster: Cluster) -> Iterator[None]:
    """Remove the whole global schedule when the test ends: it would govern every pool."""
    try:
        yield
    finally:
        sched(cluster, "rm")
