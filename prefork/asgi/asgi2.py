"""ASGI 2 ("double callable") applications run through the ASGI 3 code path."""

from __future__ import annotations

from typing import Any

from prefork.asgi.types import ASGIReceive, ASGISend, Scope


class ASGI2Adapter:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
        instance = self.app(scope)
        await instance(receive, send)
