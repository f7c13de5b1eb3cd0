"""The package and its unit and fake-contract tests under a real CPython 3.9.

3.9 is the oldest Python the package supports, and the one in the Squid and early Tentacle
container images. None of the suite's releases has it, so it runs in Debian bullseye's python3
(3.9.2), in a chroot ``tests/releases.py`` builds once and caches (interpreter ``python39``; its
Nautilus ``rados``/``rbd`` bindings are there only so that imports resolve). Each test copies the
checkout into the chroot afresh, so it sees the working tree as it is now.

The unit tests use names of the ``rbd``/``rados`` bindings that Nautilus lacks: the
snapshot-mirroring ones Octopus added (``rbd.RBD_SNAP_NAMESPACE_TYPE_MIRROR`` …) and
``rados.ConnectionShutdown``. For that run, an overlay (``BINDING_OVERLAY``) loads Debian's binding
and adds just those names, with the later bindings' values (checked against the host's binding
here); the package's import tests use the bare Nautilus binding.

ceph-mgr's ``mgr_module`` exists only inside a mgr, so ``rbd_snapsched.module`` is imported
against a minimal stand-in on ``sys.path`` (``FAKE_MGR_MODULE``: the names module.py takes from
it, nothing else). The import tests also import a
``py310_canary`` module with a 3.10+ construct and requires that to fail: the proof that the
interpreter really rejects what the package must not use.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.container_layer import (
    MGR_MODULE_PATH,
    PACKAGE,
    layer_files,
    package_modules,
)
from tests.releases import TEST_DEPS_DIR, InterpreterRuntime, interpreter_runtime

pytestmark = pytest.mark.python39

REPO = Path(__file__).resolve().parents[2]
# The working tree is copied whole (unit tests read monitoring/, container/, debian/ …), but for
# version control, tool caches and virtualenvs.
IGNORED = shutil.ignore_patterns(
    "__pycache__", "*.pyc", ".git", ".tox", ".venv", ".mypy_cache", ".ruff_cache",
    ".pytest_cache", ".hypothesis",
)  # fmt: skip
# The unit and fake-contract tests: everything under tests/unit and tests/contract that needs no
# cluster (tests/contract/test_*_rados.py and test_option_mgr.py are marked ceph_cluster), but
# the alert rules' tests, which run Debian's promtool on YAML (no Python of ours to check; the
# host runs them). The python39 tests live in tests/python39, so they cannot recurse.
SELECTION = (
    "-m",
    "not ceph_cluster",
    "--ignore=tests/unit/test_alert_rules.py",
    "tests/unit",
    "tests/contract",
)
MIN_PASSED_SHARE = 0.9  # of the host's count for the same selection: no collection collapse

FAKE_MGR_MODULE = '''\
"""A stand-in for ceph-mgr's mgr_module: the names rbd_snapsched.module takes from it."""
import enum
from typing import NamedTuple


class NotifyType(str, enum.Enum):
    mon_map = "mon_map"
    pg_summary = "pg_summary"
    health = "health"
    clog = "clog"
    osd_map = "osd_map"
    fs_map = "fs_map"
    command = "command"


class HandleCommandResult(NamedTuple):
    retval: int = 0
    stdout: str = ""
    stderr: str = ""


class Option(dict):
    def __init__(self, name, **kwargs):
        super().__init__(name=name, **kwargs)


class MgrModule:
    COMMANDS = []
    MODULE_OPTIONS = []

    def __init__(self, *args, **kwargs):
        pass


class MgrStandbyModule:
    MODULE_OPTIONS = []

    def __init__(self, *args, **kwargs):
        pass
