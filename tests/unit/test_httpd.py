"""The metrics endpoint over a real socket on 127.0.0.1: answers, errors, binding, stopping."""

from __future__ import annotations

import errno
import gzip
import http.client
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from rbd_snapsched import httpd
from rbd_snapsched.httpd import MetricsServer

BODY = b"# HELP x y\n# TYPE x gauge\nx 1\n"


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def at(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    log = logging.getLogger("test_httpd")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.addHandler(handler)
    yield handler
    log.removeHandler(handler)


Start = Callable[..., MetricsServer]


@pytest.fixture
def start(records: Records) -> Iterator[Start]:
    servers: list[MetricsServer] = []

    def starter(
        source: Callable[[], bytes | None] = lambda: BODY,
        addr: str = "127.0.0.1",
        **kwargs: Callable[[], str],
    ) -> MetricsServer:
        server = MetricsServer(addr, 0, source, logging.getLogger("test_httpd"), **kwargs)
        server.start()
        servers.append(server)
        return server

    yield starter
    for server in servers:
        server.stop()


def get(
    server: MetricsServer, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()


def test_metrics_answers_the_source_with_the_exposition_content_type(start: Start) -> None:
    server = start()
    status, headers, body = get(server, "/metrics")
    assert (status, body) == (200, BODY)
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert headers["Content-Length"] == str(len(BODY))
    assert get(server, "/metrics?format=text")[2] == BODY
    status, headers, body = get(server, "/metrics", method="HEAD")
    assert (status, body, headers["Content-Length"]) == (200, b"", str(len(BODY)))


def test_each_scrape_asks_the_source_afresh(start: Start) -> None:
    calls: list[int] = []

    def source() -> bytes:
        calls.append(1)
        return f"n {len(calls)}\n".encode()

    server = start(source)
    assert [get(server, "/metrics")[2] for _ in range(3)] == [b"n 1\n", b"n 2\n", b"n 3\n"]


def test_large_bodies_are_gzipped_for_scrapers_that_accept_it(start: Start) -> None:
    big = b"".join(b'm{image="p/img%07d"} 1.0\n' % i for i in range(1000))
    server = start(lambda: big)
    status, headers, body = get(server, "/metrics", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == big and len(body) < len(big) // 5
    status, headers, body = get(server, "/metrics")
    assert "Content-Encoding" not in headers and body == big
    small = get(server, "/", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small[1]


def test_standby_answers_503_with_one_line_and_no_data(start: Start) -> None:
    server = start(lambda: None, unavailable=lambda: "mgr x is a standby;\nactive at http://a/")
    status, headers, body = get(server, "/metrics")
    assert status == 503
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body == b"mgr x is a standby; active at http://a/\n"


def test_standby_has_a_default_reason(start: Start) -> None:
    status, _, body = get(start(lambda: None), "/metrics")
    assert status == 503 and body.count(b"\n") == 1 and b"not the active" in body


def test_index_and_unknown_paths(start: Start) -> None:
    server = start()
    status, headers, body = get(server, "/")
    assert status == 200 and b"/metrics" in body
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    for path in ("/nope", "/metrics/", "/metricsx", "/favicon.ico"):
        assert get(server, path)[0] == 404, path
    assert get(server, "/metrics", method="POST")[0] == 501


def test_a_failing_source_answers_500_and_is_logged(start: Start, records: Records) -> None:
    def source() -> bytes:
        raise ValueError("3 latency bounds but 2 bucket counts")

    status, _, body = get(start(source), "/metrics")
    assert status == 500
    assert body == b"rendering metrics failed: 3 latency bounds but 2 bucket counts\n"
    (logged,) = records.at(logging.ERROR)
    assert "3 latency bounds" in logged
    assert next(r.exc_info for r in records.records if r.levelno == logging.ERROR) is not None


def test_requests_are_logged_at_debug_and_nothing_goes_to_stderr(
    start: Start, records: Records, capfd: pytest.CaptureFixture[str]
) -> None:
    server = start()
    get(server, "/metrics")
    get(server, "/nope")
    conn = socket.create_connection(("127.0.0.1", server.port))
    conn.sendall(b"GARBAGE\r\n\r\n")  # a bad request: the base class would print it
    conn.recv(1000)
    conn.close()
    server.stop()
    debug = records.at(logging.DEBUG)
    assert any('"GET /metrics HTTP/1.1" 200' in line for line in debug), debug
    assert any('"GET /nope HTTP/1.1" 404' in line for line in debug), debug
    assert any("400" in line for line in debug), debug
    assert records.at(logging.WARNING) == [] and records.at(logging.ERROR) == []
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_a_slow_scrape_does_not_hold_up_others(start: Start) -> None:
    release = threading.Event()

    def source() -> bytes:
        release.wait(10)
        return BODY

    server = start(source)
    slow = threading.Thread(target=get, args=(server, "/metrics"))
    slow.start()
    try:
        assert get(server, "/")[0] == 200
    finally:
        release.set()
        slow.join(10)


def test_stop_is_prompt_even_with_an_idle_client_and_frees_the_port(start: Start) -> None:
    server = start()
    port = server.port
    assert server.running
    idle = socket.create_connection(("127.0.0.1", port))  # connected, sends nothing
    try:
        began = time.monotonic()
        server.stop()
        assert time.monotonic() - began < 1.0
    finally:
        idle.close()
    assert not server.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    server.stop()  # again: nothing to do
    with pytest.raises(RuntimeError):
        _ = server.url


def test_a_restart_binds_the_same_port_at_once(start: Start) -> None:
    first = start()
    port = first.port
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    while client.recv(4096):  # until the server closes: the TIME_WAIT is on its side
        pass
    time.sleep(0.05)
    client.close()
    first.stop()
    again = MetricsServer("127.0.0.1", port, lambda: BODY, logging.getLogger("test_httpd"))
    again.start()
    try:
        assert again.port == port and get(again, "/metrics")[2] == BODY
    finally:
        again.stop()


def test_binding_a_taken_port_raises_oserror(records: Records) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = MetricsServer("127.0.0.1", port, lambda: BODY, logging.getLogger("test_httpd"))
        with pytest.raises(OSError) as caught:
            server.start()
        assert caught.value.errno == errno.EADDRINUSE
        assert not server.running


def test_start_twice_is_an_error(start: Start) -> None:
    with pytest.raises(RuntimeError):
        start().start()


def test_url_names_the_address_bound(start: Start) -> None:
    server = start()
    assert server.url == f"http://127.0.0.1:{server.port}/"


def test_url_of_a_wildcard_bind_is_the_fqdn(start: Start) -> None:
    for addr in ("0.0.0.0", "::"):
        server = start(addr=addr)
        assert server.url == f"http://{socket.getfqdn()}:{server.port}/"
        assert get(server, "/metrics")[2] == BODY  # "::" serves IPv4 too


def test_url_brackets_an_ipv6_address(start: Start) -> None:
    server = start(addr="::1")
    assert server.url == f"http://[::1]:{server.port}/"
    conn = http.client.HTTPConnection("::1", server.port, timeout=10)
    conn.request("GET", "/metrics")
    assert conn.getresponse().read() == BODY
    conn.close()
    assert start(addr="[::1]").url.startswith("http://[::1]:")


def test_any_address_falls_back_to_ipv4_without_ipv6(
    start: Start, monkeypatch: pytest.MonkeyPatch, records: Records
) -> None:
    class NoIPv6(httpd._Server):
        def __init__(
            self, address: tuple[str, int], family: socket.AddressFamily, owner: MetricsServer
        ) -> None:
            if family == socket.AF_INET6:
                raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
            super().__init__(address, family, owner)

    monkeypatch.setattr(httpd, "_Server", NoIPv6)
    server = start(addr="::")
    assert get(server, "/metrics")[2] == BODY
    assert any("0.0.0.0" in line for line in records.at(logging.INFO))
    with pytest.raises(OSError):
        start(addr="::1")  # a given IPv6 address has no fallback
