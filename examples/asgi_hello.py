"""The smallest ASGI 3 application, with the lifespan protocol: no framework.

Serve it from the repository root:

    prefork examples.asgi_hello:app --workers 2

`GET /` answers "Hello, world!"; `GET /state` shows what lifespan startup put in
the shared `state` (the time this worker started), which proves startup ran
before the first request.  Lifespan shutdown runs when a worker drains.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(scope, receive, send)
    elif scope["type"] == "http":
        await _http(scope, receive, send)
    else:
        # Websockets are not part of this example: refusing the handshake is the
        # polite answer (the server turns it into a 403).
        await send({"type": "websocket.close", "code": 1000})


async def _lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # `state` is copied (shallowly) into every request scope by the server.
            if "state" in scope:
                scope["state"]["started_at"] = time.time()
                scope["state"]["pid"] = os.getpid()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _http(scope: Scope, receive: Receive, send: Send) -> None:
    # Drain the request body even when it is unused, so the connection can be reused.
    more = True
    body = b""
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["path"] == "/state":
        state = dict(scope.get("state", {}))
        payload = json.dumps(state, sort_keys=True).encode()
        content_type = b"application/json"
    elif scope["path"] == "/echo":
        payload = body
        content_type = b"application/octet-stream"
    else:
        payload = b"Hello, world!\n"
        content_type = b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
