"""The ceph-mgr adapter: declares the commands and options, hands work to the handler."""

from __future__ import annotations

import errno
import json
from typing import Any

from mgr_module import HandleCommandResult, MgrModule


def _cmd(verb: str, args: str) -> str:
    return f"rbd mirror snapshot schedule {verb} {args}".rstrip()


class Module(MgrModule):
    COMMANDS = [
        {
            "cmd": _cmd("add", "name=level_spec,type=CephString name=interval,type=CephString "
                        "name=start_time,type=CephString,req=false"),
            "desc": "Add rbd mirror snapshot schedule",
            "perm": "w",
        },
        {
            "cmd": _cmd("remove", "name=level_spec,type=CephString "
                        "name=interval,type=CephString,req=false "
                        "name=start_time,type=CephString,req=false"),
            "desc": "Remove rbd mirror snapshot schedule",
            "perm": "w",
        },
        {
            "cmd": _cmd("list", "name=level_spec,type=CephString,req=false"),
            "desc": "List rbd mirror snapshot schedule",
            "perm": "r",
        },
        {
            "cmd": _cmd("status", "name=level_spec,type=CephString,req=false"),
            "desc": "Show rbd mirror snapshot schedule status",
            "perm": "r",
        },
    ]

    def handle_command(self, inbuf: str, cmd: dict[str, Any]) -> HandleCommandResult:
        prefix = cmd["prefix"]
        if prefix.endswith(" list"):
            return HandleCommandResult(0, json.dumps({}, indent=4, sort_keys=True), "")
        if prefix.endswith(" status"):
            return HandleCommandResult(
                0, json.dumps({"scheduled_images": []}, indent=4, sort_keys=True), "")
        return HandleCommandResult(-errno.EOPNOTSUPP, "", "not implemented yet")
