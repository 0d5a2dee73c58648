"""An ASGI 3 app that answers with its own scope as JSON, for tests/integration/test_frameworks.py.

Lifespan startup stores values in `scope["state"]`; the server must hand a copy
of that namespace to every request scope.  `/mutate-state` changes its copy,
which must not leak into the next request (the spec says each request gets a
copy, so one request cannot corrupt another's view).
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

STARTUP_TOKEN = "set-during-lifespan-startup"


def _jsonable(scope: Scope) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in scope.items():
        if key in {"raw_path", "query_string"}:
            result[key] = {"type": type(value).__name__, "latin1": value.decode("latin-1")}
        elif key == "headers":
            result[key] = [
                [type(n).__name__, n.decode("latin-1"), type(v).__name__, v.decode("latin-1")]
                for n, v in value
            ]
        elif key in {"client", "server"}:
            result[key] = list(value) if value is not None else None
        elif key == "state":
            result[key] = {k: v for k, v in value.items() if isinstance(v, (str, int, float))}
        elif key == "extensions":
            result[key] = sorted(value or {})
        else:
            try:
                json.dumps(value)
            except TypeError:
                result[key] = f"<{type(value).__name__}>"
            else:
                result[key] = value
    return result


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["token"] = STARTUP_TOKEN
                scope["state"]["lifespan_pid"] = os.getpid()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["path"].endswith("/mutate-state") and "state" in scope:
        scope["state"]["mutated"] = "by a request"
    payload = _jsonable(scope)
    payload["pid"] = os.getpid()
    payload["body_size"] = len(body)
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
