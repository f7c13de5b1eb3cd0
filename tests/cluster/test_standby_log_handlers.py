"""A standby's log handlers against each release's real ``mgr_module``, in its own Python.

When a standby mgr becomes active, ceph-mgr builds the active ``Module`` in the interpreter the
``StandbyModule`` ran in, and the standby instance may be garbage-collected only after the
active one set up its logging. On Pacific and Reef, Ceph's ``MgrStandbyModule.__del__`` calls
``MgrModuleLoggingMixin._unconfigure_logging``, which removes every mgr log handler of the root
logger: the active module's too, and every line it logged afterwards was lost. Our
``StandbyModule._unconfigure_logging`` removes its own handlers only.

Each scenario runs in a fresh process of the release's ``/usr/bin/python3`` (host or chroot,
``tests/releases.py``), with a copy of our package on its path:

- Real: the release's ``/usr/share/ceph/mgr/mgr_module.py`` (and what it imports: ``rados``,
  ``mgr_util``, ``ceph_argparse``), its logging classes, ``MgrStandbyModule.__init__`` and
  ``__del__`` (where the release has one), ``MgrModule.__init__``; our ``Module`` and
  ``StandbyModule``, imported through our package's ``__init__`` and built with their real
  ``__init__``; ``_register_options`` called on both classes, as ceph-mgr does when it loads a
  module; the garbage collector, which runs ``__del__``.
- Stand-in: ``ceph_module``, the C++ extension ceph-mgr injects (it exists only inside
  ceph-mgr). Its ``BaseMgrModule`` and ``BaseMgrStandbyModule`` have just the ``_ceph_*``
  calls the constructors and the logging make (options, version, mgr id, and log and
  cluster-log sinks that record the lines), and its ``BasePy*`` classes are empty, for the
  import only. The active instance logs to file and cluster too, so all three kinds of handler
  are on.

The releases' ``mgr_module`` differ, and the script reports how rather than being told:
Pacific and Reef put the handlers on the root logger and have ``MgrStandbyModule.__del__``;
Tentacle (20.2) puts them on the module's own logger (one logger for the standby and the active
instance of a module) and has no ``__del__``, so there the failover bug cannot happen and our
override runs only from Ceph's ``_configure_logging``, before the instance has handlers.
``LAYOUT`` pins what was found, so a release that changes it fails here and is looked at again.

Scenarios, each in a fresh interpreter:

- ``ceph_del``: a plain ``MgrStandbyModule`` subclass, then the active ``Module``, then the
  standby deleted and collected: the failover bug, where the release has ``__del__``.
- ``ceph_call``: our standby, the active, then Ceph's own ``_unconfigure_logging`` called on
  the standby: on every release it removes the active's handlers (the control that makes the
  checks of ours able to fail).
- ``ours_del``: our standby, the active, then the standby deleted and collected: the active's
  handlers stay, and a line it logs afterwards reaches the mgr log, the file and the cluster
  log.
- ``ours_call``: the active, then our standby (its handler beside the active's), then the
  standby's ``_unconfigure_logging``: its own handler goes, the active's stay.

Why "its own handler goes" is checked by a call, not by ``del``: while a standby's handler is
on a logger, that handler refers to the instance and keeps it alive, so ``__del__`` cannot run
then; by the time it can, the active's set-up (Ceph's version) has already removed it.

No cluster; a few seconds per release.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cephcluster import MODULE_DIR, install
from tests.releases import Runtime

pytestmark = pytest.mark.ceph_cluster

STOCK_MGR_DIR = "/usr/share/ceph/mgr"
ALL = ["cluster", "file", "mgr"]  # the active's handlers (it logs to file and cluster too)
# Per release: does MgrStandbyModule define __del__, and on which logger do the handlers go.
LAYOUT = {
    "pacific": (True, "root"),
    "reef": (True, "root"),
    "tentacle": (False, "module"),
}

SCRIPT = r"""
import atexit, gc, importlib.machinery, json, logging, os, shutil, sys, tempfile, types, weakref

