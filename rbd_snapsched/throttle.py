"""The concurrency cap on snapshot requests (``max_concurrent_snap_create``)."""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Container, Iterable

from rbd_snapsched.levels import ImageSpec

# An image is *pending* from admit() until finish(): either *running* (it holds one of the `limit`
# slots) or *waiting* (FIFO, for a slot). Invariants between calls:
#   - running and waiting are disjoint; pending = running + waiting, each image at most once;
#   - waiting is held twice, in FIFO order (a deque) and as a set (membership): the two hold
#     the same images. Not an OrderedDict: its insertion costs three times a deque's and a
#     set's together, and every image of a slot beyond the cap waits (once per image per slot);
#   - if anything waits, running >= limit (running can exceed limit only after set_limit lowered
#     it: running requests are never stopped, they just aren't replaced until below the limit).
# Not thread-safe: the caller holds its lock around every call and starts, outside the lock, the
# images that admit/finish/set_limit tell it to start.


class Admission(enum.Enum):
    """What admit() decided."""

    START = "start"
    WAIT = "wait"
    ALREADY_PENDING = "already pending"


class Throttle:
    """At most ``limit`` images running at once; the rest wait in FIFO order."""

    __slots__ = ("_limit", "_queue", "_running", "_waiting")

    def __init__(self, limit: int) -> None:
        _check_limit(limit)
        self._limit = limit
        self._running: set[ImageSpec] = set()
        self._waiting: set[ImageSpec] = set()
        self._queue: deque[ImageSpec] = deque()  # the waiting images, in FIFO order

    def __repr__(self) -> str:
        return (
            f"<Throttle limit={self._limit} running={len(self._running)}"
            f" waiting={len(self._waiting)}>"
        )

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def pending(self) -> int:
        return len(self._running) + len(self._waiting)

    @property
    def idle(self) -> bool:
        """True when nothing is running or waiting."""
        return not self._running and not self._waiting

    def is_pending(self, image: ImageSpec) -> bool:
        return image in self._running or image in self._waiting

    def admit(self, image: ImageSpec) -> Admission:
        """Take ``image`` in: START it now, make it WAIT, or refuse it as ALREADY_PENDING."""
        return self.admit_many((image,))[0]

    def admit_many(
        self, images: Iterable[ImageSpec], busy: Container[ImageSpec] = ()
    ) -> list[Admission]:
        """``admit`` each of ``images`` in order (a slot's batch: one call, not one per image);
        an image in ``busy`` (in flight elsewhere) is refused as ALREADY_PENDING, untaken."""
        running, waiting, limit = self._running, self._waiting, self._limit
        start, wait, pending = Admission.START, Admission.WAIT, Admission.ALREADY_PENDING
        admissions: list[Admission] = []
        add, queue = admissions.append, self._queue.append
        for image in images:
            if image in running or image in waiting or image in busy:
                add(pending)
            elif len(running) < limit:
                running.add(image)
                add(start)
            else:
                waiting.add(image)
                queue(image)
                add(wait)
        return admissions

    def finish(self, image: ImageSpec) -> ImageSpec | None:
        """Release ``image``; return the waiting image that now starts, if any.

        Never raises, so a caller's clean-up path cannot get stuck: finishing an image that is
        not pending does nothing and returns None; finishing a waiting image (giving up on it
        before it started) drops it from the wait list and returns None.
        """
        running, waiting = self._running, self._waiting
        try:
            running.remove(image)  # a running image is the usual case: one lookup for it
        except KeyError:
            if image in waiting:  # given up before it started: rare, O(waiting)
                waiting.remove(image)
                self._queue.remove(image)
            return None
        if waiting and len(running) < self._limit:
            started = self._queue.popleft()
            waiting.remove(started)
            running.add(started)
            return started
        return None

    def set_limit(self, limit: int) -> list[ImageSpec]:
        """Change the cap (ValueError below 1); return the waiting images that now start."""
        _check_limit(limit)
        self._limit = limit
        started: list[ImageSpec] = []
        while self._waiting and len(self._running) < limit:
            image = self._queue.popleft()
            self._waiting.remove(image)
            self._running.add(image)
            started.append(image)
        return started

    def drain_waiting(self) -> list[ImageSpec]:
        """Give up on every waiting image (shutdown); return them in FIFO order."""
        dropped = list(self._queue)
        self._queue.clear()
        self._waiting.clear()
        return dropped


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"concurrency limit must be an integer >= 1, got {limit!r}")
