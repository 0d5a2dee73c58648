"""Responses whose framing the status or the method decides, for tests/integration/test_framing.py.

The same routes in both interfaces:

- /status?code=N&pieces=K[&length=L]
      status N with a body of K pieces of b"x" (K=0: no body), sent as K
      separate messages/items; `length` sets the app's own Content-Length
- /empty  200 with an empty body and no Content-Length
- /fixed  b"hello" with the app's Content-Length: 5
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

from tests.apps.lifespan import run_lifespan

StartResponse = Callable[..., Any]


def _route(path: str, query: str) -> tuple[int, list[tuple[str, str]], list[bytes]]:
    """(status, headers, body pieces) for a request."""
    if path == "/fixed":
        return 200, [("Content-Length", "5")], [b"hello"]
    if path == "/empty":
        return 200, [("Content-Type", "text/plain")], []
    params = {k: v[0] for k, v in parse_qs(query).items()}
    headers = [("Content-Length", params["length"])] if "length" in params else []
    return int(params["code"]), headers, [b"x"] * int(params.get("pieces", "0"))


def wsgi_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    status, headers, pieces = _route(environ["PATH_INFO"], environ.get("QUERY_STRING", ""))
    start_response(f"{status} Whatever", headers)
    if len(pieces) > 1:
        return _lazily(pieces)  # an iterator: the server cannot know the length
    return pieces


def _lazily(pieces: list[bytes]) -> Iterator[bytes]:
    yield from pieces


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    status, headers, pieces = _route(scope["path"], scope["query_string"].decode())
    raw = [(n.lower().encode(), v.encode()) for n, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    for piece in pieces:
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
