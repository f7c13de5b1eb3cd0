"""The librbd driver where no librbd call is reached: a pool that is gone by the time a queued
request opens its ioctx."""

from __future__ import annotations

import logging
import threading
from typing import cast

import pytest
import rados

from rbd_snapsched.levels import ImageSpec
from rbd_snapsched.rbd_driver import RbdDriver
from rbd_snapsched.requests import Outcome, OutcomeKind

LOG = logging.getLogger("test_rbd_driver")


class PoolGoneClient:
    """A ``rados.Rados`` whose pools were all deleted."""

    def open_ioctx2(self, pool_id: int) -> rados.Ioctx:
        raise rados.ObjectNotFound(f"error opening pool id '{pool_id}'")


def test_a_request_whose_pool_is_gone_ends_quietly_as_vanished(
    caplog: pytest.LogCaptureFixture,
) -> None:
    driver = RbdDriver(cast(rados.Rados, PoolGoneClient()), LOG)
    ended: list[Outcome] = []
    done = threading.Event()

    def finished(image: ImageSpec, outcome: Outcome) -> None:
        ended.append(outcome)
        done.set()

    try:
        with caplog.at_level(logging.INFO):
            driver.start(ImageSpec(3, "", "abc"), "p/img", finished)
            assert done.wait(10), "the request never finished"
    finally:
        driver.close()
    (outcome,) = ended
    assert outcome.kind is OutcomeKind.VANISHED and outcome.rc == -2
    assert not [r for r in caplog.records if r.levelno >= logging.INFO], caplog.text
    assert driver.open_handles() == 0 and driver.open_images() == 0