'''
# ceph_module is the mgr's built-in extension; rbd_snapsched/__init__.py exports Module and
# StandbyModule only when it is there, as in a real mgr.
FAKE_CEPH_MODULE = '"""A stand-in for ceph-mgr\'s built-in extension module."""\n'
# Names of the later rbd and rados bindings that Nautilus lacks, with their values there
# (librbd.h's enums; test_the_overlay_matches_the_hosts_binding checks them against the host's).
RBD_ADDED = {
    "RBD_MIRROR_IMAGE_MODE_JOURNAL": 0,
    "RBD_MIRROR_IMAGE_MODE_SNAPSHOT": 1,
    "RBD_SNAP_MIRROR_STATE_PRIMARY": 0,
    "RBD_SNAP_MIRROR_STATE_PRIMARY_DEMOTED": 1,
    "RBD_SNAP_MIRROR_STATE_NON_PRIMARY": 2,
    "RBD_SNAP_MIRROR_STATE_NON_PRIMARY_DEMOTED": 3,
    "RBD_SNAP_NAMESPACE_TYPE_MIRROR": 3,
}
RADOS_ADDED_ERRORS = {"ConnectionShutdown": "OSError"}  # class name: its base in the binding
BINDING_OVERLAY = """\
\"\"\"{name} as Debian bullseye ships it (Nautilus), plus what Octopus added.\"\"\"
import importlib.machinery, importlib.util, sys

_spec = importlib.machinery.PathFinder.find_spec("{name}", ["/usr/lib/python3/dist-packages"])
_real = importlib.util.module_from_spec(_spec)
sys.modules["{name}"] = _real  # what `import {name}` returns once this file has run
_spec.loader.exec_module(_real)
for _key, _value in {values!r}.items():
    if not hasattr(_real, _key):
        setattr(_real, _key, _value)
for _key, _base in {errors!r}.items():
    if not hasattr(_real, _key):
        setattr(_real, _key, type(_key, (getattr(_real, _base),), {{"__module__": "{name}"}}))
"""
# A 3.10+ construct evaluated at import (a runtime `X | None`): 3.9 must refuse it.
CANARY = "Alias = int | None\n"

# Run by the chroot's python3: import the package and every module of it, report as JSON.
IMPORT_ALL = r"""
import importlib, json, pkgutil, sys, traceback

paths, package, with_mgr = sys.argv[1].split(":"), sys.argv[2], sys.argv[3] == "mgr"
sys.path[:0] = paths


def attempt(name):
    try:
        importlib.import_module(name)
    except BaseException as e:
        if isinstance(e, SyntaxError):
            where = f"{e.filename}:{e.lineno}"
        else:
            frames = traceback.extract_tb(e.__traceback__)
            where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        return f"{type(e).__name__}: {e} (at {where})"
    return None


report = {"python": list(sys.version_info[:3]), "modules": {}}
report["modules"][package] = attempt(package)
if report["modules"][package] is None:
    top = sys.modules[package]
    report["file"] = top.__file__
    report["exports"] = sorted(getattr(top, "__all__", []))
    for info in pkgutil.walk_packages(top.__path__, package + "."):
        report["modules"][info.name] = attempt(info.name)
    if with_mgr and "Module" in report["exports"]:
        import mgr_module

        cls = top.Module
        report["module_class"] = {
            "is_mgr_module": issubclass(cls, mgr_module.MgrModule),
            "commands": len(cls.COMMANDS),
            "options": len(cls.MODULE_OPTIONS),
            "standby": issubclass(top.StandbyModule, mgr_module.MgrStandbyModule),
        }
report["canary"] = attempt("py310_canary")
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def py39() -> InterpreterRuntime:
    rt = interpreter_runtime("python39")
    rt.prepare()  # built once and cached; quick when ready (tests/releases.py)
    return rt


@pytest.fixture
def scratch(py39: InterpreterRuntime) -> Iterator[tuple[Path, Path]]:
    """A fresh directory in the chroot: (its host path, its path inside the chroot)."""
    host = Path(tempfile.mkdtemp(prefix="rbd_snapsched-py39-", dir=py39.path("/tmp")))
    try:
        yield host, Path("/tmp") / host.name
    finally:
        shutil.rmtree(host, ignore_errors=True)


def _fakes(where: Path, *, ceph_module: bool) -> None:
    where.mkdir()
    (where / "mgr_module.py").write_text(FAKE_MGR_MODULE)
    (where / "py310_canary.py").write_text(CANARY)
    if ceph_module:
        (where / "ceph_module.py").write_text(FAKE_CEPH_MODULE)


def _binding_overlay(where: Path) -> None:
    where.mkdir()
    (where / "rbd.py").write_text(BINDING_OVERLAY.format(name="rbd", values=RBD_ADDED, errors={}))
    (where / "rados.py").write_text(
        BINDING_OVERLAY.format(name="rados", values={}, errors=RADOS_ADDED_ERRORS)
    )


def _copy_checkout(into: Path) -> None:
    shutil.copytree(REPO, into / "checkout", ignore=IGNORED, symlinks=True)


def _run(
    py39: InterpreterRuntime, argv: list[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        py39.argv(argv, env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _import_all(py39: InterpreterRuntime, paths: list[Path], *, mgr: bool) -> dict[str, Any]:
    argv = ["/usr/bin/python3", "-c", IMPORT_ALL, ":".join(map(str, paths)), PACKAGE]
    proc = _run(py39, [*argv, "mgr" if mgr else "plain"], {"PYTHONDONTWRITEBYTECODE": "1"}, 120)
    assert proc.returncode == 0, f"the import run failed:\n{proc.stdout}\n{proc.stderr}"
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["python"][:2] == [3, 9], f"not CPython 3.9: {report['python']}"
    assert str(report["canary"]).startswith("TypeError"), (
        f"a 3.10+ construct imported under this interpreter: {report['canary']!r}"
    )
    return report


def _expected_modules() -> set[str]:
    names = set()
    for rel in package_modules():
        parts = rel[: -len(".py")].split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.add(".".join([PACKAGE, *parts]))
    return names


def _failures(report: dict[str, Any]) -> str:
    return "\n".join(f"  {name}: {error}" for name, error in report["modules"].items() if error)


def test_every_module_imports_under_python_3_9(
    py39: InterpreterRuntime, scratch: tuple[Path, Path]
) -> None:
    host, inner = scratch
    _copy_checkout(host)
    _fakes(host / "fakes", ceph_module=False)
    report = _import_all(py39, [inner / "checkout", inner / "fakes"], mgr=False)
    failures = _failures(report)
    assert not failures, f"modules that do not import under Python 3.9:\n{failures}"
    assert set(report["modules"]) == _expected_modules(), "the walk missed modules"


def test_the_container_layer_loads_like_ceph_mgr_loads_it_under_python_3_9(
    py39: InterpreterRuntime, scratch: tuple[Path, Path]
) -> None:
    """Apply the Containerfile's COPY to an empty root in the chroot, then import the package
    from that root's /usr/share/ceph/mgr, as ceph-mgr does, with the mgr's modules there."""
    host, inner = scratch
    for image_path, source in layer_files().items():
        target = host / "image" / image_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    _fakes(host / "fakes", ceph_module=True)
    module_path = inner / "image" / MGR_MODULE_PATH.lstrip("/")
    report = _import_all(py39, [module_path, inner / "fakes"], mgr=True)
    failures = _failures(report)
    assert not failures, f"modules of the layer that do not import:\n{failures}"
    assert report["file"] == str(module_path / PACKAGE / "__init__.py")
    assert set(report["modules"]) == _expected_modules()
    assert report["exports"] == ["Module", "StandbyModule"], "ceph-mgr takes these two"
    loaded = report["module_class"]
    assert loaded["is_mgr_module"] and loaded["standby"], loaded
    assert loaded["commands"] > 0 and loaded["options"] > 0, loaded


def _host_collected() -> int:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            *SELECTION,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    found = re.search(r"(\d+)(?:/\d+)? tests? collected", proc.stdout)
    assert proc.returncode == 0 and found, f"host collection failed:\n{proc.stdout[-3000:]}"
    return int(found.group(1))


def test_unit_and_contract_tests_pass_under_python_3_9(
    py39: InterpreterRuntime, scratch: tuple[Path, Path]
) -> None:
    host, inner = scratch
    _copy_checkout(host)
    _binding_overlay(host / "overlay")
    expected = _host_collected()
    pytest_argv = ["python3", "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    pytest_argv += [f"--basetemp={inner / 'pytest-tmp'}", *SELECTION]  # all in the scratch dir
    command = f"cd {shlex.quote(str(inner / 'checkout'))} && exec {shlex.join(pytest_argv)}"
    env = {
        "PYTHONPATH": f"{inner / 'overlay'}:{TEST_DEPS_DIR}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": str(inner),
    }
    proc = _run(py39, ["/bin/sh", "-c", command], env, 900)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    summary = lines[-1] if lines else "(no output)"
    print(f"Python 3.9 (bullseye): {summary}; the host collects {expected}")
    output = f"{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
    assert proc.returncode == 0, f"pytest under Python 3.9 exited {proc.returncode}:\n{output}"
    passed = re.search(r"(\d+) passed", summary)
    assert passed, f"no pass count in {summary!r}:\n{output}"
    assert int(passed.group(1)) >= MIN_PASSED_SHARE * expected, (
        f"only {passed.group(1)} passed under 3.9, the host collects {expected}: {summary}"
    )


def test_the_overlay_matches_the_hosts_binding() -> None:
    """The names the overlay adds to bullseye's Nautilus binding have the same values (and
    bases) in the host release's own binding, the one the host runs these tests with."""
    import rados
    import rbd

    assert {name: getattr(rbd, name) for name in RBD_ADDED} == RBD_ADDED
    for name, base in RADOS_ADDED_ERRORS.items():
        assert issubclass(getattr(rados, name), getattr(rados, base))
