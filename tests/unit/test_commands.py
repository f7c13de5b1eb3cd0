"""The command table and the release adapter that maps it onto each mgr's dispatch."""

from __future__ import annotations

import types
from typing import Any

import pytest

from rbd_snapsched.commands import PREFIX, Arg, ArgType, CommandTable, Scope
from rbd_snapsched.compat import declare_commands, remove_upstream_level


def table() -> CommandTable:
    t = CommandTable()

    @t.command(
        "add",
        Arg("level_spec"),
        Arg("interval"),
        Arg("start_time", required=False),
        desc="Add rbd mirror snapshot schedule",
        perm="w",
        scope=Scope.LEVEL,
    )
    def add(module: Any, handler: Any, level: Any, interval: str) -> str:
        return f"add {interval}"

    @t.command(
        "takeover",
        Arg("dry_run", ArgType.BOOL, required=False),
        desc="Take over",
        perm="w",
        scope=Scope.GLOBAL,
    )
    def takeover(module: Any, handler: Any, dry_run: bool = False) -> str:
        return f"takeover {dry_run}"

    return t


def test_descriptors_are_the_mgr_command_signatures() -> None:
    assert table().descriptors() == [
        {
            "cmd": f"{PREFIX} add name=level_spec,type=CephString name=interval,type=CephString "
            "name=start_time,type=CephString,req=false",
            "desc": "Add rbd mirror snapshot schedule",
            "perm": "w",
        },
        {
            "cmd": f"{PREFIX} takeover name=dry_run,type=CephBool,req=false",
            "desc": "Take over",
            "perm": "w",
        },
    ]


def test_only_a_read_of_every_level_skips_the_osdmap_round_trip() -> None:
    """``status`` and ``ls`` of "" look no name up: they answer without asking a mon for the
    newest osdmap first (half a millisecond of every poll); a read naming a pool (maybe made a
    moment ago), any change, and a command without a level still ask."""
    t = table()

    @t.command("status", Arg("level_spec", required=False), desc="", perm="r", scope=Scope.VISIBLE)
    def status(module: Any, handler: Any, level: Any) -> str:
        return ""

    read, change = t.get(f"{PREFIX} status"), t.get(f"{PREFIX} add")
    takeover = t.get(f"{PREFIX} takeover")
    assert read is not None and change is not None and takeover is not None
    assert not read.needs_fresh_pools(False)
    assert read.needs_fresh_pools(True)
    assert change.needs_fresh_pools(False) and change.needs_fresh_pools(True)
    assert takeover.needs_fresh_pools(None)


def test_arguments_leave_absent_optionals_to_the_handler_default() -> None:
    command = table().get(f"{PREFIX} add")
    assert command is not None
    cmd = {"prefix": f"{PREFIX} add", "level_spec": "p/", "interval": "1h", "format": "json"}
    assert command.arguments(cmd) == {"level_spec": "p/", "interval": "1h"}
    assert command.arguments({**cmd, "start_time": "14:00"})["start_time"] == "14:00"
    assert table().get(f"{PREFIX} nothing") is None


@pytest.mark.parametrize(
    "declare",
    [
        lambda t: t.command("x", desc="", perm="rw", scope=Scope.LEVEL),
        lambda t: t.command("x", Arg("a"), Arg("a"), desc="", perm="r", scope=Scope.LEVEL),
    ],
)
def test_bad_declarations_fail_at_import(declare: Any) -> None:
    with pytest.raises(ValueError):
        declare(CommandTable())


def test_a_prefix_is_declared_once() -> None:
    t = table()
    with pytest.raises(ValueError, match="declared twice"):
        t.command("add", desc="", perm="w", scope=Scope.LEVEL)(lambda: None)


class _Base:
    """What every release's MgrModule does with a command (Pacific/Reef: through a global
    CLICommand registry we never fill; Tentacle: through ``self.CLICommand``)."""

    CLICommand: Any = None
    COMMANDS: list[dict[str, str]] = []  # noqa: RUF012 - as the mgr declares it

    def handle_command(self, inbuf: str, cmd: dict[str, Any]) -> str:
        return f"handled {cmd['prefix']}"


def _tentacle_mgr_module() -> types.ModuleType:
    class CLICommandBase:
        COMMANDS: dict[str, Any]

        @classmethod
        def make_registry_subtype(cls, name: str) -> type:
            return type(name, (cls,), {"COMMANDS": {}})

    return types.SimpleNamespace(CLICommandBase=CLICommandBase)  # type: ignore[return-value]


