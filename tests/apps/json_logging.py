"""Apps that write to the `logging` module, for the --log-format json tests."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from tests.apps.lifespan import run_lifespan

log = logging.getLogger("tests.app")


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    log.warning('app saw %s "quoted"', environ.get("QUERY_STRING", ""))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    log.warning('app saw %s "quoted"', scope["query_string"].decode("latin-1"))
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
