"""ASGI WebSocket apps for the WebSocket tests, routed by path (no framework)."""

from __future__ import annotations

import asyncio
from typing import Any

from prefork.asgi.types import ASGIReceive, ASGISend, Scope


async def app(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    if scope["type"] == "lifespan":
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        return
    if scope["type"] == "http":
        await receive()
        body = f"http {scope['path']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    handler = ROUTES.get(scope["path"], echo)
    await handler(scope, receive, send)


async def echo(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "close-me":
            await send({"type": "websocket.close", "code": 4001, "reason": "asked to"})
            return
        reply: dict[str, Any] = {"type": "websocket.send"}
        if message.get("text") is not None:
            reply["text"] = message["text"]
        else:
            reply["bytes"] = message["bytes"]
        await send(reply)


async def wrong_echo(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    """Echoes every message with its last character changed: a load client must notice."""
    await receive()
    await send({"type": "websocket.accept"})
    while (message := await receive())["type"] == "websocket.receive":
        text = message.get("text") or ""
        await send(
            {"type": "websocket.send", "text": text[:-1] + ("?" if text[-1:] != "?" else "!")}
        )


async def scope_view(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    await receive()
    offered = scope["subprotocols"]
    await send(
        {
            "type": "websocket.accept",
            "subprotocol": offered[-1] if offered else None,
            "headers": [(b"x-extra", b"yes")],
        }
    )
    fields = {k: v for k, v in scope.items() if k not in ("state", "headers")}
    await send({"type": "websocket.send", "text": repr(sorted(fields.items()))})
    await receive()


async def refuse(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    await receive()
    await send({"type": "websocket.close"})


async def deny(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    await receive()
    await send(
        {
            "type": "websocket.http.response.start",
            "status": 401,
            "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Token")],
        }
    )
    await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b"token"})


async def accept_and_return(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "bye"})


async def crash_before(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    raise RuntimeError("boom before accept")


async def crash_after(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    raise RuntimeError("boom after accept")


async def report_disconnect(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    """Sends the disconnect event it got to the next connection on /last-disconnect."""
    await receive()
    await send({"type": "websocket.accept"})
    while (message := await receive())["type"] != "websocket.disconnect":
        pass
    DISCONNECTS.append(dict(message))


async def last_disconnect(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    for _ in range(100):
        if DISCONNECTS:
            break
        await asyncio.sleep(0.05)
    await send({"type": "websocket.send", "text": repr(DISCONNECTS[-1] if DISCONNECTS else None)})
    await send({"type": "websocket.close"})


async def late_accept(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    """Accepts after the client has given up: the send raises ClientDisconnected."""
    await receive()
    await asyncio.sleep(1.0)
    await send({"type": "websocket.accept"})
    try:
        await send({"type": "websocket.send", "text": "too late"})
    except OSError as exc:
        DISCONNECTS.append({"late-accept": type(exc).__name__})


async def hold(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    """Accepts and never receives: the client cannot make it buffer without bound."""
    await receive()
    await send({"type": "websocket.accept"})
    await asyncio.sleep(3600)


async def flood(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    """Sends 1 MiB messages forever: a client that does not read must stall it."""
    await receive()
    await send({"type": "websocket.accept"})
    chunk = b"x" * 2**20
    sent = 0
    while True:
        await send({"type": "websocket.send", "bytes": chunk})
        sent += 1
        SENT[0] = sent


async def flood_small(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    """Sends 100-byte messages forever, awaiting nothing else: it must stall all the same."""
    await receive()
    await send({"type": "websocket.accept"})
    chunk = b"x" * 100
    while True:
        await send({"type": "websocket.send", "bytes": chunk})


async def burst(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
    """Numbered messages in one turn, some large, then a close: all arrive, in order."""
    await receive()
    await send({"type": "websocket.accept"})
    for number in range(BURST):
        text = str(number)
        await send(
            {"type": "websocket.send", "text": text + "." * (70000 if number % 97 == 0 else 0)}
        )
    await send({"type": "websocket.close", "code": 4002})


BURST = 2000
DISCONNECTS: list[dict[str, Any]] = []
SENT = [0]

ROUTES = {
    "/echo": echo,
    "/wrong-echo": wrong_echo,
    "/scope": scope_view,
    "/refuse": refuse,
    "/deny": deny,
    "/return": accept_and_return,
    "/crash-before": crash_before,
    "/crash-after": crash_after,
    "/report": report_disconnect,
    "/last-disconnect": last_disconnect,
    "/late-accept": late_accept,
    "/hold": hold,
    "/flood": flood,
    "/flood-small": flood_small,
    "/burst": burst,
}
