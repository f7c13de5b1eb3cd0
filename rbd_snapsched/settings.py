"""Every module option, declared once: name, type, default, bounds and help.      pure

``OPTIONS`` is what the mgr adapter declares (``MODULE_OPTIONS``); ``read_settings`` turns the
values the mgr hands over into one ``Settings`` value, which the handler applies in one call.
Nothing here needs a mgr: the values come through a ``get(name, default)`` function.

A value outside its bounds is logged and the default used. Pacific's mon enforces no option
bounds and a Pacific mgr may hand over the stored text rather than a typed value, so every
reader accepts text, and NaN is out of every range.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Union

from .pauses import OPTION as PAUSED_OPTION

OptionValue = Union[str, int, float, bool]
Get = Callable[[str, Any], Any]  # the mgr's get_module_option (or its localized form)


@dataclass(frozen=True)
class OptionSpec:
    """One module option, as the mgr's ``Option`` declares it."""

    name: str
    type: Literal["str", "int", "float", "bool"]
    default: OptionValue
    desc: str
    min: float | None = None  # an int option's are ints
    max: float | None = None
    runtime: bool | None = True  # None: not said (the mgr's default, not at runtime)

    def declaration(self) -> dict[str, Any]:
        """The keyword arguments of ``mgr_module.Option`` (those said, as today)."""
        kwargs: dict[str, Any] = {"name": self.name, "type": self.type, "default": self.default}
        for key in ("min", "max", "runtime"):
            value = getattr(self, key)
            if value is not None:
                kwargs[key] = value
        kwargs["desc"] = self.desc
        return kwargs


SCHEDULE: Final = OptionSpec(
    "mirror_snapshot_schedule",
    "str",
    "",
    "the global level's mirror snapshot schedule (JSON, managed by commands)",
    runtime=None,
)
PAUSED: Final = OptionSpec(
    PAUSED_OPTION,
    "str",
    "",
    "paused levels (JSON, managed by the pause and resume commands)",
    runtime=None,
)
MAX_CONCURRENT: Final = OptionSpec(
    "max_concurrent_snap_create",
    "int",
    10,
    "mirror snapshots being created at once, at most",
    min=1,
)
REFRESH_INTERVAL: Final = OptionSpec(
    "refresh_interval",
    "int",
    60,
    "seconds between full rescans of schedules and mirrored images",
    min=1,
)
LATE_FACTOR: Final = OptionSpec(
    "late_factor",
    "float",
    2.0,
    "an image is late (RBD_SNAPSCHED_LATE) once its last mirror snapshot is older "
    "than this many times its interval",
    min=1.0,
    max=1000.0,
)
METRICS_ADDR: Final = OptionSpec(
    "metrics_server_addr",
    "str",
    "::",
    "address the Prometheus metrics endpoint listens on (per mgr: localized)",
)
METRICS_PORT: Final = OptionSpec(
    "metrics_server_port",
    "int",
    9289,
    "port of the Prometheus metrics endpoint (0: off)",
    min=0,
    max=65535,
)
IMAGE_SERIES: Final = OptionSpec(
    "metrics_image_series_limit",
    "int",
    10000,
    "per-image metric series only while at most this many images are scheduled "
    "(0: never); pool aggregates always",
    min=0,
)
STAGGER: Final = OptionSpec(
    "stagger",
    "bool",
    False,
    "spread images of a schedule without a start time over its interval, by a "
    "stable per-image offset (upstream main's behaviour; off: Pacific-Tentacle's)",
)
PACE: Final = OptionSpec(
    "skip_when_peer_lags",
    "bool",
    True,
    "skip an image's slot while a mirror peer has not synced its previous mirror "
    "snapshot (counted, RBD_SNAPSCHED_PEER_LAGGING); off: create it anyway, as "
    "rbd_support does, and librbd unlinks unsynced ones past "
    "rbd_mirroring_max_mirroring_snapshots",
)
SNAP_CREATE_TIMEOUT: Final = OptionSpec(
    "snap_create_timeout",
    "int",
    60,
    "seconds a mirror snapshot request may hold its max_concurrent_snap_create "
    "slot (e.g. an image's exclusive lock owner does not answer): then it counts as "
    "failed (ETIMEDOUT), its slot goes to the next image, and its image gets no new "
    "request until librbd ends it",
    min=5,
    max=3600,
)
ADOPT: Final = OptionSpec(
    "adopt_rbd_support_schedules",
    "bool",
    False,
    "move every schedule rbd_support holds (e.g. one set in the Ceph dashboard) into "
    "ours by itself, as `takeover` does, within seconds of the refresh that finds it",
)

