"""The unit harness: the Handler on a fake cluster with an injected clock (see tests/README.md).

Feature tests (test_catch_up, test_stagger, …) build a `Setup` and drive it with `run_until`.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timezone

from rbd_snapsched.handler import Handler
from rbd_snapsched.levels import ImageSpec
from rbd_snapsched.pauses import PauseStore
from rbd_snapsched.requests import OutcomeKind
from rbd_snapsched.settings import Settings
from rbd_snapsched.store import SCHEDULE_OID, UPSTREAM_SCHEDULE_OID, ScheduleStore
from tests.fake_cluster import FakeClock, FakeCluster, FakeDriver, FakeOmap, FakeOption

START = datetime(2025, 12, 10, 17, 55, 21, tzinfo=timezone.utc)
LOG = logging.getLogger("test_handler")


class Setup:
    def __init__(
        self, *, hold: bool = False, max_concurrent: int = 10, snap_create_timeout: float = 3600
    ) -> None:
        self.cluster = FakeCluster()
        self.pool = self.cluster.add_pool("rbd")
        self.cluster.add_namespace(self.pool, "ns")
        self.clock = FakeClock(START)
        self.cluster.rbd.now = self.clock.now
        self.driver = FakeDriver(self.cluster, hold=hold)
        self.store = ScheduleStore(
            FakeOmap(self.cluster, SCHEDULE_OID), FakeOption(), self.cluster, LOG
        )
        # rbd_support's storage, which the handler reads but never prunes
        self.upstream_option = FakeOption()
        self.upstream = ScheduleStore(
            FakeOmap(self.cluster, UPSTREAM_SCHEDULE_OID),
            self.upstream_option,
            self.cluster,
            LOG,
            prune=False,
        )
        self.pause_option = FakeOption()  # our paused levels (pauses.PauseStore)
        self.snap_create_timeout = snap_create_timeout  # above a slot: held ones stay running
        self.handler = self.make_handler(max_concurrent)

    def make_handler(self, max_concurrent: int = 10) -> Handler:
        return Handler(
            io=self.cluster,
            resolver=self.cluster,
            store=self.store,
            driver=self.driver,
            clock=self.clock,
            log=LOG,
            upstream=self.upstream,
            pauses=PauseStore(self.pause_option, self.cluster, LOG),
            settings=Settings(
                max_concurrent=max_concurrent, snap_create_timeout=self.snap_create_timeout
            ),
        )

    def add(self, level: str, interval: str, start: str | None = None) -> None:
        self.handler.add_schedule(self.handler.resolve(level), interval, start)

    def remove(self, level: str, interval: str | None = None, start: str | None = None) -> None:
        self.handler.remove_schedule(self.handler.resolve(level), interval, start)

    def status(self, level: str = "") -> list[tuple[str, str]]:
        result = self.handler.status(self.handler.resolve(level), lambda image: True)
        return [(e["schedule_time"], e["image"]) for e in result["scheduled_images"]]

    def run_until(self, when: datetime) -> None:
        """Run the scheduler thread's passes, jumping the clock from deadline to deadline."""
        while True:
            deadline = self.handler.tick()
            if deadline is None or deadline > when:
                break
            self.clock.set(max(deadline, self.clock.now()))
        self.clock.set(when)
        self.handler.tick()

    def created(self) -> Counter[ImageSpec]:
        return Counter(i for i, o in self.driver.outcomes if o.kind is OutcomeKind.CREATED)
