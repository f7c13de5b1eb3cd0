"""rbd_snapsched: a ceph-mgr module that schedules RBD mirror snapshots.

ceph-mgr imports this package and takes ``Module`` (on a standby mgr, ``StandbyModule``) from
it. Outside a mgr (tests, tools) the pure modules import without one, so both are only exported
when ``ceph_module``, the mgr's built-in extension, is there.
"""

import importlib.util

if importlib.util.find_spec("ceph_module") is not None:  # pragma: no cover - only in ceph-mgr
    from .module import Module, StandbyModule

    __all__ = ["Module", "StandbyModule"]
