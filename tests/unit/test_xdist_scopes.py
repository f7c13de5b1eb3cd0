"""The xdist work units of tests/conftest.py: one per release, one for the fault suite and
the tests that boot clusters of their own."""

from __future__ import annotations

from tests.conftest import FAULTS_SCOPE, scope_of


def test_each_release_is_a_unit_and_the_faults_one_of_their_own() -> None:
    host = "pacific"
    assert scope_of("tests/cluster/test_results.py::test_status[reef]", host) == "reef"
    assert scope_of("tests/cluster/test_results.py::test_status[pacific]", host) == "pacific"
    assert scope_of("tests/unit/test_schedule.py::test_parse", host) == host
    assert scope_of("tests/cluster/test_faults_daemons.py::test_mon_restart", host) == FAULTS_SCOPE
    assert scope_of("tests/cluster/test_faults_data.py::test_x[tentacle]", host) == FAULTS_SCOPE
    for release in ("pacific", "reef", "tentacle"):
        dashboard = f"tests/cluster/test_dashboard.py::test_dashboard_adopted[{release}]"
        assert scope_of(dashboard, host) == FAULTS_SCOPE