NAME = "rbd_snapsched"
TMP = tempfile.mkdtemp(prefix="rbd_snapsched-standby-log-")
atexit.register(shutil.rmtree, TMP, True)  # also when the scenario fails
CEPH_OPTIONS = {"debug_mgr": "4/5", "log_file": os.path.join(TMP, "mgr.x.log")}
ACTIVE_OPTIONS = {"log_to_file": True, "log_to_cluster": True}  # unset ones: their defaults


class _Base:
    # What ceph-mgr's C++ answers to the constructors and the logging.
    def __init__(self, *capsule):
        self.ceph_lines = []
        self.cluster_lines = []

    def _ceph_get_option(self, key):
        return CEPH_OPTIONS[key]

    def _ceph_get_mgr_id(self):
        return "x"

    def _ceph_log(self, line):
        self.ceph_lines.append(line)


class BaseMgrStandbyModule(_Base):
    def _ceph_get_module_option(self, key, prefix=None):
        return None


class BaseMgrModule(_Base):
    def _ceph_get_module_option(self, module, key, prefix=None):
        return ACTIVE_OPTIONS.get(key)

    def _ceph_get_version(self):
        return "stand-in"

    def _ceph_cluster_log(self, channel, priority, message):
        self.cluster_lines.append(message)


stand_in = types.ModuleType("ceph_module")
# A spec like a built-in's: our package's __init__ looks for one to export Module.
stand_in.__spec__ = importlib.machinery.ModuleSpec("ceph_module", None, origin="built-in")
stand_in.BaseMgrModule = BaseMgrModule
stand_in.BaseMgrStandbyModule = BaseMgrStandbyModule
for base in ("BasePyOSDMap", "BasePyOSDMapIncremental", "BasePyCRUSH"):
    setattr(stand_in, base, type(base, (), {}))
sys.modules["ceph_module"] = stand_in

import mgr_module
from rbd_snapsched.module import Module, StandbyModule


class CephStandby(mgr_module.MgrStandbyModule):
    # Ceph's standby behaviour, untouched.
    MODULE_OPTIONS = Module.MODULE_OPTIONS

    def serve(self):
        pass


def handlers(inst):
    return {
        "mgr": inst._mgr_log_handler,
        "file": inst._file_log_handler,
        "cluster": inst._cluster_log_handler,
    }


def attached(inst):
    # Which of the instance's handlers are on the root logger or the module's own.
    on = logging.getLogger().handlers + logging.getLogger(NAME).handlers
    return sorted(name for name, h in handlers(inst).items() if h in on)


def active():
    inst = Module(NAME, object(), object())
    on_root = inst._mgr_log_handler in logging.getLogger().handlers
    layout["logger"] = "root" if on_root else "module"
    return inst


def standby(cls):
    return cls(NAME, object())


scenario = sys.argv[1]
for cls in (Module, StandbyModule, CephStandby):  # as ceph-mgr does on loading a module
    cls._register_options(NAME)
layout = {"standby_has_del": "__del__" in vars(mgr_module.MgrStandbyModule)}
out = {"layout": layout}

if scenario == "ours_call":
    act = active()
    out["active_before"] = attached(act)
    sb = standby(StandbyModule)  # its set-up calls _unconfigure_logging first, too
    out["standby_before"] = attached(sb)
    out["active_beside"] = attached(act)
    sb._unconfigure_logging()
    out["standby_after"] = attached(sb)
else:
    sb = standby(CephStandby if scenario == "ceph_del" else StandbyModule)
    out["standby_before"] = attached(sb)
    act = active()
    out["active_before"] = attached(act)
    if scenario == "ceph_call":
        mgr_module.MgrModuleLoggingMixin._unconfigure_logging(sb)
        out["standby_after"] = attached(sb)
    else:
        own = {name: weakref.ref(h) for name, h in handlers(sb).items()}  # not to keep it
        gone = weakref.ref(sb)
        del sb
        gc.collect()
        out["collected"] = gone() is None
        on = logging.getLogger().handlers + logging.getLogger(NAME).handlers
        out["standby_after"] = sorted(name for name, h in own.items() if h() in on)

out["active_after"] = attached(act)
act.log.warning("logged after the standby went")
path = act._file_log_handler.baseFilename
out["reached"] = sorted(
    where
    for where, seen in (
        ("mgr", any("logged after the standby went" in x for x in act.ceph_lines)),
        ("cluster", "logged after the standby went" in act.cluster_lines),
        ("file", os.path.exists(path) and "logged after the standby went" in open(path).read()),
    )
    if seen
)
for h in handlers(act).values():
    h.close()
