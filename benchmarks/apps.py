"""The benchmark applications: one behaviour, served through WSGI and through ASGI.

Every server in the comparison runs these same callables, so a difference in
the numbers is the server's, not the app's.  `wsgi_app` and `asgi_app` route
on the path so one server start covers every scenario (a dict lookup per
request, the same for everyone); `wsgi_plaintext` and `asgi_plaintext` are the
route-free minimum, used by the reload benchmark and for quick manual checks:

    python -m prefork benchmarks.apps:wsgi_plaintext -w 2

Routes (identical for both interfaces):
    /plaintext  13-byte text/plain body ("Hello, World!", TechEmpower's test)
    /json       {"message": "Hello, World!"} serialised per request
    /64k        a 64 KiB body, precomputed
    /echo       the request body echoed back (the benchmark POSTs 1 MiB)
    /stream     8 chunks of 1 KiB without Content-Length (chunked encoding)
    /sleep      ASGI only: awaits 10 ms, then answers like /plaintext

`asgi_websocket` serves WebSockets (benchmarks/websocket.py), and answers
HTTP like /plaintext so readiness probes work:
    /echo       every message is sent back as it came (text or bytes)
    /broadcast  every message is sent to every connection of the worker's room
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from typing import Any, Final

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PLAINTEXT: Final = b"Hello, World!"
BLOB_64K: Final = b"x" * 65536
STREAM_CHUNK: Final = b"y" * 1024
STREAM_CHUNKS: Final = 8
SLEEP_SECONDS: Final = 0.010

_TEXT: Final = "text/plain"
_JSON: Final = "application/json"
_BINARY: Final = "application/octet-stream"


# -- WSGI ---------------------------------------------------------------------


def _wsgi_fixed(
    body: bytes, content_type: str
) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]

    def handler(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", headers)
        return [body]

    return handler


def _wsgi_json(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    body = json.dumps({"message": "Hello, World!"}).encode()
    start_response("200 OK", [("Content-Type", _JSON), ("Content-Length", str(len(body)))])
    return [body]


def _wsgi_echo(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    start_response("200 OK", [("Content-Type", _BINARY), ("Content-Length", str(len(body)))])
    return [body]


def _stream_chunks() -> Iterator[bytes]:
    for _ in range(STREAM_CHUNKS):
        yield STREAM_CHUNK


def _wsgi_stream(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", _BINARY)])
    return _stream_chunks()


def _wsgi_not_found(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("404 Not Found", [("Content-Type", _TEXT), ("Content-Length", "9")])
    return [b"not found"]


_WSGI_ROUTES: Final[dict[str, Callable[[Environ, StartResponse], Iterable[bytes]]]] = {
    "/plaintext": _wsgi_fixed(PLAINTEXT, _TEXT),
    "/json": _wsgi_json,
    "/64k": _wsgi_fixed(BLOB_64K, _BINARY),
    "/echo": _wsgi_echo,
    "/stream": _wsgi_stream,
}

wsgi_plaintext: Final = _wsgi_fixed(PLAINTEXT, _TEXT)


def wsgi_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    handler = _WSGI_ROUTES.get(environ.get("PATH_INFO", ""), _wsgi_not_found)
    return handler(environ, start_response)


# -- ASGI ---------------------------------------------------------------------


def _start(status: int, content_type: bytes, length: int | None) -> Message:
    headers = [(b"content-type", content_type)]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http.response.start", "status": status, "headers": headers}


async def _respond(send: Send, body: bytes, content_type: bytes = b"text/plain") -> None:
    await send(_start(200, content_type, len(body)))
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    # Answering lifespan keeps every server on its normal path (uvicorn and
    # granian log a warning, and some fall back, when an app refuses it).
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def asgi_plaintext(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await _respond(send, PLAINTEXT)


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "lifespan":
        await _lifespan(receive, send)
        return
    if kind != "http":
        return
    path = scope["path"]
    if path == "/plaintext":
        await _respond(send, PLAINTEXT)
    elif path == "/json":
        body = json.dumps({"message": "Hello, World!"}).encode()
        await _respond(send, body, b"application/json")
    elif path == "/64k":
        await _respond(send, BLOB_64K, b"application/octet-stream")
    elif path == "/echo":
        await _respond(send, await _read_body(receive), b"application/octet-stream")
    elif path == "/stream":
        await send(_start(200, b"application/octet-stream", None))
        for _ in range(STREAM_CHUNKS):
            await send({"type": "http.response.body", "body": STREAM_CHUNK, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/sleep":
        await asyncio.sleep(SLEEP_SECONDS)
        await _respond(send, PLAINTEXT)
    else:
        await send(_start(404, b"text/plain", 9))
        await send({"type": "http.response.body", "body": b"not found"})


# -- WebSocket ----------------------------------------------------------------

_ROOM: Final[set[Send]] = set()


async def _ws_echo(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        await send({"type": "websocket.send", **_ws_payload(message)})


async def _ws_broadcast(receive: Receive, send: Send) -> None:
    _ROOM.add(send)
    try:
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            out = {"type": "websocket.send", **_ws_payload(message)}
            for member in list(_ROOM):
                try:
                    await member(out)
                except OSError:  # that member left meanwhile
                    _ROOM.discard(member)
    finally:
        _ROOM.discard(send)


def _ws_payload(message: Message) -> dict[str, Any]:
    text = message.get("text")
    return {"text": text} if text is not None else {"bytes": message.get("bytes")}


async def asgi_websocket(scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "lifespan":
        await _lifespan(receive, send)
        return
    if kind == "http":
        await _respond(send, PLAINTEXT)
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    if scope["path"] == "/broadcast":
        await _ws_broadcast(receive, send)
    else:
        await _ws_echo(receive, send)
