"""The one place that knows Ceph releases differ (Pacific 16.2, Reef 18.2, Tentacle 20.2).

Every difference is found by looking at what the running mgr and bindings offer, never by a
version string, and the rest of the code sees one interface:

- **Command registry.** Up to Reef the mgr dispatches through a ``CLICommand.COMMANDS`` dict
  global to the interpreter, then falls back to ``handle_command``; Tentacle (20.2.2+) looks up
  ``self.CLICommand.COMMANDS``, a per-module registry made by
  ``CLICommandBase.make_registry_subtype``, and a module without one answers every command with
  a traceback. ``declare_commands`` gives the module its ``COMMANDS`` list (read by every
  release) and, where the mgr has registry subtypes, an empty registry of its own, so every
  prefix reaches ``handle_command`` and ``commands.CommandTable`` on every release.
- **Mirror mode of an image whose mirroring is disabled.** Pacific and Reef answer
  ``RBD_MIRROR_IMAGE_MODE_JOURNAL`` with the state DISABLED; Tentacle raises EINVAL.
  ``image_mirror_mode`` answers None for both.
- **Datetimes from the bindings** (snapshot timestamps, image times). Pacific and Reef return
  naive datetimes in UTC (``utcfromtimestamp``); Tentacle returns aware ones
  (``fromtimestamp(…, timezone.utc)``). ``utc`` makes both aware UTC, the only kind the rest of
  the code handles.
- **rbd_support's own ``remove``, called from another module.** Pacific's rbd_support
  dispatches through ``handle_command`` (what its dashboard calls); Reef's and Tentacle's
  declare each command as a method (``mirror_snapshot_schedule_remove``, what their dashboards
  call) and their ``handle_command`` raises NotImplementedError. ``remove_upstream_level``
  calls whichever the running rbd_support has. Its ``remove`` also drops the level from
  rbd_support's queue at once; deleting the stored record instead leaves the images queued
  there until its next rescan, so both modules would snapshot them at the next slot.
- **A module option write the mon refuses** (an option no loaded module declares). Pacific's
  mgr logs it and returns; Reef and Tentacle raise ValueError. ``store.ModuleOption`` (pure,
  so it lives there) turns both into ``StorageError`` (EIO), the value unchanged.

Does not import ``mgr_module``: the caller hands it in, so this file loads (and is
unit-tested) outside a mgr.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from types import ModuleType
from typing import Any, Final

import rbd

from .commands import PREFIX, CommandTable

UPSTREAM_REMOVE_METHOD: Final = "mirror_snapshot_schedule_remove"


def declare_commands(module_cls: type[Any], table: CommandTable, mgr_module: ModuleType) -> None:
    """Make ``module_cls`` declare ``table``'s commands to the running mgr."""
    module_cls.COMMANDS = table.descriptors()
    base = getattr(mgr_module, "CLICommandBase", None)
    make_registry = getattr(base, "make_registry_subtype", None)
    if make_registry is not None:
        module_cls.CLICommand = make_registry(f"{module_cls.__module__}.CLICommand")


def image_mirror_mode(image: rbd.Image) -> int | None:
    """The image's mirror mode if mirroring is enabled on it, else None."""
    try:
        mode = image.mirror_image_get_mode()
        state = image.mirror_image_get_info()["state"]
    except rbd.InvalidArgument:  # mirroring disabled (Tentacle)
        return None
    return mode if state == rbd.RBD_MIRROR_IMAGE_ENABLED else None


def utc(value: datetime) -> datetime:
    """A datetime from the rbd bindings as an aware UTC datetime (naive ones are UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def remove_upstream_level(
    remote: Callable[..., Any], module: str, level_spec: str
) -> tuple[int, str]:
    """rbd_support's own ``remove`` of a level through ``remote`` (``MgrModule.remote``), the
    way its release takes it: ``handle_command`` (Pacific), else the command's method (Reef,
    Tentacle). (rc, stderr); an exception if neither can be called."""
    command = {"prefix": f"{PREFIX} remove", "level_spec": level_spec}
    try:
        rc, _, err = remote(module, "handle_command", "", command)
    except Exception as e:
        if "NotImplementedError" not in f"{type(e).__name__} {e}":
            raise
        rc, _, err = remote(module, UPSTREAM_REMOVE_METHOD, level_spec)
    return int(rc), str(err)
