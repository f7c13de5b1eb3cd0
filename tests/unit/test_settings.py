"""Every module option declared once (``rbd_snapsched/settings.py``) and read into Settings.

The readers get what a mgr hands over: typed values on Reef and Tentacle, the stored text on
Pacific, and anything an operator set, since Pacific's mon enforces no bounds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import pytest

from rbd_snapsched import settings
from rbd_snapsched.settings import DEFAULTS, OPTIONS, Settings, read_endpoint, read_settings

LOG = logging.getLogger("test_settings")


def getter(values: Mapping[str, Any]) -> settings.Get:
    def get(name: str, default: Any) -> Any:
        return values.get(name, default)

    return get


def read(caplog: pytest.LogCaptureFixture, **values: Any) -> tuple[Settings, list[str]]:
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger=LOG.name):
        got = read_settings(getter(values), LOG)
    return got, [r.getMessage() for r in caplog.records]


def test_the_declarations_are_the_options_the_mgr_has_always_seen() -> None:
    """What MODULE_OPTIONS declares, key for key: the mgr stores and checks these."""
    declared = {spec.name: spec.declaration() for spec in OPTIONS}
    assert list(declared) == [
        "mirror_snapshot_schedule",
        "paused_levels",
        "max_concurrent_snap_create",
        "refresh_interval",
        "late_factor",
        "metrics_server_addr",
        "metrics_server_port",
        "metrics_image_series_limit",
        "stagger",
        "skip_when_peer_lags",
        "snap_create_timeout",
        "adopt_rbd_support_schedules",
    ]
    assert "runtime" not in declared["mirror_snapshot_schedule"]
    assert declared["max_concurrent_snap_create"] == {
        "name": "max_concurrent_snap_create",
        "type": "int",
        "default": 10,
        "min": 1,
        "runtime": True,
        "desc": "mirror snapshots being created at once, at most",
    }
    assert declared["late_factor"]["min"] == 1.0 and declared["late_factor"]["max"] == 1000.0
    assert declared["metrics_server_port"]["default"] == 9289
    assert (declared["snap_create_timeout"]["min"], declared["snap_create_timeout"]["max"]) == (
        5,
        3600,
    )
    for spec in OPTIONS:  # each default is of its declared type
        assert type(spec.default).__name__ == spec.type, spec


def test_nothing_set_reads_the_declared_defaults(caplog: pytest.LogCaptureFixture) -> None:
    got, logged = read(caplog)
    assert got == DEFAULTS == Settings()
    assert (got.max_concurrent, got.refresh_interval, got.late_factor) == (10, 60.0, 2.0)
    assert (got.stagger, got.skip_when_peer_lags, got.snap_create_timeout) == (False, True, 60.0)
    assert got.image_series_limit == 10000
    assert logged == []


def test_pacifics_text_values_read_as_typed_ones(caplog: pytest.LogCaptureFixture) -> None:
    got, logged = read(
        caplog,
        max_concurrent_snap_create="3",
        refresh_interval="30",
        late_factor="1.5",
        stagger="true",
        skip_when_peer_lags="False",
        snap_create_timeout="20",
        metrics_image_series_limit="0",
    )
    assert got == Settings(3, 30.0, 1.5, True, False, 20.0, 0)
    assert logged == []


@pytest.mark.parametrize("text", ["yes", "On", " 1 ", "TRUE"])
def test_flags_accept_every_true_spelling(text: str, caplog: pytest.LogCaptureFixture) -> None:
    assert read(caplog, stagger=text)[0].stagger is True


@pytest.mark.parametrize("text", ["no", "0", "off", "", "maybe"])
def test_any_other_flag_text_is_false(text: str, caplog: pytest.LogCaptureFixture) -> None:
    assert read(caplog, skip_when_peer_lags=text)[0].skip_when_peer_lags is False


def test_an_int_below_its_minimum_is_logged_and_the_default_used(
    caplog: pytest.LogCaptureFixture,
) -> None:
    got, logged = read(caplog, max_concurrent_snap_create=0, metrics_image_series_limit=-1)
    assert (got.max_concurrent, got.image_series_limit) == (10, 10000)
    assert logged == [
        "max_concurrent_snap_create must be >= 1, not 0: using 10",
        "metrics_image_series_limit must be >= 0, not -1: using 10000",
    ]


def test_an_int_that_is_no_number_is_the_default_silently(
    caplog: pytest.LogCaptureFixture,
) -> None:
    got, logged = read(caplog, refresh_interval="soon", max_concurrent_snap_create=None)
    assert (got.refresh_interval, got.max_concurrent) == (60.0, 10)
    assert logged == []


@pytest.mark.parametrize("value", [0.5, 1001, math.nan, "nan", "inf", "x", None])
def test_a_late_factor_out_of_range_or_nan_is_logged_and_2_used(
    value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    got, logged = read(caplog, late_factor=value)
    assert got.late_factor == 2.0
    assert logged == [f"late_factor must be from 1 to 1000, not {value}: using 2"]


@pytest.mark.parametrize("value", [4, 3601, math.nan, "-inf", "slow"])
def test_a_snap_create_timeout_out_of_range_is_logged_and_60_used(
    value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    got, logged = read(caplog, snap_create_timeout=value)
    assert got.snap_create_timeout == 60.0
    assert logged == [f"snap_create_timeout must be from 5 to 3600 seconds, not {value}: using 60"]


@pytest.mark.parametrize("value", [1, 1000, "1", 2.5])
def test_bounds_are_inclusive(value: Any, caplog: pytest.LogCaptureFixture) -> None:
    got, logged = read(caplog, late_factor=value)
    assert got.late_factor == float(value) and logged == []


def test_endpoint_reads_address_and_port_and_turns_a_bad_port_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert read_endpoint(getter({}), LOG) == ("::", 9289)
    assert read_endpoint(getter({"metrics_server_addr": "", "metrics_server_port": "0"}), LOG) == (
        "::",
        0,
    )
    assert read_endpoint(getter({"metrics_server_addr": "127.0.0.1"}), LOG)[0] == "127.0.0.1"
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger=LOG.name):
        for bad in (65536, -1, "http"):
            assert read_endpoint(getter({"metrics_server_port": bad}), LOG)[1] == 0
    assert [r.getMessage() for r in caplog.records] == [
        "metrics_server_port must be from 0 to 65535: endpoint off"
    ] * 3