def test_tentacle_gets_a_registry_of_its_own_and_every_prefix_reaches_handle_command() -> None:
    class Module(_Base):
        pass

    t = table()
    declare_commands(Module, t, _tentacle_mgr_module())
    commands = Module.COMMANDS
    assert commands == t.descriptors()
    module = Module()
    # Tentacle's MgrModule._handle_command, as of 20.2.2:
    prefix = f"{PREFIX} add"
    assert prefix not in module.CLICommand.COMMANDS
    assert module.handle_command("", {"prefix": prefix}) == f"handled {prefix}"

    # A registry per module: another module's subtype does not share it.
    class Other(_Base):
        pass

    declare_commands(Other, t, _tentacle_mgr_module())
    assert Other.CLICommand is not Module.CLICommand


def test_pacific_and_reef_get_the_commands_list_only() -> None:
    class Module(_Base):
        pass

    declare_commands(Module, table(), types.ModuleType("mgr_module"))
    assert [c["perm"] for c in Module.COMMANDS] == ["w", "w"]
    assert Module.CLICommand is None


def test_binding_datetimes_become_aware_utc() -> None:
    from datetime import datetime, timedelta, timezone

    from rbd_snapsched.compat import utc

    naive = datetime(2026, 1, 2, 3, 4, 5)  # Pacific/Reef: utcfromtimestamp
    aware = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)  # Tentacle
    assert utc(naive) == aware and utc(naive).tzinfo is timezone.utc
    assert utc(aware) == aware
    plus_two = datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert utc(plus_two) == aware and utc(plus_two).utcoffset() == timedelta(0)


def test_a_command_that_formats_is_told_whether_the_cli_asked_for_json() -> None:
    """ceph-mgr passes the CLI's ``--format`` in the command dict, undeclared: only a command
    declared with ``formats=True`` is told (``snapshot-now``, ``snapshot-now-status``)."""
    t = CommandTable()

    @t.command("now", Arg("level_spec"), desc="d", perm="w", scope=Scope.LEVEL, formats=True)
    def now(module: Any, handler: Any, level: Any, as_json: bool = False) -> str:
        return str(as_json)

    command = t.get(f"{PREFIX} now")
    assert command is not None and command.formats
    assert [command.wants_json({"format": f}) for f in ("json", "json-pretty")] == [True, True]
    assert [command.wants_json(c) for c in ({"format": "plain"}, {}, {"format": None})] == [
        False,
        False,
        False,
    ]
    assert command.arguments({"prefix": "x", "level_spec": "p/", "format": "json"}) == {
        "level_spec": "p/"
    }  # never passed on as an argument
    takeover = table().get(f"{PREFIX} takeover")
    assert takeover is not None and not takeover.formats


class Remote:
    """``MgrModule.remote`` into one release's rbd_support: what it has, what it was called."""

    def __init__(self, *, handle_command: bool) -> None:
        self.handle_command = handle_command
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []

    def __call__(self, module: str, method: str, *args: Any) -> tuple[int, str, str]:
        self.calls.append((module, method, args))
        if method == "handle_command":
            if not self.handle_command:  # Reef, Tentacle: MgrModule.handle_command's default
                raise RuntimeError("Remote method threw exception: ... NotImplementedError")
            return (0, "", "")
        if method == "mirror_snapshot_schedule_remove" and not self.handle_command:
            return (-2, "", "no such level")
        raise RuntimeError(f"no method {method}")


def test_rbd_support_remove_goes_through_the_call_its_release_has() -> None:
    """Pacific's rbd_support takes handle_command; Reef's and Tentacle's raise
    NotImplementedError there and take the command's method (as their dashboards call it).
    Deleting its stored record instead would leave the images in its queue (a double slot)."""
    pacific = Remote(handle_command=True)
    assert remove_upstream_level(pacific, "rbd_support", "rbd/") == (0, "")
    assert pacific.calls == [
        (
            "rbd_support",
            "handle_command",
            ("", {"prefix": f"{PREFIX} remove", "level_spec": "rbd/"}),
        )
    ]
    reef = Remote(handle_command=False)
    assert remove_upstream_level(reef, "rbd_support", "rbd/img") == (-2, "no such level")
    assert [method for _, method, _ in reef.calls] == [
        "handle_command",
        "mirror_snapshot_schedule_remove",
    ]
    assert reef.calls[-1][2] == ("rbd/img",)

    def broken(module: str, method: str, *args: Any) -> tuple[int, str, str]:
        raise RuntimeError("Module not found")

    with pytest.raises(RuntimeError, match="Module not found"):  # the caller falls back
        remove_upstream_level(broken, "rbd_support", "rbd/")
