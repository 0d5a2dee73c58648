"""The ASGI lifespan protocol, run once per worker around serving.

Modes (--lifespan): `auto` runs it and carries on when the app does not
support it (it raised before asking for the first event); `on` treats that
as a boot failure; `off` never calls the app with a lifespan scope.
A `lifespan.startup.failed` message, or an exception after the app took the
startup event, is always a boot failure (exit 3): an app that says it cannot
start must not serve.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from prefork.asgi.types import ASGIApp, Message
from prefork.errors import BootError

LOGGER: Final = logging.getLogger("prefork")


class Lifespan:
    def __init__(self, app: ASGIApp, mode: str, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.mode = mode
        self.loop = loop
        self.state: dict[str, Any] = {}
        self._events: asyncio.Queue[Message] = asyncio.Queue()
        self._replies: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._supported = False
        self._started = False  # the app has received lifespan.startup

    async def startup(self) -> None:
        if self.mode == "off":
            return
        self._task = self.loop.create_task(self._run())
        await self._events.put({"type": "lifespan.startup"})
        reply = await self._next_reply()
        if reply is None:
            return  # auto mode, unsupported
        if reply["type"] == "lifespan.startup.failed":
            raise BootError(f"lifespan startup failed: {reply.get('message', '')}".rstrip(": "))
        if reply["type"] != "lifespan.startup.complete":
            raise BootError(f"lifespan startup: unexpected message {reply['type']!r}")

    async def shutdown(self) -> None:
        if not self._supported or self._task is None or self._task.done():
            return
        await self._events.put({"type": "lifespan.shutdown"})
        reply = await self._next_reply()
        if reply is not None and reply["type"] == "lifespan.shutdown.failed":
            LOGGER.error("Lifespan shutdown failed: %s", reply.get("message", ""))

    async def _next_reply(self) -> Message | None:
        assert self._task is not None
        getter = self.loop.create_task(self._replies.get())
        await asyncio.wait({getter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        exc = self._task.exception()
        if not self._started and self.mode == "auto":
            LOGGER.info("ASGI lifespan not supported by the app; continuing without it")
            return None
        if exc is not None:
            raise BootError(f"lifespan failed: {type(exc).__name__}: {exc}")
        raise BootError("lifespan: the app returned without answering")

    async def _run(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "state": self.state,
        }
        await self.app(scope, self._receive, self._send)

    async def _receive(self) -> Message:
        event = await self._events.get()
        if event["type"] == "lifespan.startup":
            self._started = True
        return event

    async def _send(self, message: Message) -> None:
        self._supported = True
        await self._replies.put(message)
