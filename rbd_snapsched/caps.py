"""Mgr caps: which clients lose the schedule commands once rbd_snapsched answers them.

The mgr expands ``profile rbd [pool=P] [namespace=N]`` into ``allow module rbd_support with
pool=P namespace=N rw`` (``profile rbd-read-only``: ``r``), so such a client may run
rbd_support's commands only. Once rbd_snapsched is enabled it answers the schedule commands,
and the mgr refuses that client with EACCES before our module sees the command. This file finds
those grants and the matching ``allow module rbd_snapsched …`` grant, with the same pool,
namespace and network constraints and the same permission: nothing wider.

Pure and standard library only: ``install.py`` runs it outside the mgr against ``ceph auth``
output, and the unit tests run it against cap strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

OURS: Final = "rbd_snapsched"
UPSTREAM: Final = "rbd_support"
PROFILE_PERMS: Final = {"rbd": "rw", "rbd-read-only": "r"}
PROFILE_KEYS: Final = ("pool", "namespace")  # the only arguments the rbd profiles honour


class CapsError(ValueError):
    """A cap string this parser does not understand (left alone, reported)."""


def split_grants(caps: str) -> list[str]:
    """The grants of a cap string, split at ``,``/``;`` outside quotes, trimmed."""
    grants: list[str] = []
    current: list[str] = []
    quote = ""
    for ch in caps:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            current.append(ch)
        elif ch in ",;":
            grants.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if quote:
        raise CapsError(f"unterminated quote in {caps!r}")
    grants.append("".join(current).strip())
    return [g for g in grants if g]


_TOKEN = re.compile(r"""\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=]+)|(=))""")


def _tokens(grant: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(grant):
        if grant[pos:].strip() == "":
            break
        m = _TOKEN.match(grant, pos)
        if m is None:
            raise CapsError(f"cannot read grant {grant!r}")
        out.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
    return out


@dataclass(frozen=True)
class Constraint:
    key: str
    match: str  # "=", "prefix" or "regex"
    value: str

    def text(self) -> str:
        value = self.value if re.fullmatch(r"[a-zA-Z0-9_./-]+", self.value) else f'"{self.value}"'
        return f"{self.key}={value}" if self.match == "=" else f"{self.key} {self.match} {value}"


@dataclass(frozen=True)
class ModuleGrant:
    """A grant on one mgr module: ``allow module M [with K=V ...] PERM [network N]``."""

    module: str
    constraints: tuple[Constraint, ...]
    perm: str
    network: str | None = None

    def text(self) -> str:
        parts = ["allow module", self.module]
        if self.constraints:
            parts += ["with", *(c.text() for c in self.constraints)]
        parts.append(self.perm)
        if self.network:
            parts += ["network", self.network]
        return " ".join(parts)

    def same_scope(self, module: str) -> ModuleGrant:
        return ModuleGrant(module, self.constraints, self.perm, self.network)


def _constraints(tokens: list[str]) -> tuple[tuple[Constraint, ...], list[str]]:
    """Read ``k=v``, ``k prefix v``, ``k regex v`` pairs from the front of ``tokens``."""
    found: list[Constraint] = []
    while len(tokens) >= 3 and (tokens[1] in ("=", "prefix", "regex")):
        found.append(Constraint(tokens[0], tokens[1], tokens[2]))
        tokens = tokens[3:]
    return tuple(found), tokens


def _network(tokens: list[str], grant: str) -> str | None:
    if not tokens:
        return None
    if len(tokens) == 2 and tokens[0] == "network":
        return tokens[1]
    raise CapsError(f"cannot read grant {grant!r}")


def module_grant(grant: str) -> ModuleGrant | None:
    """What ``grant`` allows on a mgr module (profiles expanded); None for any other grant."""
    tokens = _tokens(grant)
    if tokens[:1] == ["allow"] and tokens[1:2] == ["profile"]:
        tokens = tokens[1:]
    if tokens[:1] == ["profile"] and len(tokens) >= 2:
        profile = tokens[1]
        if profile not in PROFILE_PERMS:
            return None
        args, rest = _constraints(tokens[2:])
        kept = tuple(c for c in args if c.key in PROFILE_KEYS)
        return ModuleGrant(UPSTREAM, kept, PROFILE_PERMS[profile], _network(rest, grant))
    if tokens[:2] == ["allow", "module"] and len(tokens) >= 4:
        module, rest = tokens[2], tokens[3:]
        constraints: tuple[Constraint, ...] = ()
        if rest[:1] == ["with"]:
            constraints, rest = _constraints(rest[1:])
        if not rest or not re.fullmatch(r"\*|all|r?w?x?", rest[0]) or rest[0] == "":
            raise CapsError(f"cannot read grant {grant!r}")
        return ModuleGrant(module, constraints, rest[0], _network(rest[1:], grant))
    return None


def _grants(caps: str) -> list[tuple[str, ModuleGrant | None]]:
    return [(g, module_grant(g)) for g in split_grants(caps)]


def missing_grants(caps: str) -> list[ModuleGrant]:
    """The rbd_snapsched grants a client with mgr caps ``caps`` needs to keep the schedule
    commands it has through rbd_support today (empty: nothing to add)."""
    parsed = _grants(caps)
    ours = {m for _, m in parsed if m is not None and m.module == OURS}
    needed: list[ModuleGrant] = []
    for _, grant in parsed:
        if grant is None or grant.module != UPSTREAM:
            continue
        wanted = grant.same_scope(OURS)
        if wanted not in ours and wanted not in needed:
            needed.append(wanted)
    return needed


def with_grants(caps: str, grants: list[ModuleGrant]) -> str:
    """``caps`` with ``grants`` appended."""
    return ", ".join([*split_grants(caps), *(g.text() for g in grants)])


def without_ours(caps: str) -> tuple[str, list[str]]:
    """``caps`` without any rbd_snapsched grant, and the grants removed."""
    kept: list[str] = []
    removed: list[str] = []
    for text, grant in _grants(caps):
        (removed if grant is not None and grant.module == OURS else kept).append(text)
    return ", ".join(kept), removed
