"""The container recipe (``container/``): the image layer and the cephadm mgr spec, as files.

No container engine runs here and the official Ceph images cannot be pulled, so what can be
checked is checked on the files: the Containerfile builds on the ``CEPH_IMAGE`` argument, its
layer is exactly the package's modules at ceph-mgr's module path (no tests), its label carries
the project's version, and the cephadm spec mounts the package read-only onto that same path.
``tests/python39/test_python39.py`` imports the module from exactly that layer under Python 3.9,
the Python of the Squid and early Tentacle images.
"""

from __future__ import annotations

import importlib
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
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


def test_the_image_builds_on_the_ceph_image_argument() -> None:
    instrs = containerfile()
    first, second = instrs[0], instrs[1]
    assert first.keyword == "ARG", "the base image must be a build argument, before FROM"
    name, _, default = first.args.partition("=")
    assert name == "CEPH_IMAGE"
    assert re.fullmatch(r"quay\.io/ceph/ceph:v\d+\.\d+\.\d+", default), default
    assert second.keyword == "FROM"
    assert second.args in ("${CEPH_IMAGE}", "$CEPH_IMAGE")
    assert [i.keyword for i in instrs].count("FROM") == 1, "one stage: the Ceph image plus files"
    # Files only: nothing runs at build time, so the layer is exactly what COPY says.
    assert {i.keyword for i in instrs} <= {"ARG", "FROM", "LABEL", "COPY"}


def test_the_layer_is_exactly_the_package_modules_at_the_mgr_module_path() -> None:
    files = layer_files()
    expected = {f"{MGR_MODULE_PATH}/{PACKAGE}/{m}" for m in package_modules()}
    assert set(files) == expected, (
        f"missing: {sorted(expected - set(files))}; extra: {sorted(set(files) - expected)}"
    )
    for image_path, source in files.items():
        assert source.parent == REPO / PACKAGE
        assert "tests" not in source.relative_to(REPO).parts
        assert not source.name.startswith(("test_", "conftest")), image_path
    assert f"{MGR_MODULE_PATH}/{PACKAGE}/__init__.py" in files
    assert f"{MGR_MODULE_PATH}/{PACKAGE}/module.py" in files


def test_the_image_label_carries_the_project_version() -> None:
    found = labels(containerfile())
    assert found.get("rbd_snapsched.version") == pyproject_version(), found


def _load_yaml(path: Path) -> Any:
    # Debian's python3-yaml (a dependency of ceph-common): imported by name, no stubs needed.
    yaml = importlib.import_module("yaml")
    return yaml.safe_load(path.read_text())


def test_the_cephadm_spec_mounts_the_package_read_only_onto_the_module_path() -> None:
    spec = _load_yaml(CEPHADM_SPEC)
    assert isinstance(spec, dict)
    assert spec["service_type"] == "mgr"
    assert "placement" in spec
    args = spec["extra_container_args"]
    # Plain strings, no {argument:, split:} mappings: releases before those take only strings.
    assert isinstance(args, list) and all(isinstance(a, str) for a in args), args
    assert args.count("-v") == 1
    volume = args[args.index("-v") + 1]
    source, dest, options = volume.split(":")
    assert source == HOST_COPY
    assert dest == copy_destination() == f"{MGR_MODULE_PATH}/{PACKAGE}"
    assert "ro" in options.split(","), "the mgr must not be able to change the package"
