"""Apps that answer with what they were told about the connection's TLS, as JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from tests.apps.lifespan import run_lifespan

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    seen = {k: v for k, v in environ.items() if k.startswith("SSL_")}
    seen["scheme"] = environ["wsgi.url_scheme"]
    body = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    seen = {"scheme": scope["scheme"], "tls": scope.get("extensions", {}).get("tls")}
    body = json.dumps(seen).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
