"""The contract every ``store.OptionBackend`` keeps: what the global level's record relies on."""

from __future__ import annotations

from rbd_snapsched.errors import StorageError
from rbd_snapsched.store import OptionBackend

SCHEDULE = '[{"interval": "1h", "start_time": null}]'
OTHER = '[{"interval": "1d", "start_time": "14:00:00"}]'


def check_option_backend(option: OptionBackend) -> None:
    # Never set: None (not "": a stored "" means cleared, and reads the same).
    assert (got := option.get()) is None, got
    option.set(SCHEDULE)
    assert (got := option.get()) == SCHEDULE, got
    option.set(OTHER)  # overwrite
    assert (got := option.get()) == OTHER, got
    option.set(None)  # cleared: the store's "no global schedule"
    assert (got := option.get()) is None, got
    option.set(SCHEDULE)
    option.set("")  # an empty value is a cleared one
    assert (got := option.get()) is None, got


def check_refused_write(option: OptionBackend) -> None:
    """A backend whose store refuses the write: ``set`` raises ``StorageError`` (a command
    answers EIO) and the value reads as before: never a change reported but not stored."""
    before = option.get()
    try:
        option.set(SCHEDULE)
    except StorageError:
        pass
    else:
        raise AssertionError("a refused write raised nothing")
    assert (got := option.get()) == before, got