OPTIONS: Final[Sequence[OptionSpec]] = (
    SCHEDULE,
    PAUSED,
    MAX_CONCURRENT,
    REFRESH_INTERVAL,
    LATE_FACTOR,
    METRICS_ADDR,
    METRICS_PORT,
    IMAGE_SERIES,
    STAGGER,
    PACE,
    SNAP_CREATE_TIMEOUT,
    ADOPT,
)


def _number(spec: OptionSpec) -> float:
    value = spec.default
    assert isinstance(value, (int, float)) and not isinstance(value, bool), spec
    return float(value)


def _flag(spec: OptionSpec) -> bool:
    assert isinstance(spec.default, bool), spec
    return spec.default


@dataclass(frozen=True)
class Settings:
    """The scheduler's options, read and checked; the defaults are the declared ones."""

    max_concurrent: int = int(_number(MAX_CONCURRENT))
    refresh_interval: float = _number(REFRESH_INTERVAL)
    late_factor: float = _number(LATE_FACTOR)
    stagger: bool = _flag(STAGGER)
    skip_when_peer_lags: bool = _flag(PACE)
    snap_create_timeout: float = _number(SNAP_CREATE_TIMEOUT)
    image_series_limit: int = int(_number(IMAGE_SERIES))


DEFAULTS: Final = Settings()
SNAP_CREATE_TIMEOUT_RANGE: Final = (
    float(SNAP_CREATE_TIMEOUT.min or 0),
    float(SNAP_CREATE_TIMEOUT.max or 0),
)


def read_int(get: Get, spec: OptionSpec, log: logging.Logger) -> int:
    """An int option at least its ``min``; text that is no number: the default, silently."""
    default = int(_number(spec))
    least = int(spec.min or 0)
    value = get(spec.name, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    if number < least:
        log.error("%s must be >= %s, not %s: using %s", spec.name, least, number, default)
        return default
    return number


def read_flag(get: Get, spec: OptionSpec) -> bool:
    value = get(spec.name, _flag(spec))
    if isinstance(value, str):  # a Pacific mgr may hand over the stored text
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


def _read_bounded(get: Get, spec: OptionSpec) -> tuple[float, Any, bool]:
    """(value, as handed over, within bounds); NaN and text that is no number are not."""
    value = get(spec.name, spec.default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return -1.0, value, False
    low, high = float(spec.min or 0), float(spec.max or 0)
    return number, value, low <= number <= high


def read_late_factor(get: Get, log: logging.Logger) -> float:
    factor, value, ok = _read_bounded(get, LATE_FACTOR)
    if not ok:
        log.error(
            "%s must be from 1 to %g, not %s: using 2", LATE_FACTOR.name, LATE_FACTOR.max, value
        )
        return DEFAULTS.late_factor
    return factor


def read_snap_create_timeout(get: Get, log: logging.Logger) -> float:
    seconds, value, ok = _read_bounded(get, SNAP_CREATE_TIMEOUT)
    if not ok:
        low, high = SNAP_CREATE_TIMEOUT_RANGE
        log.error(
            "%s must be from %g to %g seconds, not %s: using %g",
            SNAP_CREATE_TIMEOUT.name,
            low,
            high,
            value,
            DEFAULTS.snap_create_timeout,
        )
        return DEFAULTS.snap_create_timeout
    return seconds


def read_settings(get: Get, log: logging.Logger) -> Settings:
    """Every scheduler option at once, each checked as above (the metrics endpoint's address
    and port are per mgr: ``read_endpoint``)."""
    return Settings(
        max_concurrent=read_int(get, MAX_CONCURRENT, log),
        refresh_interval=float(read_int(get, REFRESH_INTERVAL, log)),
        late_factor=read_late_factor(get, log),
        stagger=read_flag(get, STAGGER),
        skip_when_peer_lags=read_flag(get, PACE),
        snap_create_timeout=read_snap_create_timeout(get, log),
        image_series_limit=read_int(get, IMAGE_SERIES, log),
    )


def read_endpoint(get: Get, log: logging.Logger) -> tuple[str, int]:
    """The metrics endpoint's (address, port) from the localized options; port 0: off."""
    addr = str(get(METRICS_ADDR.name, METRICS_ADDR.default) or METRICS_ADDR.default)
    try:
        port = int(get(METRICS_PORT.name, METRICS_PORT.default))
    except (TypeError, ValueError):
        port = -1
    if not 0 <= port <= 65535:  # Pacific's mon enforces no bounds
        log.error("metrics_server_port must be from 0 to 65535: endpoint off")
        port = 0
    return addr, port
