"""Polling until a condition holds, shared by the cluster tests, the benchmarks and the tools.

Standard library only (``tests/cephcluster.py`` and ``tests/twosite.py`` run as scripts).
``wait_until`` fails a test (AssertionError); ``wait_for`` fails a tool step (TimeoutError).
"""

from __future__ import annotations

import time
from collections.abc import Callable


def poll(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> float | None:
    """Call ``check`` every ``interval`` s until it is true: the seconds it took; None if it
    was still false after ``timeout`` s."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            return None
        time.sleep(interval)
    return time.monotonic() - start


def wait_until(pred: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> float:
    """Poll ``pred`` every 0.2 s; fail with ``what`` unless true within ``timeout`` s.

    Returns the seconds it took.
    """
    took = poll(pred, timeout, interval)
    if took is None:
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
    return took


def wait_for(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.2) -> None:
    """Poll ``check`` every ``interval`` s; TimeoutError naming ``what`` unless true within
    ``timeout`` s (the tools' form)."""
    if poll(check, timeout, interval) is None:
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
