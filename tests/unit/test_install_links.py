"""The install tool's file side: the Debian package's links and their record, the copy from a
clone, and which module path it picks. The ceph CLI is faked."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from rbd_snapsched import install
from rbd_snapsched.install import (
    NAME,
    PACKAGE_DIR,
    InstallError,
    forget_link,
    module_path,
    put_module,
    read_links,
    record_link,
)


def test_link_points_at_the_package_and_replaces_a_copy(tmp_path: Path) -> None:
    copy = tmp_path / NAME
    copy.mkdir()
    (copy / "module.py").write_text("old")
    assert put_module(tmp_path, link=True) == f"linked {copy} -> {PACKAGE_DIR}"
    assert copy.is_symlink() and copy.resolve() == PACKAGE_DIR
    put_module(tmp_path, link=True)  # again: the link is replaced by a rename
    assert copy.resolve() == PACKAGE_DIR
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAME]


def test_copy_replaces_a_link_and_leaves_no_bytecode(tmp_path: Path) -> None:
    put_module(tmp_path, link=True)
    assert put_module(tmp_path, link=False).startswith("copied ")
    dest = tmp_path / NAME
    assert dest.is_dir() and not dest.is_symlink()
    assert (dest / "install.py").read_text() == (PACKAGE_DIR / "install.py").read_text()
    assert not list(dest.rglob("__pycache__"))
    assert not (PACKAGE_DIR / "install.py").is_symlink()  # the package itself untouched


def test_links_are_recorded_with_their_conf_and_forgotten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    monkeypatch.setenv("CEPH_CONF", "/etc/ceph/site-a.conf")
    record_link(state, Path("/usr/share/ceph/mgr"))
    monkeypatch.delenv("CEPH_CONF")
    record_link(state, Path("/srv/mgr"))
    record_link(state, Path("/srv/mgr"))  # once per path
    assert (state / "links").read_text() == (
        "/usr/share/ceph/mgr\t/etc/ceph/site-a.conf\n/srv/mgr\t\n"
    )
    assert read_links(state) == [("/usr/share/ceph/mgr", "/etc/ceph/site-a.conf"), ("/srv/mgr", "")]
    forget_link(state, Path("/usr/share/ceph/mgr"))
    assert read_links(state) == [("/srv/mgr", "")]
    forget_link(state, Path("/srv/mgr"))
    assert not (state / "links").exists()  # nothing recorded: no file (the prerm's test)
    forget_link(state, Path("/srv/mgr"))


def test_a_path_the_prerm_cannot_read_back_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InstallError, match="tab or newline"):
        record_link(tmp_path, Path("/srv/a\tb"))


def fake_ceph(monkeypatch: pytest.MonkeyPatch, answers: dict[tuple[str, ...], str]) -> None:
    def ceph(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        out = answers.get(args)
        if out is None and check:
            raise InstallError(f"ceph {args}")
        return subprocess.CompletedProcess(["ceph", *args], 0 if out is not None else 2, out or "")

    def ceph_json(*args: str) -> Any:
        return {"active_name": "x", "standbys": [{"name": "y"}]}

    monkeypatch.setattr(install, "ceph", ceph)
    monkeypatch.setattr(install, "ceph_json", ceph_json)


def test_module_path_is_what_the_running_mgrs_report(monkeypatch: pytest.MonkeyPatch) -> None:
    # ceph.conf's `mgr module path` is invisible to `config get` (it answers the default).
    fake_ceph(
        monkeypatch,
        {
            ("config", "show", "mgr.x", "mgr_module_path"): "/srv/mgr\n",
            ("config", "show", "mgr.y", "mgr_module_path"): "/srv/mgr\n",
            ("config", "get", "mgr", "mgr_module_path"): "/usr/share/ceph/mgr\n",
        },
    )
    assert module_path(None) == Path("/srv/mgr")
    assert module_path(Path("/given")) == Path("/given")


def test_module_paths_that_differ_need_module_path(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ceph(
        monkeypatch,
        {
            ("config", "show", "mgr.x", "mgr_module_path"): "/srv/mgr\n",
            ("config", "show", "mgr.y", "mgr_module_path"): "/usr/share/ceph/mgr\n",
        },
    )
    with pytest.raises(InstallError, match=r"differ.*pass --module-path"):
        module_path(None)


def test_module_path_falls_back_to_the_configured_one(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ceph(monkeypatch, {("config", "get", "mgr", "mgr_module_path"): "/usr/share/ceph/mgr\n"})
    assert module_path(None) == Path("/usr/share/ceph/mgr")


def test_packaged_dry_run_says_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(install, "caps_to_extend", lambda: ([], []))
    monkeypatch.setattr(install, "ceph_json", lambda *args: {"enabled_modules": []})
    argv = ["install", "--dry-run", "--module-path", str(tmp_path)]
    assert install.main(argv, packaged=True, state_dir=tmp_path / "state") == 0
    out = capsys.readouterr().out
    assert f"would link {PACKAGE_DIR} at {tmp_path / NAME}" in out
    assert not (tmp_path / NAME).exists() and not (tmp_path / "state").exists()
