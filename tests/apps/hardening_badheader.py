"""Apps that try to send response headers able to split or corrupt the response.

GET /<kind> picks the bad header; any other path answers 200 "fine".  The
server must turn each attempt into a 500 (the app's response never started)
and never let the injected line reach the client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

BAD: Final[dict[str, tuple[str, str]]] = {
    "crlf-value": ("X-Test", "a\r\nX-Injected: 1"),
    "lf-value": ("X-Test", "a\nX-Injected: 1"),
    "cr-value": ("X-Test", "a\rX-Injected: 1"),
    "nul-value": ("X-Test", "a\0injected"),
    "bad-name": ("X-Injected: 1\r\nX-Test", "a"),
}


def _headers(path: str) -> tuple[bytes, list[tuple[str, str]]]:
    bad = BAD.get(path.strip("/"))
    headers = [("Content-Type", "text/plain"), ("Content-Length", "4")]
    if bad:
        headers.append(bad)
        return b"bad!", headers
    return b"fine", headers


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body, headers = _headers(environ["PATH_INFO"])
    start_response("200 OK", headers)
    return [body]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    body, headers = _headers(scope["path"])
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers],
        }
    )
    await send({"type": "http.response.body", "body": body})