print(json.dumps(out))
"""


def run_scenario(rt: Runtime, src: Path, scenario: str) -> dict[str, Any]:
    """The scenario's report, from a fresh python3 of the release's runtime."""
    path = ":".join(p for p in (str(src), STOCK_MGR_DIR, rt.mgr_env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        rt.argv(["/usr/bin/python3", "-c", SCRIPT, scenario], {"PYTHONPATH": path}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd="/",  # not the checkout: `python3 -c` puts the cwd first on sys.path
    )
    assert proc.returncode == 0, f"{scenario} on {rt!r}:\n{proc.stderr[-4000:]}"
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return report


@pytest.fixture(scope="module")
def runs(release: str) -> Iterator[dict[str, dict[str, Any]]]:
    """Every scenario's report on ``release``, our package copied where its python3 sees it."""
    rt = install(release)
    src = rt.make_temp_dir(prefix="rbd_snapsched-standby-log-src-")
    try:
        shutil.copytree(
            MODULE_DIR,
            src / MODULE_DIR.name,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        yield {
            s: run_scenario(rt, src, s) for s in ("ceph_del", "ceph_call", "ours_del", "ours_call")
        }
    finally:
        rt.remove_dir(src)


def test_release_layout_is_the_one_known(release: str, runs: dict[str, dict[str, Any]]) -> None:
    has_del, logger = LAYOUT[release]
    for scenario, report in runs.items():
        seen = (report["layout"]["standby_has_del"], report["layout"]["logger"])
        assert seen == (has_del, logger), (
            f"{release}: mgr_module changed (MgrStandbyModule.__del__, handlers' logger): "
            f"{seen} in {scenario}, expected {(has_del, logger)}: look at this test again"
        )
        assert report["active_before"] == ALL, report


def test_ceph_unconfigure_removes_the_active_handlers(
    release: str, runs: dict[str, dict[str, Any]]
) -> None:
    """The control: Ceph's version removes the active instance's handlers, so the test below
    can fail. Through ``__del__`` where the release has one (the failover bug), and called
    directly on every release."""
    call = runs["ceph_call"]
    assert call["active_after"] == [], f"{release}: Ceph's _unconfigure_logging kept {call}"
    assert "mgr" not in call["reached"], call

    deleted = runs["ceph_del"]
    assert deleted["collected"], f"{release}: the standby was not collected: {deleted}"
    if LAYOUT[release][0]:
        assert deleted["active_after"] == [], f"{release}: the failover bug did not show: {deleted}"
        assert deleted["reached"] == [], deleted  # every later line lost
    else:  # no __del__: nothing runs when the standby goes
        assert deleted["active_after"] == ALL, deleted
        assert deleted["reached"] == ALL, deleted


def test_our_standby_keeps_the_active_handlers(
    release: str, runs: dict[str, dict[str, Any]]
) -> None:
    deleted = runs["ours_del"]
    assert deleted["standby_before"] == ["mgr"], deleted
    assert deleted["collected"], f"{release}: the standby was not collected: {deleted}"
    assert deleted["active_after"] == ALL, (
        f"{release}: deleting our StandbyModule removed the active Module's log handlers: {deleted}"
    )
    assert deleted["reached"] == ALL, f"{release}: a line logged after it was lost: {deleted}"
    assert deleted["standby_after"] == [], deleted

    called = runs["ours_call"]
    assert called["standby_before"] == ["mgr"], called
    assert called["active_beside"] == ALL, (
        f"{release}: building our StandbyModule removed the active Module's log handlers: {called}"
    )
    assert called["active_after"] == ALL, (
        f"{release}: our StandbyModule._unconfigure_logging removed the active Module's "
        f"log handlers: {called}"
    )
    assert called["reached"] == ALL, called
    if LAYOUT[release][1] == "root":
        assert called["standby_after"] == [], f"{release}: its own handler stayed: {called}"
    else:
        # Tentacle: its handler is on the module's logger, which our override does not look
        # at; Ceph never calls it there once the handlers exist, so it stays.
        assert called["standby_after"] == ["mgr"], called
