"""The container recipe's files read as a build would read them: the Containerfile's
instructions, the layer its COPY makes, its label, the cephadm spec's path. Standard library
only; ``tests/unit/test_container.py`` checks them and ``tests/python39`` loads that layer."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONTAINERFILE = REPO / "container" / "Containerfile"
CEPHADM_SPEC = REPO / "container" / "cephadm-mgr.yaml"
PACKAGE = "rbd_snapsched"
MGR_MODULE_PATH = "/usr/share/ceph/mgr"  # ceph-mgr's default mgr_module_path
HOST_COPY = "/opt/rbd_snapsched/rbd_snapsched"  # where the cephadm recipe has operators copy it


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def instructions(text: str) -> list[Instruction]:
    """A Containerfile's instructions: comments and blank lines dropped, continued lines joined
    (a comment line inside a continuation is dropped too, as the builders do)."""
    found: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not pending:
            start = number
        continued = line.endswith("\\")
        pending.append(line[:-1].strip() if continued else line)
        if not continued:
            keyword, _, args = " ".join(pending).partition(" ")
            found.append(Instruction(keyword.upper(), args.strip(), start))
            pending = []
    assert not pending, f"Containerfile ends inside a continued line (from line {start})"
    return found


def containerfile() -> list[Instruction]:
    return instructions(CONTAINERFILE.read_text())


def copies(instrs: list[Instruction]) -> list[tuple[list[str], str]]:
    """Each COPY's sources and destination (no flags: the layer keeps the context's modes)."""
    result = []
    for instr in instrs:
        if instr.keyword != "COPY":
            continue
        words = shlex.split(instr.args)
        assert not any(w.startswith("--") for w in words), f"COPY flags: {instr}"
        assert len(words) >= 2, f"COPY needs sources and a destination: {instr}"
        result.append((words[:-1], words[-1]))
    return result


def layer_files(instrs: list[Instruction] | None = None) -> dict[str, Path]:
    """What the Containerfile's COPY instructions put into the image, from the build context
    (the repository root): image path -> source file."""
    files: dict[str, Path] = {}
    for sources, dest in copies(containerfile() if instrs is None else instrs):
        matched = [m for s in sources for m in sorted(REPO.glob(s))]
        assert matched, f"COPY {sources} matches nothing in the build context {REPO}"
        if len(matched) > 1 or len(sources) > 1:
            assert dest.endswith("/"), f"COPY of several files needs a directory: {dest}"
        for path in matched:
            assert path.is_file(), f"COPY {path}: a directory would copy its contents flat"
            files[dest + path.name if dest.endswith("/") else dest] = path
    return files


def labels(instrs: list[Instruction]) -> dict[str, str]:
    found: dict[str, str] = {}
    for instr in instrs:
        if instr.keyword == "LABEL":
            for word in shlex.split(instr.args):
                key, sep, value = word.partition("=")
                assert sep, f"LABEL {word!r} is not key=value (line {instr.line})"
                found[key] = value
    return found


def pyproject_version() -> str:
    text = (REPO / "pyproject.toml").read_text()
    table = re.search(r"^\[project\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    assert table, "pyproject.toml has no [project] table"
    version = re.search(r'^version\s*=\s*"([^"]+)"', table.group(1), re.M)
    assert version, "pyproject.toml's [project] has no version"
    return version.group(1)


def package_modules() -> set[str]:
    """Every module file of the package, as a path relative to the package directory."""
    root = REPO / PACKAGE
    return {
        p.relative_to(root).as_posix() for p in root.rglob("*.py") if "__pycache__" not in p.parts
    }


def copy_destination() -> str:
    (dest,) = {dest for _, dest in copies(containerfile())}
    return dest.rstrip("/")
