"""snapsched_probe: a test-only ceph-mgr module that runs the option contract inside a real mgr.

The unit tests fake the mgr's module option calls (``store.ModuleOptions``); this module runs
the same contract (``tests/contract/option.py``, linked here as ``option_contract``) over
``store.ModuleOption`` on the real ``MgrModule`` once it is active, and stores the outcome in
its key/value store (``ceph config-key get mgr/snapsched_probe/option_contract``), where
``tests/contract/test_option_mgr.py`` reads it. Never installed outside a test cluster.
"""

import importlib.util

if importlib.util.find_spec("ceph_module") is not None:  # pragma: no cover - only in ceph-mgr
    from .module import Module

    __all__ = ["Module"]
