"""The interfaces on the protocol layer: ASGI and WSGI apps through a fake transport.

The server is composed as a worker composes it (worker/compose.py), without
processes or sockets.  The protocol layer alone is tested in
test_protocol.py, whose tables these tests run again through each interface.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

import pytest

from prefork.asgi.types import ASGIReceive, ASGISend, Scope
from tests.protocol_harness import run_exchange
from tests.unit.test_protocol import GET, REJECTIONS

StartResponse = Any


# -- apps ---------------------------------------------------------------------


def wsgi_hello(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello"]


def wsgi_echo(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    body = environ["wsgi.input"].read()
    headers = {k: v for k, v in environ.items() if k.startswith(("HTTP_", "CONTENT_"))}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"body": body.decode("latin-1"), "headers": headers}).encode()]


def wsgi_stream(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"one,"
    yield b"two,"
    yield b"three"


def wsgi_boom(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    raise ValueError("boom")


def wsgi_boom_late(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [])
    yield b"partial"
    yield b"more"
    raise ValueError("late boom")


def wsgi_split_header(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("X-Evil", "a\r\nSet-Cookie: owned=1")])
    return [b"never"]


async def asgi_hello(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"Hello"})


async def asgi_echo(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode(): v.decode("latin-1") for k, v in scope["headers"]}
    payload = json.dumps({"body": body.decode("latin-1"), "headers": headers}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": payload})


async def asgi_stream(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for part in (b"one,", b"two,"):
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b"three"})


async def asgi_no_read(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    await send({"type": "http.response.start", "status": 413, "headers": []})
    await send({"type": "http.response.body", "body": b"no thanks"})


async def asgi_boom(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    raise ValueError("boom")


async def asgi_boom_late(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise ValueError("late boom")


async def asgi_bad_order(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    await send({"type": "http.response.body", "body": b"no start"})


async def asgi_no_response(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    return


async def asgi_split_header(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    headers = [(b"x-evil", b"a\r\nset-cookie: owned=1")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"never"})


HELLO = {"wsgi": wsgi_hello, "asgi": asgi_hello}
ECHO = {"wsgi": wsgi_echo, "asgi": asgi_echo}
STREAM = {"wsgi": wsgi_stream, "asgi": asgi_stream}
BOOM = {"wsgi": wsgi_boom, "asgi": asgi_boom}
BOOM_LATE = {"wsgi": wsgi_boom_late, "asgi": asgi_boom_late}
SPLIT = {"wsgi": wsgi_split_header, "asgi": asgi_split_header}
INTERFACES = ["wsgi", "asgi"]


def post(body: bytes, extra: bytes = b"") -> bytes:
    return b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n%b\r\n%b" % (
        len(body),
        extra,
        body,
    )


CHUNKED_POST = (
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nHost: evil\r\nX-Trailer: t\r\n\r\n"
)


@pytest.mark.parametrize("interface", INTERFACES)
@pytest.mark.parametrize(
    ("name", "request_bytes", "statuses"), REJECTIONS, ids=[r[0] for r in REJECTIONS]
)
def test_rejections_answer_and_close(
    interface: str, name: str, request_bytes: bytes, statuses: list[int]
) -> None:
    bytewise = [bytes([b]) for b in request_bytes[:200]] + [request_bytes[200:]]
    for pieces in ([request_bytes], bytewise):
        out = run_exchange(ECHO[interface], pieces)
        if name == "unknown method" and pieces is bytewise:
            # llhttp fails at the first byte no method starts with, so only a
            # whole request line shows the method was well-formed (501).
            statuses = [400]
        assert out.statuses == statuses, (pieces[:1], out.raw[:300])
        response = out.responses[0]
        assert response.header(b"connection") == b"close"
        assert response.header(b"content-type") == b"text/plain; charset=utf-8"
        assert response.body.startswith(str(statuses[0]).encode())
        assert out.closed


@pytest.mark.parametrize("interface", INTERFACES)
def test_hello_keeps_connection_open(interface: str) -> None:
    out = run_exchange(HELLO[interface], GET)
    assert out.statuses == [200]
    response = out.responses[0]
    assert response.body == b"Hello"
    assert response.header(b"content-length") == b"5"
    assert response.header(b"date") is not None
    assert response.header(b"server") == b"prefork"
    assert not out.closed


@pytest.mark.parametrize("interface", INTERFACES)
def test_server_header_can_be_off(interface: str) -> None:
    out = run_exchange(HELLO[interface], GET, server_header=False)
    assert out.responses[0].header(b"server") is None


@pytest.mark.parametrize("interface", INTERFACES)
def test_pipelined_requests_answer_in_order(interface: str) -> None:
    requests = b"".join(
        b"POST / HTTP/1.1\r\nHost: a\r\nX-N: %d\r\nContent-Length: 1\r\n\r\n%d" % (i, i)
        for i in range(3)
    )
    out = run_exchange(ECHO[interface], requests)
    assert out.statuses == [200, 200, 200]
    bodies = [json.loads(r.body)["body"] for r in out.responses]
    assert bodies == ["0", "1", "2"]


@pytest.mark.parametrize("interface", INTERFACES)
@pytest.mark.parametrize("split", [False, True])
def test_chunked_request_body_and_trailers_hidden(interface: str, split: bool) -> None:
    data = [bytes([b]) for b in CHUNKED_POST] if split else [CHUNKED_POST]
    out = run_exchange(ECHO[interface], data)
    assert out.statuses == [200]
    payload = json.loads(out.responses[0].body)
    assert payload["body"] == "hello world"
    header_names = {k.lower() for k in payload["headers"]}
    assert "x-trailer" not in header_names and "http_x_trailer" not in header_names
    hosts = [v for k, v in payload["headers"].items() if k.lower() in ("host", "http_host")]
    assert hosts == ["a"]


@pytest.mark.parametrize("interface", INTERFACES)
def test_underscore_headers_are_dropped(interface: str) -> None:
    request = b"GET / HTTP/1.1\r\nHost: a\r\nContent_Length: 5\r\nX_Foo: 1\r\nX-Foo: 2\r\n\r\n"
    out = run_exchange(ECHO[interface], request)
    headers = json.loads(out.responses[0].body)["headers"]
    assert "content_length" not in headers and "x_foo" not in headers
    assert headers.get("x-foo", headers.get("HTTP_X_FOO")) == "2"
    assert "CONTENT_LENGTH" not in headers


@pytest.mark.parametrize("interface", INTERFACES)
def test_streamed_response_is_chunked(interface: str) -> None:
    out = run_exchange(STREAM[interface], GET)
    response = out.responses[0]
    assert response.header(b"transfer-encoding") == b"chunked"
    assert response.body == b"one,two,three"
    assert not out.closed


@pytest.mark.parametrize("interface", INTERFACES)
def test_streamed_response_on_http10_closes(interface: str) -> None:
    out = run_exchange(STREAM[interface], b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert out.raw.endswith(b"one,two,three")
    assert out.responses[0].header(b"transfer-encoding") is None
    assert out.closed


@pytest.mark.parametrize("interface", INTERFACES)
def test_http10_keep_alive(interface: str) -> None:
    out = run_exchange(HELLO[interface], b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert out.responses[0].header(b"connection") == b"keep-alive"
    assert not out.closed
    out = run_exchange(HELLO[interface], b"GET / HTTP/1.0\r\n\r\n")
    assert out.responses[0].header(b"connection") == b"close"
    assert out.closed


@pytest.mark.parametrize("interface", INTERFACES)
def test_connection_close_request(interface: str) -> None:
    out = run_exchange(HELLO[interface], b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert out.responses[0].header(b"connection") == b"close"
    assert out.closed


@pytest.mark.parametrize("interface", INTERFACES)
def test_head_has_length_but_no_body(interface: str) -> None:
    out = run_exchange(
        HELLO[interface], b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n" + GET, head_requests=1
    )
    assert out.statuses == [200, 200]
    assert out.responses[0].header(b"content-length") == b"5"
    assert out.responses[0].body == b""
    assert out.responses[1].body == b"Hello"


@pytest.mark.parametrize("interface", INTERFACES)
def test_exception_before_response_is_500(interface: str) -> None:
    out = run_exchange(BOOM[interface], GET)
    assert out.statuses == [500]
    assert out.closed


@pytest.mark.parametrize("interface", INTERFACES)
def test_exception_after_response_started_closes(interface: str) -> None:
    out = run_exchange(BOOM_LATE[interface], GET)
    assert out.statuses == [200]
    assert not out.responses[0].complete
    assert out.closed


@pytest.mark.parametrize("interface", INTERFACES)
def test_response_splitting_refused(interface: str) -> None:
    out = run_exchange(SPLIT[interface], GET)
    assert out.statuses == [500]
    assert b"owned" not in out.raw


@pytest.mark.parametrize("app", [asgi_bad_order, asgi_no_response])
def test_asgi_protocol_violations_are_500(app: Any) -> None:
    out = run_exchange(app, GET)
    assert out.statuses == [500]


def test_asgi_expect_continue_only_when_app_reads() -> None:
    request = post(b"abc", b"Expect: 100-continue\r\n")
    head, body = request.split(b"\r\n\r\n", 1)
    out = run_exchange(asgi_echo, [head + b"\r\n\r\n", body])
    assert out.statuses == [100, 200]
    out = run_exchange(asgi_no_read, [head + b"\r\n\r\n"])
    assert out.statuses == [413]
    assert out.closed  # the unread body cannot be told apart from a next request


def test_body_limit_on_content_length_and_chunked() -> None:
    out = run_exchange(asgi_echo, post(b"x" * 20), limit_request_body=10)
    assert out.statuses == [413]
    chunked = (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"5\r\nhello\r\n" * 5
        + b"0\r\n\r\n"
    )
    for app in (asgi_echo, wsgi_echo):
        out = run_exchange(app, chunked, limit_request_body=10)
        assert out.statuses == [413], out.raw
        assert out.closed


def test_header_block_limit() -> None:
    line = b"X-Long: " + b"v" * 4000 + b"\r\n"
    pieces = [b"GET / HTTP/1.1\r\nHost: a\r\n"] + [line] * 20
    out = run_exchange(asgi_hello, pieces, limit_request_headers=16384)
    assert out.statuses == [431]


def test_wsgi_environ_basics() -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        seen.update(environ)
        start_response("204 No Content", [])
        return []

    run_exchange(
        app,
        b"GET /caf%C3%A9/x?q=1&r=%20 HTTP/1.1\r\nHost: h\r\nCookie: a=1\r\nX-A: 1\r\n"
        b"Cookie: b=2\r\nX-A: 2\r\nx-a: 3\r\nAccept: */*\r\n\r\n",
        root_path="/api",
    )
    assert seen["PATH_INFO"] == "/café".encode().decode("latin-1") + "/x"
    assert seen["QUERY_STRING"] == "q=1&r=%20"
    assert seen["SCRIPT_NAME"] == "/api"
    assert seen["HTTP_COOKIE"] == "a=1; b=2"
    assert seen["HTTP_X_A"] == "1,2,3"
    assert seen["HTTP_ACCEPT"] == "*/*"
    assert seen["REMOTE_ADDR"] == "127.0.0.1"
    assert seen["SERVER_PORT"] == "8000"
    assert seen["wsgi.url_scheme"] == "http"
    assert seen["SERVER_PROTOCOL"] == "HTTP/1.1"


def test_asgi_scope_basics() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
        seen.update(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    run_exchange(app, b"GET /caf%C3%A9?q=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n", root_path="/api")
    assert seen["path"] == "/api/café"
    assert seen["raw_path"] == b"/caf%C3%A9"
    assert seen["root_path"] == "/api"
    assert seen["query_string"] == b"q=1"
    assert seen["headers"] == [(b"host", b"h"), (b"x-a", b"1")]
    assert seen["client"] == ("127.0.0.1", 50000)
    assert seen["server"] == ("127.0.0.1", 8000)
    assert seen["asgi"]["version"] == "3.0"
    assert seen["http_version"] == "1.1"
    assert seen["method"] == "GET"


def test_asgi_scopes_of_one_connection_are_independent() -> None:
    # Each request's scope is a copy of the connection's template: what an app
    # (or a framework's router) writes into one never shows in the next.
    seen: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
        seen.append(dict(scope))
        scope["path"] = "/changed"
        scope["router"] = "set by the app"
        scope["client"] = ("10.0.0.1", 1)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    out = run_exchange(
        app, [b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n", b"POST /b?x HTTP/1.0\r\nHost: h\r\n\r\n"]
    )
    assert out.statuses == [204, 204]
    first, second = seen
    assert (first["path"], first["method"], first["http_version"]) == ("/a", "GET", "1.1")
    assert (second["path"], second["method"], second["http_version"]) == ("/b", "POST", "1.0")
    assert second["query_string"] == b"x"
    assert "router" not in second
    assert second["client"] == ("127.0.0.1", 50000)
    assert list(first) == list(second)


def test_asgi_websocket_and_http_scopes_describe_a_head_alike() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
        seen.append(dict(scope))
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close"})  # refused: an HTTP 403
        else:
            await asgi_hello(scope, receive, send)

    # From a trusted proxy (the peer is 127.0.0.1), which says the client
    # came over TLS from 10.0.0.7.
    proxied = b"X-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Proto: https\r\n"
    handshake = (
        b"GET /caf%C3%A9?q=1 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, json\r\n" + proxied + b"\r\n"
    )
    request = b"GET /caf%C3%A9?q=1 HTTP/1.1\r\nHost: h\r\n" + proxied + b"\r\n"
    assert run_exchange(app, handshake, websockets=True, root_path="/api").statuses == [403]
    assert run_exchange(app, request, root_path="/api").statuses == [200]
    websocket, http = seen
    assert (websocket["type"], websocket["scheme"]) == ("websocket", "wss")
    assert (http["type"], http["scheme"]) == ("http", "https")
    assert websocket["subprotocols"] == ["chat", "json"]
    assert http["method"] == "GET"
    for key in ("asgi", "http_version", "server", "client", "root_path", "path", "raw_path"):
        assert websocket[key] == http[key], key
    assert websocket["client"] == ("10.0.0.7", 0)
    assert websocket["path"] == "/api/café"
    assert websocket["query_string"] == http["query_string"] == b"q=1"


def test_rejected_request_after_pipelined_good_one() -> None:
    out = run_exchange(asgi_hello, GET + b"GET / HTTP/1.1\r\n\r\n")
    assert out.statuses == [200, 400]
    assert out.closed


def test_body_of_a_request_queued_behind_a_slow_one_still_arrives() -> None:
    # The second request's headers arrive while the first is still being
    # answered (reading pauses), its body only later: reading must resume.
    first = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    second_head = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"
    out = run_exchange(asgi_slow_then_echo, [first + second_head, b"hello"])
    assert out.statuses == [200, 200]
    assert json.loads(out.responses[1].body)["body"] == "hello"


async def asgi_slow_then_echo(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    if scope["method"] == "GET":
        for _ in range(5):  # finish a few loop iterations after the POST's headers arrived
            await asyncio.sleep(0)
        await asgi_hello(scope, receive, send)
    else:
        await asgi_echo(scope, receive, send)
