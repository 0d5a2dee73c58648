"""Response framing decided by status and method, through a real server in every mode.

A 1xx, 204 or 304 response ends at its blank line, and so does the answer to
a HEAD (RFC 9110 6.4.1): any byte after it is read by the client as the
next response.  Each test sends such a request and then `GET /fixed` on the
same keep-alive connection, and checks the bytes after the first head are
exactly the second response.
"""

from __future__ import annotations

import socket
from typing import Final

import pytest

from tests.server import Server, SharedServers

IO_TIMEOUT: Final = 15.0
WSGI_APP: Final = "tests.apps.framing_app:wsgi_app"
MODES: Final = {
    "inline": (WSGI_APP,),
    "threads": (WSGI_APP, "--threads", "4"),
    "asgi": ("tests.apps.framing_app:asgi_app",),
}
ALL_MODES: Final = list(MODES)
SECOND: Final = b"GET /fixed HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
SECOND_RESPONSE_END: Final = b"\r\n\r\nhello"


def framing_server(shared_server: SharedServers, mode: str) -> Server:
    return shared_server(*MODES[mode], "-w", "1", "--log-level", "debug", "--graceful-timeout", "1")


def two_responses(server: Server, method: str, target: str) -> tuple[dict[str, str], bytes]:
    """The first response's header fields, and every byte the server sent after its head."""
    first = f"{method} {target} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(first + SECOND)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    head, blank, rest = bytes(received).partition(b"\r\n\r\n")
    assert blank, f"no complete response head in {bytes(received)!r}"
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        fields[name.strip().lower()] = value.strip()
    return fields, rest


def assert_next_is_second_response(rest: bytes) -> None:
    assert rest.startswith(b"HTTP/1.1 200 "), f"bytes before the next response: {rest[:40]!r}"
    assert rest.endswith(SECOND_RESPONSE_END)


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("code", [204, 304])
@pytest.mark.parametrize("pieces", [0, 1, 3])
def test_bodyless_status_ends_at_its_head(
    shared_server: SharedServers, mode: str, code: int, pieces: int
) -> None:
    fields, rest = two_responses(
        framing_server(shared_server, mode), "GET", f"/status?code={code}&pieces={pieces}"
    )
    assert "transfer-encoding" not in fields
    assert "content-length" not in fields  # RFC 9110 8.6: never in a 204; not invented for a 304
    assert_next_is_second_response(rest)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_content_length_removed_from_204_kept_on_304(
    shared_server: SharedServers, mode: str
) -> None:
    server = framing_server(shared_server, mode)
    fields, rest = two_responses(server, "GET", "/status?code=204&pieces=1&length=1")
    assert "content-length" not in fields
    assert_next_is_second_response(rest)
    # RFC 9110 8.6: a 304 may carry the length of the representation it validates.
    fields, rest = two_responses(server, "GET", "/status?code=304&length=1234")
    assert fields["content-length"] == "1234"
    assert_next_is_second_response(rest)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_dropped_body_logged_at_debug(shared_server: SharedServers, mode: str) -> None:
    server = framing_server(shared_server, mode)
    start = len(server.lines)
    _, rest = two_responses(server, "GET", "/status?code=204&pieces=2")
    assert_next_is_second_response(rest)
    server.wait_for_log(
        r"DEBUG.*Dropped the body of a 204 response to GET /status\?code=204", start=start
    )


@pytest.mark.parametrize("mode", ALL_MODES)
def test_head_without_app_length_gets_none(shared_server: SharedServers, mode: str) -> None:
    fields, rest = two_responses(framing_server(shared_server, mode), "HEAD", "/empty")
    assert "content-length" not in fields  # not an invented 0: the GET's length is unknown
    assert "transfer-encoding" not in fields
    assert_next_is_second_response(rest)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_head_keeps_app_length(shared_server: SharedServers, mode: str) -> None:
    fields, rest = two_responses(framing_server(shared_server, mode), "HEAD", "/fixed")
    assert fields["content-length"] == "5"
    assert_next_is_second_response(rest)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_head_of_streamed_body_is_not_chunked(shared_server: SharedServers, mode: str) -> None:
    fields, rest = two_responses(
        framing_server(shared_server, mode), "HEAD", "/status?code=200&pieces=3"
    )
    assert "transfer-encoding" not in fields
    assert "content-length" not in fields
    assert_next_is_second_response(rest)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_interim_status_from_the_app_ends_the_connection(
    shared_server: SharedServers, mode: str
) -> None:
    # No final response can follow an app's 1xx on this connection: the head
    # alone is sent (nothing a client would take for the next response), then
    # the connection closes.
    fields, rest = two_responses(
        framing_server(shared_server, mode), "GET", "/status?code=103&pieces=2"
    )
    assert "content-length" not in fields
    assert "transfer-encoding" not in fields
    assert rest == b""
