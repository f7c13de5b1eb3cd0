"""``store.ModuleOption``, the real OptionBackend, over a stand-in for the mgr's option calls.

The stand-in answers as ``mgr_module.MgrModule`` does (``get_module_option_ex``: the stored
value, None when unset; a module option's value is a string; a write the mon refuses is only
logged). With ``late_echo`` its cache also does what a loaded Reef mgr did: after a write, a
read serves the value before it (the mon's update for an earlier write landing late) until the
next update. ``test_option_mgr.py`` runs the same contract inside a real ceph-mgr of each release.
"""

from __future__ import annotations

import pytest

from rbd_snapsched.errors import StorageError
from rbd_snapsched.store import ModuleOption
from tests.contract.option import (
    OTHER,
    SCHEDULE,
    check_option_backend,
    check_refused_write,
)


class MgrOptions:
    def __init__(
        self, known: set[tuple[str, str]], *, raises: bool, late_echo: bool = False
    ) -> None:
        self.known = known  # the options the mon knows: others it refuses
        self.raises = raises  # a refusal: raised (Reef, Tentacle) or only logged (Pacific)
        self.late_echo = late_echo
        self.stored: dict[tuple[str, str], str] = {}
        self.echo: dict[tuple[str, str], str | None] = {}  # the value served once read back
        self.reads_since_write = 0

    def get_module_option_ex(self, module: str, key: str) -> object:
        self.reads_since_write += 1
        if self.late_echo and self.reads_since_write > 1 and (module, key) in self.echo:
            return self.echo[(module, key)]
        return self.stored.get((module, key))

    def set_module_option_ex(self, module: str, key: str, val: str) -> None:
        if (module, key) in self.known:
            self.echo[(module, key)] = self.stored.get((module, key))
            self.stored[(module, key)] = val
            self.reads_since_write = 0
        elif self.raises:
            raise ValueError(f"unrecognized config option 'mgr/{module}/{key}'")

    def update_arrives(self) -> None:
        """The mon's update for the last write lands: the cache serves the stored values."""
        self.echo.clear()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("late_echo", [False, True], ids=["in_order", "late_echo"])
@pytest.mark.parametrize("raises", [False, True], ids=["logged", "raised"])
def test_module_option_keeps_the_contract(raises: bool, late_echo: bool) -> None:
    mgr = MgrOptions(
        {("rbd_snapsched", "mirror_snapshot_schedule")}, raises=raises, late_echo=late_echo
    )
    check_option_backend(ModuleOption(mgr, "rbd_snapsched", "mirror_snapshot_schedule"))
    # Cleared as "", never removed (a Pacific mgr would keep serving a removed value).
    assert mgr.stored == {("rbd_snapsched", "mirror_snapshot_schedule"): ""}
    check_refused_write(ModuleOption(mgr, "rbd_snapsched", "no_such_option"))
    assert mgr.stored == {("rbd_snapsched", "mirror_snapshot_schedule"): ""}


def test_after_the_settle_window_the_cache_answers_again() -> None:
    """Another writer's value (``ceph config set``, a standby turned active) shows once our own
    write is ``SETTLE`` seconds old: the window masks only the cache's lag behind our write."""
    clock = Clock()
    mgr = MgrOptions({("rbd_snapsched", "mirror_snapshot_schedule")}, raises=True, late_echo=True)
    option = ModuleOption(mgr, "rbd_snapsched", "mirror_snapshot_schedule", clock)
    option.set(SCHEDULE)
    option.set(OTHER)
    assert mgr.get_module_option_ex("rbd_snapsched", "mirror_snapshot_schedule") == SCHEDULE
    assert option.get() == OTHER  # the late echo of the first write is not served
    clock.now += ModuleOption.SETTLE - 1
    assert option.get() == OTHER
    mgr.update_arrives()
    mgr.stored[("rbd_snapsched", "mirror_snapshot_schedule")] = "[]"  # someone else wrote
    assert option.get() == OTHER
    clock.now += 1
    assert option.get() == "[]"


def test_a_refused_write_forgets_the_last_write() -> None:
    """A write that fails leaves ``get`` on the cache: never a value the mon did not take."""
    mgr = MgrOptions({("rbd_snapsched", "mirror_snapshot_schedule")}, raises=False)
    option = ModuleOption(mgr, "rbd_snapsched", "mirror_snapshot_schedule", Clock())
    option.set(SCHEDULE)
    mgr.known.clear()  # the mon now refuses it (only logged, as on Pacific)
    with pytest.raises(StorageError):
        option.set(OTHER)
    assert option.get() == SCHEDULE
