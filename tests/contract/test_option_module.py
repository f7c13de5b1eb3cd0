"""``store.ModuleOption``, the real OptionBackend, over a stand-in for the mgr's option calls.

The stand-in answers as ``mgr_module.MgrModule`` does (``get_module_option_ex``: the stored
value, None when unset; a module option's value is a string). ceph-mgr itself cannot be driven
from a test process, so this is the one contract without a real-cluster run.
"""

from __future__ import annotations

from rbd_snapsched.store import ModuleOption
from tests.contract.option import check_option_backend


class MgrOptions:
    def __init__(self) -> None:
        self.stored: dict[tuple[str, str], str] = {}

    def get_module_option_ex(self, module: str, key: str) -> object:
        return self.stored.get((module, key))

    def set_module_option_ex(self, module: str, key: str, val: str) -> None:
        self.stored[(module, key)] = val


def test_module_option_keeps_the_contract() -> None:
    mgr = MgrOptions()
    check_option_backend(ModuleOption(mgr, "rbd_snapsched", "mirror_snapshot_schedule"))
    # Cleared as "", never removed (a Pacific mgr would keep serving a removed value).
    assert mgr.stored == {("rbd_snapsched", "mirror_snapshot_schedule"): ""}
