"""The Debian package's files agree with the project: its version, and a Depends for each thing
the module and its install tool need at run time."""

from __future__ import annotations

import ast
import re
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEBIAN = REPO / "debian"

# What a runtime import (or command) needs, as the Debian package that provides it.
PROVIDERS = {
    "rados": "python3-rados",
    "rbd": "python3-rbd",
    "dateutil": "python3-dateutil",
    "ceph": "ceph-common",  # the `ceph` CLI the install tool runs
}
# Provided by ceph-mgr itself, inside the mgr (the package Enhances: ceph-mgr).
IN_THE_MGR = {"mgr_module", "ceph_module"}


def pyproject_field(name: str) -> str:
    """A top-level string field of [project] (no tomllib: it is 3.11+)."""
    text = (REPO / "pyproject.toml").read_text()
    project = text.split("[project]", 1)[1].split("\n[", 1)[0]
    match = re.search(rf'^{name}\s*=\s*"([^"]*)"', project, re.MULTILINE)
    assert match, f"no {name} in pyproject.toml's [project]"
    return match.group(1)


def changelog_version() -> str:
    first = (DEBIAN / "changelog").read_text().splitlines()[0]
    match = re.match(r"rbd-snapsched \(([^)]+)\) \S+; urgency=\w+$", first)
    assert match, first
    return match.group(1)


def control_field(field: str, package: str = "rbd-snapsched") -> str:
    """A binary package's field from debian/control, continuation lines joined."""
    stanzas = (DEBIAN / "control").read_text().split("\n\n")
    stanza = next(s for s in stanzas if re.search(rf"^Package: {package}$", s, re.MULTILINE))
    match = re.search(rf"^{field}:(.*(?:\n[ \t].*)*)", stanza, re.MULTILINE)
    assert match, f"no {field} for {package}"
    return " ".join(match.group(1).split())


def depends() -> dict[str, str]:
    """Depends as {package: version constraint or ""}."""
    out: dict[str, str] = {}
    for item in control_field("Depends").split(","):
        name, _, constraint = item.strip().partition(" ")
        out[name] = constraint.strip("() ")
    return out


def is_stdlib(name: str) -> bool:
    names = getattr(sys, "stdlib_module_names", None)  # 3.10+
    if names is not None:
        return name in names
    if name in sys.builtin_module_names:
        return True
    import importlib.util

    spec = importlib.util.find_spec(name)
    origin = (spec.origin or "") if spec else ""
    return origin.startswith(sysconfig.get_paths()["stdlib"]) and "packages" not in origin


def runtime_imports() -> set[str]:
    """The top-level modules rbd_snapsched imports, other than its own and __future__."""
    found: set[str] = set()
    for path in sorted((REPO / "rbd_snapsched").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - {"rbd_snapsched", "__future__"}


def test_changelog_version_is_the_projects() -> None:
    assert changelog_version() == pyproject_field("version")


def test_depends_cover_what_the_module_and_install_tool_use() -> None:
    deps = depends()
    third_party = {name for name in runtime_imports() if not is_stdlib(name)} - IN_THE_MGR
    unknown = third_party - PROVIDERS.keys()
    assert not unknown, f"imports without a known Debian package: {unknown}"
    assert {"rados", "rbd", "dateutil"} <= third_party  # the table is not stale
    for name in (*third_party, "ceph"):
        assert PROVIDERS[name] in deps, (name, PROVIDERS[name], deps)
    assert "ceph" in (REPO / "rbd_snapsched" / "install.py").read_text()


def test_depends_on_the_projects_oldest_python() -> None:
    oldest = re.fullmatch(r">=\s*(\d+\.\d+)", pyproject_field("requires-python"))
    assert oldest, pyproject_field("requires-python")
    assert depends().get("python3") == f">= {oldest.group(1)}"


def test_package_is_arch_all_native_compat_13() -> None:
    assert control_field("Architecture") == "all"
    assert (DEBIAN / "source" / "format").read_text().strip() == "3.0 (native)"
    assert "debhelper-compat (= 13)" in (DEBIAN / "control").read_text()
    assert "-" not in changelog_version()  # native: no Debian revision


def test_ships_only_the_modules_py_files_off_the_mgr_path() -> None:
    lines = (DEBIAN / "rbd-snapsched.install").read_text().split("\n")
    entries = [line.split() for line in lines if line.strip()]
    assert ["rbd_snapsched/*.py", "usr/share/rbd-snapsched/rbd_snapsched/"] in entries
    assert ["debian/bin/rbd-snapsched", "usr/bin/"] in entries
    assert not any("ceph/mgr" in dest for _, dest in entries)


def test_command_runs_the_install_tool_in_packaged_mode() -> None:
    text = (DEBIAN / "bin" / "rbd-snapsched").read_text()
    assert text.startswith("#!/usr/bin/python3\n")
    assert 'sys.path.insert(0, "/usr/share/rbd-snapsched")' in text
    assert "main(sys.argv[1:], packaged=True)" in text


def test_prerm_hands_back_on_remove_only() -> None:
    text = (DEBIAN / "prerm").read_text()
    remove = text.split("    remove)", 1)[1].split(";;", 1)[0]
    assert "hand_back" in remove and "__pycache__" in remove
    assert "rbd-snapsched uninstall --module-path" in text
    upgrade = text.split("    upgrade|deconfigure|failed-upgrade)", 1)[1].split(";;", 1)[0]
    assert upgrade.strip() == ""
    assert "#DEBHELPER#" in text
