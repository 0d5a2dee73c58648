"""PROXY protocol through a real server: raw sockets, both interfaces.

With --proxy-protocol the header's client address replaces the peer's in
the ASGI scope, the WSGI environ and the access log; a missing or malformed
header gets 400 and a close (a binary v2 one just the close), a header from
an untrusted peer 403.  The parser itself: tests/unit/test_proxy_protocol.py.
"""

from __future__ import annotations

import contextlib
import json
import socket
from typing import Any, Final

import pytest

from tests.server import Server, SharedServers
from tests.unit.test_proxy_protocol import (
    TCP4,
    TCP6,
    TLV,
    UNSPEC,
    V2_LOCAL,
    V2_PROXY,
    inet4,
    inet6,
    v2,
)

IO_TIMEOUT: Final = 15.0

APPS: Final = {
    "inline": ("tests.apps.proxy_app:wsgi_app",),
    "threads": ("tests.apps.proxy_app:wsgi_app", "--threads", "2"),
    "asgi": ("tests.apps.proxy_app:asgi_app",),
}
TRUST: Final = {"default": (), "elsewhere": ("--forwarded-allow-ips", "10.0.0.0/8")}
COMMON: Final = (
    "--proxy-protocol",
    "-w",
    "1",
    "--graceful-timeout",
    "1",
    "--access-logfile",
    "/dev/stderr",
)


def server_for(shared_server: SharedServers, mode: str, trust: str = "default") -> Server:
    return shared_server(*APPS[mode], *TRUST[trust], *COMMON)


def request(path: str, *, close: bool = False, extra: str = "") -> bytes:
    connection = "Connection: close\r\n" if close else ""
    return f"GET {path} HTTP/1.1\r\nHost: app.test\r\n{extra}{connection}\r\n".encode()


def talk(server: Server, *pieces: bytes) -> bytes:
    """Send each piece in its own write; everything the server sent until it closed."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=IO_TIMEOUT) as sock:
        for piece in pieces:
            sock.sendall(piece)
        received = bytearray()
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    return bytes(received)


def views(raw: bytes) -> list[dict[str, Any]]:
    """The JSON bodies of the 200 responses in `raw` (each with a Content-Length)."""
    found = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), raw[:200]
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        found.append(json.loads(rest[:length]))
        raw = rest[length:]
    return found


HEADERS: Final = {
    "v1-tcp4": (b"PROXY TCP4 203.0.113.7 10.0.0.1 56324 80\r\n", ["203.0.113.7", 56324]),
    "v1-tcp6": (b"PROXY TCP6 2001:db8::1 2001:db8::2 4711 443\r\n", ["2001:db8::1", 4711]),
    "v2-inet": (v2(V2_PROXY, TCP4, inet4("203.0.113.7", 56324), TLV), ["203.0.113.7", 56324]),
    "v2-inet6": (v2(V2_PROXY, TCP6, inet6("2001:db8::1", 4711)), ["2001:db8::1", 4711]),
}


@pytest.mark.parametrize("mode", list(APPS))
@pytest.mark.parametrize("kind", list(HEADERS))
def test_client_from_header(shared_server: SharedServers, mode: str, kind: str) -> None:
    server = server_for(shared_server, mode)
    header, client = HEADERS[kind]
    start = len(server.lines)
    # The header split over two writes, and a second request on the same connection.
    raw = talk(server, header[:9], header[9:] + request("/first"), request("/second", close=True))
    first, second = views(raw)
    assert first["client"] == client
    assert second["client"] == client
    server.wait_for_log(rf'^{client[0]} - - \[.*"GET /second HTTP/1\.1" 200', start=start)


@pytest.mark.parametrize("mode", ["inline", "asgi"])
@pytest.mark.parametrize(
    "header", [b"PROXY UNKNOWN\r\n", v2(V2_LOCAL, UNSPEC, b"")], ids=["v1-unknown", "v2-local"]
)
def test_no_address_keeps_the_peer(shared_server: SharedServers, mode: str, header: bytes) -> None:
    (view,) = views(talk(server_for(shared_server, mode), header + request("/", close=True)))
    assert view["client"][0] == "127.0.0.1"


@pytest.mark.parametrize("mode", ["inline", "asgi"])
def test_forwarding_headers_trusted_as_the_header_client(
    shared_server: SharedServers, mode: str
) -> None:
    server = server_for(shared_server, mode)
    xff = "X-Forwarded-For: 198.51.100.9\r\n"
    # A local proxy (trusted) behind the balancer: its X-Forwarded-For counts.
    local = b"PROXY TCP4 127.0.0.1 10.0.0.1 40000 80\r\n"
    (via_local,) = views(talk(server, local + request("/", close=True, extra=xff)))
    assert via_local["client"] == ["198.51.100.9", 0]
    # A client on the internet: its X-Forwarded-For is not believed.
    remote = b"PROXY TCP4 203.0.113.7 10.0.0.1 40000 80\r\n"
    (via_remote,) = views(talk(server, remote + request("/", close=True, extra=xff)))
    assert via_remote["client"] == ["203.0.113.7", 40000]


@pytest.mark.parametrize("mode", ["inline", "asgi"])
@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        (request("/", close=True), "missing PROXY protocol header"),
        (b"PROXY TCP4 203.0.113.7 10.0.0.1 1\r\n" + request("/"), "malformed PROXY protocol v1"),
        (b"PROXY TCP4 " + b"9" * 120, "PROXY protocol v1 header too long"),
    ],
    ids=["missing", "malformed-v1", "too-long-v1"],
)
def test_bad_text_header_is_400(
    shared_server: SharedServers, mode: str, sent: bytes, reason: str
) -> None:
    server = server_for(shared_server, mode)
    start = len(server.lines)
    raw = talk(server, sent)
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"connection: close\r\n" in raw
    server.wait_for_log(rf"Rejected request from 127\.0\.0\.1:\d+: 400 {reason}", start=start)


@pytest.mark.parametrize("mode", ["inline", "asgi"])
def test_bad_binary_header_just_closes(shared_server: SharedServers, mode: str) -> None:
    server = server_for(shared_server, mode)
    start = len(server.lines)
    assert talk(server, v2(0x22, TCP4, inet4("203.0.113.7", 1)) + request("/")) == b""
    server.wait_for_log(r"Closed connection from 127\.0\.0\.1:\d+: unsupported PROXY", start=start)


@pytest.mark.parametrize("mode", ["inline", "asgi"])
def test_untrusted_peer_is_refused(shared_server: SharedServers, mode: str) -> None:
    server = server_for(shared_server, mode, "elsewhere")
    header = b"PROXY TCP4 203.0.113.7 10.0.0.1 56324 80\r\n"
    raw = talk(server, header + request("/", close=True))
    assert raw.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    server.wait_for_log(r"Rejected request from 127\.0\.0\.1:\d+: 403 PROXY header from a peer")
