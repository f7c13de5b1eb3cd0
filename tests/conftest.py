"""pytest wiring: the releases, the ``ceph_cluster`` marker and each release's session cluster.

Every test that needs a cluster takes the ``release`` fixture (through ``cluster`` or directly)
and runs once per release named by ``--releases`` (default: every supported one); its id ends in
``[pacific]``, ``[reef]`` or ``[tentacle]``. Under pytest-xdist (``-n 4``) each release's tests
stay on one worker, the fault suite (marker ``faults``: host release only, a cluster of its
own per test) on a fourth (``pytest_xdist_make_scheduler`` below), so the releases and the
faults run side by side, one session cluster per release, booted on first use by
``tests/cephcluster.py``. If a cluster cannot boot, every test of that release errors with the
reason and the daemon log tails; none is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.cephcluster import Cluster
from tests.releases import RELEASES, host_release
from tests.runtime_rpc import Remote


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--releases",
        default=",".join(RELEASES),
        help=f"comma-separated releases the cluster tests run on (default: {','.join(RELEASES)})",
    )


def selected_releases(config: pytest.Config) -> list[str]:
    names = [n.strip() for n in str(config.getoption("--releases")).split(",") if n.strip()]
    unknown = [n for n in names if n not in RELEASES]
    if unknown or not names:
        raise pytest.UsageError(f"--releases: unknown {unknown}; choose from {list(RELEASES)}")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "release" in metafunc.fixturenames:
        metafunc.parametrize("release", selected_releases(metafunc.config), scope="session")


def release_of(nodeid: str, host: str) -> str:
    """The release a test id runs on: the release among its parameters, else the host's."""
    params = nodeid.rpartition("[")[2].rstrip("]") if nodeid.endswith("]") else ""
    found = [word for word in params.split("-") if word in RELEASES]
    return found[-1] if found else host


FAULTS_SCOPE = "faults"
FAULTS_FILES = "tests/cluster/test_faults_"  # their tests, and only theirs, are marked `faults`


# Tests that boot clusters of their own on every release, never the release's session
# cluster: they run in the fault suite's unit, which finishes about 20 minutes before the
# releases' (the dashboard's, about 3.5 minutes a release, brought the full run under 45)
OWN_CLUSTER_FILES = ("tests/cluster/test_dashboard.py",)


def scope_of(nodeid: str, host: str) -> str:
    """The xdist work unit of a test: ``faults`` for the fault suite (each of its tests boots
    its own host-release cluster and kills daemons of it) and for ``OWN_CLUSTER_FILES``, else
    the release it runs on."""
    if nodeid.startswith((FAULTS_FILES, *OWN_CLUSTER_FILES)):
        return FAULTS_SCOPE
    return release_of(nodeid, host)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The controller's scheduler sees node ids only, not markers: it puts the fault suite in
    its unit by file name. Keep marker and file name in step, so neither goes astray."""
    astray = [
        item.nodeid
        for item in items
        if item.nodeid.startswith(FAULTS_FILES) != (item.get_closest_marker("faults") is not None)
    ]
    if astray:
        raise pytest.UsageError(
            f"tests marked `faults` must be in {FAULTS_FILES}*.py and vice versa: {astray}"
        )
    # A test away from its release's unit would boot that release's session cluster again
    shared = [
        item.nodeid
        for item in items
        if item.nodeid.startswith(OWN_CLUSTER_FILES)
        and "cluster" in getattr(item, "fixturenames", ())
    ]
    if shared:
        raise pytest.UsageError(f"{OWN_CLUSTER_FILES} must not use the session cluster: {shared}")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """One work unit per release, the tests without a cluster in the host release's, and one
    for the fault suite (``scope_of``): with ``-n 4``, the three releases and the faults run
    side by side.

    With as many workers as units, xdist gives each worker exactly one unit, so each release's
    session cluster lives on one worker and its module fixtures are set up once. (xdist's own
    ``--dist loadgroup`` did not group conftest-marked or decorated tests here: pytest-xdist
    3.8 with pytest 9 spread them like ``load``.)
    """
    from xdist.scheduler import LoadScopeScheduling

    host = host_release().name

    class ByRelease(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid, host)

    return ByRelease(config, log)


@pytest.fixture(scope="session")
def cluster(release: str) -> Iterator[Cluster]:
    c = Cluster.boot(release=release)
    try:
        yield c
    finally:
        c.teardown()


@pytest.fixture(scope="session")
def remote_client(cluster: Cluster) -> Iterator[Remote]:
    """The session cluster's ``rados.Rados`` (client.admin), living in the release's runtime,
    so it is the release's own librados (``tests/runtime_rpc.py``)."""
    with Remote(cluster) as client:
        yield client
