"""The README's test command on a fresh Debian trixie root, on every run.

``tests/fresh_root.py`` builds the root (a pristine debootstrap output, cached for a week and
unpacked anew, then ``apt-get install python3 python3-pip`` from the mirror), copies the working
tree in and runs the first step of the README's "**Every test.**" command as written, then its tox
call with ``--version`` and ``-e lint --notest`` (tox builds an environment on /usr/bin/python3 and
installs into it from PyPI; the lint itself is the ``lint`` environment's). Trixie is the suite
where installing tox into Debian's Python fails (its ``python3-pip`` brings ``python3-packaging``
25; tox needs 26): this catches a test command that fights Debian's packages again. About a minute;
the whole proof on both suites is ``python3 -m tests.fresh_root`` (30-40 minutes a suite).

The other tests here only read README.md and ``.ci/run``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from tests import fresh_root
from tests.fresh_root import Commands, readme_commands

REPO = Path(__file__).resolve().parents[2]


def _ci_command() -> str:
    """The one command line of ``.ci/run`` (after its ``cd``)."""
    lines = [
        line.strip()
        for line in (REPO / ".ci/run").read_text().splitlines()
        if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))
    ]
    assert len(lines) == 1, f".ci/run must run the test command and nothing else: {lines}"
    return lines[0]


def test_readme_commands_are_found() -> None:
    commands = readme_commands((REPO / "README.md").read_text())
    assert commands.main_job[0].startswith("python3 -m tests.demo")
    before, tox = commands.first_step()
    assert before and tox.endswith("-m tox"), commands


def test_ci_runs_exactly_the_readme_test_command() -> None:
    assert _ci_command() == readme_commands((REPO / "README.md").read_text()).every_test


def test_test_command_leaves_system_python_alone() -> None:
    """No pip step of the test command writes to the system's Python: no
    PIP_BREAK_SYSTEM_PACKAGES, --break-system-packages, --user or sudo pip."""
    command = readme_commands((REPO / "README.md").read_text()).every_test
    for banned in ("BREAK_SYSTEM_PACKAGES", "--break-system-packages", "--user", "sudo"):
        assert banned not in command, command


def test_readme_parser_on_a_minimal_section() -> None:
    readme = "\n".join(
        [
            "# x",
            "## The two commands",
            "**Main job.** Boots.",
            "",
            "    python3 -m tests.demo           # the host's release",
            "    python3 -m tests.demo --release reef",
            "",
            "**Every test.** All:",
            "",
            "    a && b && python3 -m tox",
            "",
            "## Next",
            "    not this",
        ]
    )
    commands = readme_commands(readme)
    assert commands == Commands(
        ("python3 -m tests.demo           # the host's release",), "a && b && python3 -m tox"
    )
    assert commands.first_step() == ("a && b", "python3 -m tox")
    with pytest.raises(fresh_root.FreshRootError):
        readme_commands(readme.replace("**Every test.**", "**Tests.**"))


@pytest.mark.fresh_root
def test_first_step_of_test_command_on_fresh_trixie() -> None:
    assert os.geteuid() == 0, "builds a Debian root: needs root (debootstrap, chroot, mount)"
    fresh_root.WORK.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="test-", dir=fresh_root.WORK))
    root = run_dir / "trixie"
    started = time.monotonic()
    try:
        result = fresh_root.run_suite(
            "trixie", root, only_first_step=True, cached_base=True, echo=False
        )
        seconds = time.monotonic() - started
        text = fresh_root.report(result, seconds)
        print(text)
        assert result.ok, text
        assert "trixie" in result.release, text
        names = [step.name for step in result.steps]
        assert names == [
            "what the root has",
            "test command, first step",
            "tox --version",
            "tox -e lint --notest",
        ], text
        has = [line.strip() for line in result.steps[0].tail]
        # The trap is there: Debian's pip brought Debian's packaging along.
        assert any(line.startswith("python3-packaging ") for line in has), has
        # ... and the test command left it alone: nothing went into the system's Python.
        local = [
            p for d in (root / "usr/local/lib").glob("python3*/dist-packages") for p in d.iterdir()
        ]
        assert not local, f"the test command installed into the system's Python: {local}"
        assert any("tox" in line and " from " in line for line in result.steps[2].tail), text
    finally:
        fresh_root.remove_root(root)
        run_dir.rmdir()
    assert not root.exists()
