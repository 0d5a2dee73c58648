"""Tiny apps for the process-layer tests: each answers with the worker's pid."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from tests.apps.lifespan import run_lifespan

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """GET /slow sleeps 1 s (graceful stop); /hang blocks the worker's loop (--timeout)."""
    path = environ.get("PATH_INFO")
    if path == "/slow":
        mark = environ.get("QUERY_STRING", "")
        if mark:  # tell the test the request is in progress
            with open(mark, "w") as fh:
                fh.write("started")
        time.sleep(1.0)
    elif path == "/hang":
        time.sleep(120.0)
    body = f"pid={os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    body = f"pid={os.getpid()}\n".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def asgi_startup_fails(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Lifespan startup fails: the master must exit 3."""
    assert scope["type"] == "lifespan"
    message = await receive()
    assert message["type"] == "lifespan.startup"
    await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
