"""The contract every ``store.OptionBackend`` keeps: what the global level's record relies on."""

from __future__ import annotations

from rbd_snapsched.store import OptionBackend

SCHEDULE = '[{"interval": "1h", "start_time": null}]'


def check_option_backend(option: OptionBackend) -> None:
    # Never set: None (not "": a stored "" means cleared, and reads the same).
    assert option.get() is None
    option.set(SCHEDULE)
    assert option.get() == SCHEDULE
    option.set('[{"interval": "1d", "start_time": "14:00:00"}]')  # overwrite
    assert option.get() == '[{"interval": "1d", "start_time": "14:00:00"}]'
    option.set(None)  # cleared: the store's "no global schedule"
    assert option.get() is None
    option.set(SCHEDULE)
    option.set("")  # an empty value is a cleared one
    assert option.get() is None
