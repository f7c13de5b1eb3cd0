"""The test tree's layout rule (tests/README.md): no module imports a test module.

A test module is a file named ``test_*.py``. What several test modules share lives in a helper
module instead: ``tests/unit/harness.py``, ``tests/cluster/helpers.py``, ``tests/slots.py``,
``tests/polling.py``, ``tests/benchmarks/fakes.py`` …, so reading one test means opening its file
and the helpers it names, never another test file.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


def imported(path: Path) -> Iterator[str]:
    """The dotted names of the modules ``path`` imports (relative imports resolved); for
    ``from PACKAGE import NAME`` also ``PACKAGE.NAME``, which may be a module."""
    package = module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parent, *([base] if base else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def is_test_module(name: str) -> bool:
    return name.rpartition(".")[2].startswith("test_")


def test_the_check_sees_imports() -> None:
    # Sanity: a known import is seen, so an empty answer below means something.
    harness_users = [
        p for p in TESTS.rglob("test_*.py") if "tests.unit.harness" in set(imported(p))
    ]
    assert harness_users


def test_no_module_imports_a_test_module() -> None:
    found = {
        (str(path.relative_to(REPO)), name)
        for path in sorted(TESTS.rglob("*.py"))
        for name in set(imported(path))
        if is_test_module(name) and name.startswith("tests.")
    }
    assert found == set(), "import from a helper module instead (tests/README.md)"
