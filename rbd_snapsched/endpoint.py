"""The metrics endpoint of one mgr, active or standby: (re)bound to its address and port.

It reads the localized address and port options (``settings.read_endpoint``) whenever asked to
``configure``, binds a ``MetricsServer`` there if they changed, and hands the URL to
``publish`` (the active mgr's ``set_uri``; a standby publishes nothing). No mgr is needed to
use it: the mgr adapter passes its option getter, its log and its publisher in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .httpd import MetricsServer
from .settings import Get, read_endpoint


class Endpoint:
    def __init__(
        self,
        log: logging.Logger,
        get_option: Get,
        publish: Callable[[str], None],
        source: Callable[[], bytes | None],
        unavailable: Callable[[], str],
    ) -> None:
        self._log = log
        self._get_option = get_option
        self._publish = publish
        self._source = source
        self._unavailable = unavailable
        self._server: MetricsServer | None = None
        self._bound: tuple[str, int] | None = None  # listening there (port 0: off)
        self._failed: tuple[str, int] | None = None  # the last bind that failed
        self._closed = False
        self._lock = threading.Lock()

    def configure(self) -> None:
        """Bind to the configured address and port, if they changed; port 0 stops it.

        Never raises: the metrics endpoint failing must not take the scheduler with it."""
        try:
            self._configure()
        except Exception:
            self._log.exception("metrics endpoint: configuring it failed")

    def _configure(self) -> None:
        addr, port = read_endpoint(self._get_option, self._log)
        with self._lock:
            if self._closed or self._bound == (addr, port):
                return
            self._stop_locked()
            if port == 0:
                self._bound = (addr, port)
                return
            server = MetricsServer(
                addr, port, self._source, self._log, unavailable=self._unavailable
            )
            try:
                server.start()
            except OSError as e:
                # Tried again at the next look (an option change; a standby's poll), told once.
                level = logging.DEBUG if self._failed == (addr, port) else logging.ERROR
                self._log.log(level, "metrics endpoint: cannot listen on %s:%s: %s", addr, port, e)
                self._failed = (addr, port)
                return
            self._server, self._bound, self._failed = server, (addr, port), None
            self._log.info("metrics endpoint at %s", server.url)
            self._publish(server.url)

    def stop(self) -> None:
        """Stop for good (the module is shutting down)."""
        with self._lock:
            self._closed = True
            self._stop_locked()

    def _stop_locked(self) -> None:
        server, self._server = self._server, None
        self._bound = None
        if server is not None:
            server.stop()
            self._publish("")  # no stale URL in `ceph mgr services`
