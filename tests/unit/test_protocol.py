"""The protocol layer alone: HTTP/1.1 through a fake transport, with no interface above it.

The exchange here is a stub written against the contract of
http/exchange.py (it answers with the request it got), and the settings are
an `HttpSettings`: no app, no ASGI or WSGI adapter, no Config.  What the
interfaces add is tested in test_interfaces.py; the real server in
tests/integration/.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from prefork import compiled
from prefork.config import Config
from prefork.http.connection import HttpConnection
from prefork.http.exchange import Exchange
from prefork.http.response import STATUS_LINES
from prefork.http.server import ServerState
from prefork.http.settings import HttpSettings
from prefork.http.upgrade import Switch
from prefork.worker.compose import http_settings
from tests.protocol_harness import FakeTransport, Outcome, run_state

if compiled.MODE == compiled.COMPILED:
    # The stub exchange below is a Python subclass of Exchange, which the
    # compiled build forbids: a compiled class that allows Python subclasses
    # leaks a reference to each constructor argument (mypyc 2.4.1), a header
    # list per request for Exchange.  tests/integration/test_hot_path.py runs
    # this file on the sources; test_interfaces.py covers the compiled layer.
    pytest.skip("needs a Python subclass of the compiled Exchange", allow_module_level=True)

# The defaults of docs/settings.md, written out: this layer reads no Config.
SETTINGS = HttpSettings(
    keep_alive=5.0,
    header_timeout=10.0,
    body_timeout=30.0,
    send_timeout=30.0,
    request_timeout=0.0,
    limit_request_line=4094,
    limit_request_fields=100,
    limit_request_field_size=8190,
    limit_request_headers=65536,
    limit_request_body=0,
    limit_concurrency=0,
    server_header=True,
    forwarded_allow_ips=("127.0.0.1", "::1", "unix"),
    proxy_protocol=False,
    request_id=False,
)


GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"

# (name, request bytes, expected statuses, connection closed afterwards)
REJECTIONS = [
    ("no host", b"GET / HTTP/1.1\r\n\r\n", [400]),
    ("two hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", [400]),
    ("bad host chars", b'GET / HTTP/1.1\r\nHost: a b"c\r\n\r\n', [400]),
    ("http/2.0", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", [505]),
    ("http/1.2", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", [505]),
    ("http/0.9", b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", [505]),
    (
        "cl and te",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        [400],
    ),
    (
        "dup cl",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        [400],
    ),
    ("cl sign", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", [400]),
    ("cl list", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", [400]),
    ("te gzip", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc", [400]),
    (
        "te unknown then chunked",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo, chunked\r\n\r\n0\r\n\r\n",
        [501],
    ),
    (
        "te split headers",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        [501],
    ),
    ("te on http/1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", [400]),
    (
        "chunk size 0x",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
        [400],
    ),
    (
        "chunk missing crlf",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n",
        [400],
    ),
    ("obs fold", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", [400]),
    ("space before colon", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", [400]),
    ("nul in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", [400]),
    ("bare lf", b"GET / HTTP/1.1\nHost: a\n\n", [400]),
    ("fragment", b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", [400]),
    ("relative target", b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", [400]),
    ("star not options", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", [400]),
    ("connect", b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", [400]),
    ("bad method", b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", [400]),
    ("unknown method", b"FROB / HTTP/1.1\r\nHost: a\r\n\r\n", [501]),
    ("tls hello", bytes.fromhex("160301020001000200") + b"\x03\x03" + bytes(40), [400]),
    ("long target", b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", [414]),
    ("too many fields", b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * 101 + b"\r\n", [431]),
    ("field too large", b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"y" * 9000 + b"\r\n\r\n", [431]),
]


class EchoExchange(Exchange):
    """Answers `METHOD target body` once the whole body is in; records itself in the adapter."""

    streams_body = False

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.body = bytearray()

    def start(self) -> None:
        conn = self.conn
        conn.state.adapter.append(self)
        payload = self.method + b" " + self.target + b" " + bytes(self.body)
        self.status = 200
        head = STATUS_LINES[200] + conn.state.clock.default_headers
        head += b"content-length: %d\r\n" % len(payload)
        if not self.keep_alive or conn.state.draining:
            self.keep_alive = False
            head += b"connection: close\r\n"
        conn.transport.write(head + b"\r\n" + payload)
        conn.exchange_done(self)

    def feed_body(self, data: bytes) -> None:
        self.body += data

    def body_done(self) -> None:
        pass

    def disconnected(self) -> None:
        pass

    def time_out(self, age: float) -> None:
        self.answer_timeout(age, response_begun=False)


def run(
    data: bytes | list[bytes],
    *,
    upgrade: Any = None,
    started: list[EchoExchange] | None = None,
    **settings: Any,
) -> Outcome:
    def server_state() -> ServerState:
        state = ServerState(
            dataclasses.replace(SETTINGS, **settings),
            asyncio.get_running_loop(),
            EchoExchange,
            started if started is not None else [],
        )
        state.upgrade = upgrade
        return state

    return run_state(server_state, data)


def test_the_written_out_defaults_are_the_configs() -> None:
    assert http_settings(Config(app="app:x")) == SETTINGS


class FaultyExchange(EchoExchange):
    """An exchange class with a bug: it cannot be built."""

    def __init__(self, *args: Any) -> None:
        raise RuntimeError("a bug in the exchange")


def test_a_fault_of_ours_in_a_parser_callback_is_a_logged_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def server_state() -> ServerState:
        return ServerState(SETTINGS, asyncio.get_running_loop(), FaultyExchange, [])

    out = run_state(server_state, GET)
    assert out.statuses == [500]
    assert out.closed
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.getMessage() == "Internal error while reading a request"
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "a bug in the exchange"


def test_a_request_is_answered_and_the_connection_kept() -> None:
    out = run(GET)
    assert out.statuses == [200]
    assert out.responses[0].body == b"GET / "
    assert not out.closed
    assert out.responses[0].header(b"server") == b"prefork"


def test_settings_reach_the_connection() -> None:
    out = run(GET, keep_alive=0, server_header=False)
    assert out.responses[0].header(b"server") is None
    assert out.responses[0].connection_tokens == {b"close"}
    assert out.closed


def test_pipelined_requests_are_answered_in_order_with_their_bodies() -> None:
    post = b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
    chunked = (
        b"PUT /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"
    )
    started: list[EchoExchange] = []
    out = run([GET + post, chunked], started=started)
    assert [r.body for r in out.responses] == [b"GET / ", b"POST /p hello", b"PUT /c ab"]
    assert [e.method for e in started] == [b"GET", b"POST", b"PUT"]


@pytest.mark.parametrize(
    ("name", "request_bytes", "statuses"), REJECTIONS, ids=[r[0] for r in REJECTIONS]
)
def test_rejections_answer_and_close(name: str, request_bytes: bytes, statuses: list[int]) -> None:
    out = run(request_bytes)
    assert out.statuses == statuses
    assert out.closed


@pytest.mark.parametrize(
    ("setting", "request_bytes", "status"),
    [
        ({"limit_request_line": 100}, b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        ({"limit_request_fields": 2}, b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", 431),
        (
            {"limit_request_body": 4},
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
            413,
        ),
        ({"limit_request_headers": 64}, b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"y" * 80, 431),
    ],
)
def test_limits_come_from_the_settings(
    setting: dict[str, Any], request_bytes: bytes, status: int
) -> None:
    assert run(request_bytes).statuses != [status]
    out = run(request_bytes, **setting)
    assert out.statuses == [status]
    assert out.closed


UPGRADE = b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n"


def test_an_upgrade_hook_takes_the_transport_and_the_bytes_after_the_head() -> None:
    taken: list[tuple[Any, bytes]] = []

    def hook(conn: Any, method: bytes, target: bytes, version: str, headers: Any) -> Switch:
        assert (method, target, version) == (b"GET", b"/chat", "1.1")
        return lambda transport, rest: taken.append((transport, rest))

    out = run(UPGRADE + b"first frame", upgrade=hook)
    assert out.raw == b""  # the new protocol answers, not HTTP
    assert len(taken) == 1
    assert taken[0][1] == b"first frame"


def test_an_upgrade_the_hook_declines_is_served_as_http() -> None:
    # RFC 9110 7.8: a server may ignore Upgrade; the next request still parses.
    out = run(UPGRADE + GET, upgrade=lambda *request: None)
    assert out.statuses == [200, 200]
    assert [r.body for r in out.responses] == [b"GET /chat ", b"GET / "]


def test_without_a_hook_an_upgrade_request_is_ordinary_http() -> None:
    assert run(UPGRADE + GET).statuses == [200, 200]


def test_the_sweep_times_out_an_unfinished_head() -> None:
    async def main() -> tuple[bytes, bool]:
        state = ServerState(SETTINGS, asyncio.get_running_loop(), EchoExchange, [])
        conn = HttpConnection(state)
        transport = FakeTransport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        conn.data_received(b"GET / HTTP/1.1\r\nHost: a\r\n")
        conn.read_deadline = 0.0  # as if header_timeout had passed
        state.sweep()
        return bytes(transport.written), transport.closed

    written, closed = asyncio.run(main())
    assert written.startswith(b"HTTP/1.1 408 ")
    assert closed


class ReleaseTwo:
    """A connection table row that finds this worker 2 connections over its share."""

    def excess(self, releasing: int) -> int:
        assert releasing == 1  # the one already closing counts against the excess
        return 2


def test_rebalancing_releases_only_kept_alive_connections() -> None:
    async def main() -> tuple[bool, int]:
        state = ServerState(SETTINGS, asyncio.get_running_loop(), EchoExchange, [])
        closing, *kept = conns = [HttpConnection(state) for _ in range(4)]
        for conn in conns:
            conn.keep_alive = conn in kept
        state.connections = set(conns)
        state.rebalance(ReleaseTwo())  # type: ignore[arg-type]
        return closing.keep_alive, sum(conn.keep_alive for conn in kept)

    # The closing one counts as released; two of the three kept-alive ones follow.
    assert asyncio.run(main()) == (False, 1)
