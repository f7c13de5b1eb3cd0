"""The soak's fingerprint of the module's sources: a run whose mgrs may have loaded an edited
module is void (``tests/soak/sources.py``)."""

from __future__ import annotations

from pathlib import Path

from tests.soak.sources import fingerprint


def _package(root: Path) -> Path:
    package = root / "rbd_snapsched"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("A = 1\n")
    (package / "sub" / "b.py").write_text("B = 2\n")
    return package


def test_an_edit_an_added_or_a_renamed_file_changes_it(tmp_path: Path) -> None:
    package = _package(tmp_path)
    before = fingerprint(package)
    assert fingerprint(package) == before  # stable
    (package / "a.py").write_text("A = 3\n")
    edited = fingerprint(package)
    assert edited != before
    (package / "c.py").write_text("")
    added = fingerprint(package)
    assert added != edited
    (package / "c.py").rename(package / "d.py")
    assert fingerprint(package) != added


def test_compiled_caches_do_not_change_it(tmp_path: Path) -> None:
    package = _package(tmp_path)
    before = fingerprint(package)
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert fingerprint(package) == before
