"""The mgr commands, each declared once: prefix, arguments, perm, who may run it, handler.

Pure: no mgr import. ``compat.py`` maps a ``CommandTable`` onto what the running ceph-mgr reads
(the ``COMMANDS`` list every release takes, plus the per-module registry Tentacle dispatches
through), and ``module.py`` dispatches every command through ``CommandTable.get``.

Authorization is declared with the command (``Scope``), so one place decides what a caller's
caps must allow before a handler runs.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar, Union

PREFIX: Final = "rbd mirror snapshot schedule"


class ArgType(enum.Enum):
    STRING = "CephString"
    BOOL = "CephBool"
    INT = "CephInt"


@dataclass(frozen=True)
class Arg:
    name: str
    type: ArgType = ArgType.STRING
    required: bool = True

    def descriptor(self) -> str:
        text = f"name={self.name},type={self.type.value}"
        return text if self.required else f"{text},req=false"


# The mon has parsed and typed each argument already; this only makes the type certain.
_CONVERT: Final[dict[ArgType, Callable[[Any], Any]]] = {
    ArgType.STRING: lambda v: v,
    ArgType.BOOL: bool,
    ArgType.INT: int,
}


class Scope(enum.Enum):
    """What the caller's caps must allow before the handler runs."""

    LEVEL = "level"  # the level named by level_spec (global: unrestricted caps)
    VISIBLE = "visible"  # a named pool/namespace level; global is allowed, results filtered
    GLOBAL = "global"  # unrestricted caps


F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class JsonText:
    """A JSON object's reply, written already as ``respond`` writes that object (``status``:
    its rows are encoded when they change, by ``status_rows.py``, from ``respond`` itself)."""

    text: str


# What a command body returns; ``respond`` turns it into the reply's text.
Reply = Union[None, str, list[str], dict[str, Any], JsonText]


def respond(value: Reply) -> str:
    """The one formatting of every reply, byte for byte as the commands have always answered:
    nothing; a message, ending in one newline; lines, each ending in a newline (none: one
    newline); a JSON object, indented by 4 with sorted keys and no final newline (as
    rbd_support answers, and as the ``rbd`` CLI parses); a ``JsonText``, as it is."""
    if value is None:
        return ""
    if isinstance(value, JsonText):
        return value.text
    if isinstance(value, str):
        return value if value.endswith("\n") else value + "\n"
    if isinstance(value, list):
        return "\n".join(value) + "\n"
    return json.dumps(value, indent=4, sort_keys=True)


MARK: Final = "\x00"  # a string no key or value of a reply is: where its JSON form lands in
# respond's text shows a position, for the replies written from pieces (listing_text, status_rows)


def cut(text: str, *marks: str) -> list[str]:
    """``text`` cut at each of ``marks`` in turn (each must be there): the pieces of a
    ``respond`` text around marked positions."""
    pieces: list[str] = []
    for mark in marks:
        head, found, text = text.partition(mark)
        if not found:
            raise ValueError(f"{mark!r} not in {text!r}")
        pieces.append(head)
    return [*pieces, text]


@dataclass(frozen=True)
class Command:
    prefix: str
    args: tuple[Arg, ...]
    desc: str
    perm: str  # "r" or "w", as the mon checks them
    scope: Scope
    handler: Callable[..., Any]  # the undecorated method; called with the module first
    # The handler takes ``as_json``: whether the CLI's ``--format`` (which ceph-mgr passes in
    # the command dict undeclared) asked for JSON (``json``, ``json-pretty``).
    formats: bool = False

    @staticmethod
    def wants_json(cmd: Mapping[str, Any]) -> bool:
        return str(cmd.get("format") or "").startswith("json")

    def needs_fresh_pools(self, names_pool: bool | None) -> bool:
        """Whether a call must first see the pools as the mons know them now
        (``wait_for_latest_osdmap``: a round trip to a mon). ``names_pool``: whether its
        level names a pool (None: the command takes no level). A change does; so does a
        name to look up, a pool created a moment ago included; a read of every level
        (``status``, ``ls -R``: what tools poll) looks nothing up and answers from memory."""
        return self.perm != "r" or names_pool is not False

    def descriptor(self) -> dict[str, str]:
        """The entry of a mgr module's ``COMMANDS`` list."""
        sig = " ".join([self.prefix, *(a.descriptor() for a in self.args)])
        return {"cmd": sig, "desc": self.desc, "perm": self.perm}

    def arguments(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        """The handler's keyword arguments from a mgr command dict (parsed by the mon).

        An absent optional argument is left out, so the handler's default applies.
        """
        return {
            a.name: _CONVERT[a.type](cmd[a.name]) for a in self.args if cmd.get(a.name) is not None
        }


class CommandTable:
    """The module's commands, by prefix, in declaration order."""

    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}

    def command(
        self, verb: str, *args: Arg, desc: str, perm: str, scope: Scope, formats: bool = False
    ) -> Callable[[F], F]:
        """Declare ``rbd mirror snapshot schedule <verb>`` served by the decorated method."""
        if perm not in ("r", "w"):
            raise ValueError(f"perm must be 'r' or 'w', not {perm!r}")
        names = [a.name for a in args]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate argument in {names}")

        def register(handler: F) -> F:
            prefix = f"{PREFIX} {verb}"
            if prefix in self._commands:
                raise ValueError(f"{prefix!r} declared twice")
            self._commands[prefix] = Command(prefix, args, desc, perm, scope, handler, formats)
            return handler

        return register

    def get(self, prefix: str) -> Command | None:
        return self._commands.get(prefix)

    def __iter__(self) -> Iterator[Command]:
        return iter(self._commands.values())

    def descriptors(self) -> list[dict[str, str]]:
        return [c.descriptor() for c in self._commands.values()]
