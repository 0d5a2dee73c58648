"""Answers with who it thinks the client is (tests/integration/test_proxy*.py).

Both interfaces answer the same JSON: client [host, port], scheme,
server [name, port] and the Host header, from the WSGI environ or the ASGI
scope, plus every X-Forwarded-For value the app saw (untrusted ones must
pass through untouched).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from tests.apps.lifespan import run_lifespan

StartResponse = Callable[..., Any]


def wsgi_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    port = environ.get("REMOTE_PORT")
    seen = {
        "client": [environ["REMOTE_ADDR"], int(port) if port is not None else None],
        "scheme": environ["wsgi.url_scheme"],
        "server": [environ["SERVER_NAME"], int(environ["SERVER_PORT"])],
        "host": environ.get("HTTP_HOST"),
        "x_forwarded_for": environ.get("HTTP_X_FORWARDED_FOR"),
    }
    body = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    headers: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        text = value.decode("latin-1")
        headers[name] = headers[name] + "," + text if name in headers else text
    server = scope["server"]
    seen = {
        "client": list(scope["client"]) if scope["client"] else None,
        "scheme": scope["scheme"],
        "server": list(server) if server else None,
        "host": headers.get(b"host"),
        "x_forwarded_for": headers.get(b"x-forwarded-for"),
    }
    body = json.dumps(seen).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
