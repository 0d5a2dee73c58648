"""Echo what the application saw of a request, as JSON, in both interfaces.

The hostile-input tests assert on this view: which headers reached the app
(trailer fields and underscore names must not), the decoded path, the body.
Both flavours report the same shape so one assertion serves WSGI and ASGI:

    {"interface", "method", "path", "raw_path", "query", "version",
     "headers": [[name, value], ...], "body"}

Header names are lowercased; WSGI's HTTP_X_FOO becomes "x-foo" (the mapping
that makes `X_Foo` and `X-Foo` indistinguishable, hence the drop rule).
Strings are latin-1 decoded bytes, so any octet survives the round trip.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from tests.apps.lifespan import run_lifespan

StartResponse = Callable[..., Any]


def _reply(view: dict[str, Any]) -> tuple[bytes, list[tuple[str, str]]]:
    body = json.dumps(view).encode()
    return body, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]


def wsgi_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append([key[5:].lower().replace("_", "-"), value])
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.append([key.lower().replace("_", "-"), value])
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    body: bytes = stream.read(int(length)) if length else stream.read()
    path = environ.get("PATH_INFO", "")
    view = {
        "interface": "wsgi",
        "method": environ["REQUEST_METHOD"],
        "path": path.encode("latin-1").decode("utf-8", "replace"),
        "raw_path": environ.get("RAW_URI", environ.get("REQUEST_URI", "")).split("?", 1)[0],
        "query": environ.get("QUERY_STRING", ""),
        "version": environ.get("SERVER_PROTOCOL", "").removeprefix("HTTP/"),
        "headers": sorted(headers),
        "body": body.decode("latin-1"),
    }
    data, response_headers = _reply(view)
    start_response("200 OK", response_headers)
    return [data]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return  # http.disconnect: nobody to answer
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    view = {
        "interface": "asgi",
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": (scope.get("raw_path") or b"").decode("latin-1"),
        "query": scope["query_string"].decode("latin-1"),
        "version": scope["http_version"],
        "headers": sorted([n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]),
        "body": body.decode("latin-1"),
    }
    data, response_headers = _reply(view)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(n.lower().encode(), v.encode()) for n, v in response_headers],
        }
    )
    await send({"type": "http.response.body", "body": data})
