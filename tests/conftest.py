"""pytest wiring: the releases, the ``ceph_cluster`` marker and each release's session cluster.

Every test that needs a cluster takes the ``release`` fixture (through ``cluster`` or directly)
and runs once per release named by ``--releases`` (default: every supported one); its id ends in
``[pacific]``, ``[reef]`` or ``[tentacle]``. With pytest-xdist's ``--dist loadgroup`` each
release's tests stay on one worker, so the releases run side by side, one session cluster each,
booted on first use by ``tests/cephcluster.py``. If a cluster cannot boot, every test of that
release errors with the reason and the daemon log tails; none is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """One xdist group per release, the tests without a cluster in the host release's: with
    as many workers as groups, xdist gives each worker exactly one group (more groups than
    workers would hand a second release to a worker before its first is done, interleaving
    them, so module fixtures of both would be torn down and rebuilt in turn)."""
    host = host_release().name
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        item.add_marker(pytest.mark.xdist_group(params.get("release", host)))


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
