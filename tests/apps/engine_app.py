"""Routes for the real-server engine tests (tests/integration/test_http_server.py).

Every route behaves the same under WSGI and ASGI so one test body serves the
three modes (inline WSGI, threaded WSGI, ASGI):

- /pid                 the worker's pid (to tell whether a worker survived)
- /fixed               b"hello" with a Content-Length (HEAD checks)
- /stream?total=N&chunk=C
                       N bytes with a Content-Length, made lazily in fresh
                       C-byte chunks; chunk i is the byte i % 251 repeated
- /hash                reads the body in 64 KiB pieces, answers
                       {"sha256", "length"} as JSON (memory stays flat)
- /echo[?stream=1]     "METHOD QUERY " + body; with stream=1 in two pieces and
                       no Content-Length (so chunked or close-delimited)
- /boom                raises before the response starts
- /boom-late           sends two pieces of a streamed body, then raises
ASGI only:
- /wait-disconnect?id=X  reads the body, records "waiting", waits on receive()
                         and records the message type it got
- /seen?id=X           JSON list of what /wait-disconnect recorded for X
- /reject              413 without reading the (announced) body
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

from tests.apps.lifespan import run_lifespan

StartResponse = Callable[..., Any]
PIECE = 65536

_seen: dict[str, list[str]] = {}


def stream_chunks(total: int, chunk: int) -> Iterator[bytes]:
    index = 0
    left = total
    while left > 0:
        size = min(chunk, left)
        yield bytes((index % 251,)) * size  # a fresh object each time: nothing shared
        left -= size
        index += 1


def _query(raw: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(raw).items()}


def _hash_reply(digest: hashlib._Hash, length: int) -> bytes:
    return json.dumps({"sha256": digest.hexdigest(), "length": length}).encode()


def wsgi_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    query = _query(environ.get("QUERY_STRING", ""))
    stream = environ["wsgi.input"]
    if path == "/pid":
        body = str(os.getpid()).encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    if path == "/fixed":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"hello"]
    if path == "/stream":
        total, chunk = int(query["total"]), int(query.get("chunk", PIECE))
        start_response("200 OK", [("Content-Length", str(total))])
        return stream_chunks(total, chunk)
    if path == "/hash":
        digest = hashlib.sha256()
        length = 0
        while data := stream.read(PIECE):
            digest.update(data)
            length += len(data)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [_hash_reply(digest, length)]
    if path == "/echo":
        prefix = f"{environ['REQUEST_METHOD']} {environ.get('QUERY_STRING', '')} ".encode()
        data = stream.read()
        if query.get("stream"):
            start_response("200 OK", [])
            half = len(data) // 2
            return iter([prefix + data[:half], data[half:]])
        body = prefix + data
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    if path == "/boom":
        raise RuntimeError("boom before the response")
    if path == "/boom-late":
        return _boom_late(start_response)
    start_response("404 Not Found", [("Content-Length", "0")])
    return []


def _boom_late(start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [])
    # Two pieces: inline WSGI looks two items ahead before committing to a
    # streamed response, so this is the first point where a 500 is too late.
    yield b"partial-1"
    yield b"partial-2"
    raise RuntimeError("boom in the middle of the response")


async def _read_body(receive: Any) -> bytes | None:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body)


async def _answer(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    path = scope["path"]
    raw_query = scope["query_string"].decode("latin-1")
    query = _query(raw_query)
    if path == "/pid":
        await _answer(send, 200, str(os.getpid()).encode())
    elif path == "/fixed":
        await _answer(send, 200, b"hello")
    elif path == "/stream":
        total, chunk = int(query["total"]), int(query.get("chunk", PIECE))
        headers = [(b"content-length", str(total).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for data in stream_chunks(total, chunk):
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/hash":
        digest = hashlib.sha256()
        length = 0
        while True:
            message = await receive()
            assert message["type"] == "http.request", message
            data = message.get("body", b"")
            digest.update(data)
            length += len(data)
            if not message.get("more_body", False):
                break
        await _answer(send, 200, _hash_reply(digest, length))
    elif path == "/echo":
        body = await _read_body(receive)
        assert body is not None
        prefix = f"{scope['method']} {raw_query} ".encode()
        if query.get("stream"):
            half = len(body) // 2
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send(
                {"type": "http.response.body", "body": prefix + body[:half], "more_body": True}
            )
            await send({"type": "http.response.body", "body": body[half:]})
        else:
            await _answer(send, 200, prefix + body)
    elif path == "/boom":
        raise RuntimeError("boom before the response")
    elif path == "/boom-late":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for piece in (b"partial-1", b"partial-2"):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        raise RuntimeError("boom in the middle of the response")
    elif path == "/wait-disconnect":
        seen = _seen.setdefault(query["id"], [])
        await _read_body(receive)
        seen.append("waiting")
        message = await receive()
        seen.append(message["type"])
    elif path == "/seen":
        await _answer(send, 200, json.dumps(_seen.get(query["id"], [])).encode())
    elif path == "/reject":
        await _answer(send, 413, b"too large")
    else:
        await _answer(send, 404, b"")
