"""``store.ModuleOption``, the real OptionBackend, over a stand-in for the mgr's option calls.

The stand-in answers as ``mgr_module.MgrModule`` does (``get_module_option_ex``: the stored
value, None when unset; a module option's value is a string; a write the mon refuses is only
logged). ``test_option_mgr.py`` runs the same contract inside a real ceph-mgr of each release.
"""

from __future__ import annotations

import pytest

from rbd_snapsched.store import ModuleOption
from tests.contract.option import check_option_backend, check_refused_write


class MgrOptions:
    def __init__(self, known: set[tuple[str, str]], *, raises: bool) -> None:
        self.known = known  # the options the mon knows: others it refuses
        self.raises = raises  # a refusal: raised (Reef, Tentacle) or only logged (Pacific)
        self.stored: dict[tuple[str, str], str] = {}

    def get_module_option_ex(self, module: str, key: str) -> object:
        return self.stored.get((module, key))

    def set_module_option_ex(self, module: str, key: str, val: str) -> None:
        if (module, key) in self.known:
            self.stored[(module, key)] = val
        elif self.raises:
            raise ValueError(f"unrecognized config option 'mgr/{module}/{key}'")


@pytest.mark.parametrize("raises", [False, True], ids=["logged", "raised"])
def test_module_option_keeps_the_contract(raises: bool) -> None:
    mgr = MgrOptions({("rbd_snapsched", "mirror_snapshot_schedule")}, raises=raises)
    check_option_backend(ModuleOption(mgr, "rbd_snapsched", "mirror_snapshot_schedule"))
    # Cleared as "", never removed (a Pacific mgr would keep serving a removed value).
    assert mgr.stored == {("rbd_snapsched", "mirror_snapshot_schedule"): ""}
    check_refused_write(ModuleOption(mgr, "rbd_snapsched", "no_such_option"))
    assert mgr.stored == {("rbd_snapsched", "mirror_snapshot_schedule"): ""}
