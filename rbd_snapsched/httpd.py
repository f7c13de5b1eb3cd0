"""The metrics endpoint: a small HTTP server for Prometheus to scrape.

Standard library only (``http.server``), one daemon thread for the accept loop and one daemon
thread per request. Each ``GET /metrics`` asks ``source()`` for the exposition afresh:

- bytes: 200 with them (gzip-compressed when the scraper accepts it, as Prometheus does);
- None: this mgr is a standby or not ready yet: 503 with the line ``unavailable()`` gives,
  never stale data;
- an exception: 500 with its message, logged.

``GET /`` answers a short index; anything else 404. Request lines go to the given logger at
debug level; nothing is written to stderr.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

from .metrics import CONTENT_TYPE

WILDCARDS: Final = frozenset({"", "0.0.0.0", "::"})
TEXT: Final = "text/plain; charset=utf-8"
POLL_INTERVAL: Final = 0.2  # how fast stop() is noticed by the accept loop (seconds)
REQUEST_TIMEOUT: Final = 30.0  # an idle or slow client's connection is dropped after this
GZIP_MIN: Final = 4096  # smaller bodies are sent as they are
# Errors binding "::" that mean "no IPv6 here", so "0.0.0.0" is tried instead.
NO_IPV6: Final = frozenset({errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT})


def default_unavailable() -> str:
    return "this mgr is not the active one, or the module is not ready yet"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], family: socket.AddressFamily, owner: MetricsServer
    ):
        self.address_family = family
        self.owner = owner
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6 and self.server_address[0] == "::":
            with contextlib.suppress(OSError, AttributeError):  # serve IPv4 too where allowed
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        # TCPServer's bind (SO_REUSEADDR, so a restart binds past TIME_WAIT); not HTTPServer's,
        # which only adds a reverse lookup of our own name (slow where DNS is missing).
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: object, client_address: object) -> None:
        self.owner.log.debug("metrics: error serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = REQUEST_TIMEOUT
    server_version = "rbd_snapsched"
    sys_version = ""
    error_content_type = TEXT
    error_message_format = "%(code)d %(message)s\n"

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _answer(self, head: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            status, kind, body = self._metrics()
            self._send(status, kind, body, head, compress=status == HTTPStatus.OK)
        elif path == "/":
            self._send(
                HTTPStatus.OK, TEXT, b"rbd_snapsched: Prometheus metrics at /metrics\n", head
            )
        else:
            self._send(HTTPStatus.NOT_FOUND, TEXT, b"not found; metrics are at /metrics\n", head)

    def _metrics(self) -> tuple[HTTPStatus, str, bytes]:
        owner = self.server.owner
        try:
            body = owner.source()
            if body is not None:
                return HTTPStatus.OK, CONTENT_TYPE, body
            line = owner.unavailable()
            status = HTTPStatus.SERVICE_UNAVAILABLE
        except Exception as error:
            owner.log.error("metrics: rendering failed: %s", error, exc_info=True)
            line = f"rendering metrics failed: {error}"
            status = HTTPStatus.INTERNAL_SERVER_ERROR
        return status, TEXT, (" ".join(line.split()) + "\n").encode(errors="replace")

    def _send(
        self, status: HTTPStatus, kind: str, body: bytes, head: bool, compress: bool = False
    ) -> None:
        gzipped = (
            compress
            and len(body) >= GZIP_MIN
            and "gzip" in self.headers.get("Accept-Encoding", "").lower()
        )
        if gzipped:
            body = gzip.compress(body, compresslevel=1)
        self.send_response(status)
        self.send_header("Content-Type", kind)
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        self.server.owner.log.debug("metrics: %s %s", self.address_string(), format % args)


class MetricsServer:
    """Serves ``source()`` at ``/metrics`` on ``addr:port`` from a daemon thread.

    ``addr`` ``"::"`` binds every IPv6 and IPv4 address, or every IPv4 one where IPv6 is
    unavailable; any other address is bound as given. Port 0 takes a free port (see ``port``).
    """

    def __init__(
        self,
        addr: str,
        port: int,
        source: Callable[[], bytes | None],
        log: logging.Logger,
        unavailable: Callable[[], str] = default_unavailable,
    ) -> None:
        self.addr = addr
        self.requested_port = port
        self.source = source
        self.unavailable = unavailable
        self.log = log
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve; OSError if the address cannot be bound (the caller logs it)."""
        if self._server is not None:
            raise RuntimeError("metrics server already started")
        self._server = self._bind()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name="rbd_snapsched-metrics",
            daemon=True,
        )
        self._thread.start()

    def _bind(self) -> _Server:
        addr = self.addr.strip()
        if addr.startswith("[") and addr.endswith("]"):
            addr = addr[1:-1]
        if ":" not in addr:
            return _Server((addr or "0.0.0.0", self.requested_port), socket.AF_INET, self)
        try:
            return _Server((addr, self.requested_port), socket.AF_INET6, self)
        except OSError as error:
            if addr != "::" or error.errno not in NO_IPV6:
                raise
            self.log.info("metrics: cannot bind [::] (%s); binding 0.0.0.0", error)
            return _Server(("0.0.0.0", self.requested_port), socket.AF_INET, self)

    def _bound(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("metrics server not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def port(self) -> int:
        """The port bound (the one taken, when asked for port 0)."""
        return self._bound()[1]

    @property
    def url(self) -> str:
        """``http://HOST:PORT/`` for others to reach: the fqdn when bound to every address."""
        host, port = self._bound()
        if host in WILDCARDS:
            host = socket.getfqdn()
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}/"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close the socket and join the thread. Idempotent."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        if thread is not None and thread.is_alive():
            server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                self.log.warning("metrics: server thread did not stop within %.1fs", timeout)
