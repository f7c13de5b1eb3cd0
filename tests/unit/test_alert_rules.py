"""The alert rules in monitoring/: valid for Prometheus, and their promtool unit tests pass.

promtool comes from Debian's ``prometheus`` package, installed here if missing
(``tests/prometheus.py``); a test fails, never skips, when it cannot be had.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import prometheus

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
RULES = MONITORING / "rbd_snapsched.rules.yml"
RULE_TESTS = MONITORING / "rbd_snapsched.rules.test.yml"
ALERTS = (
    "RbdSnapschedImagesLate",
    "RbdSnapschedSnapshotsFailing",
    "RbdSnapschedSnapshotFailuresIncreasing",
    "RbdSnapschedPeerLagging",
    "RbdSnapschedSchedulerStalled",
    "RbdSnapschedMetricsAbsent",
)


@pytest.fixture(scope="module")
def promtool() -> str:
    prometheus.ensure_installed()
    assert prometheus.PROMTOOL.exists(), f"{prometheus.PROMTOOL} missing after install"
    return str(prometheus.PROMTOOL)


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=MONITORING, capture_output=True, text=True, timeout=120, check=False
    )


def test_rules_are_valid(promtool: str) -> None:
    proc = run(promtool, "check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in proc.stdout


def test_rule_unit_tests_pass(promtool: str) -> None:
    proc = run(promtool, "test", "rules", str(RULE_TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    text = RULE_TESTS.read_text()
    for alert in ALERTS:
        assert f"alert: {alert}\n" in RULES.read_text()
        cases = text.split(f"alertname: {alert}\n")[1:]
        assert any(case.lstrip().startswith("exp_alerts: []") for case in cases), alert
        assert any(case.lstrip().startswith("exp_alerts:\n") for case in cases), alert


def test_a_wrong_expectation_fails(promtool: str, tmp_path: Path) -> None:
    """promtool really compares: the same tests with one number changed fail."""
    (tmp_path / RULES.name).write_text(RULES.read_text())
    broken = RULE_TESTS.read_text().replace("About 2 mirror", "About 3 mirror")
    assert broken != RULE_TESTS.read_text()
    (tmp_path / RULE_TESTS.name).write_text(broken)
    proc = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0, proc.stdout
