"""The protocol-switch seam: how a layer above HTTP takes over a connection.

A request carrying `Upgrade` and `Connection: upgrade` (llhttp's
`should_upgrade`) is offered to `ServerState.upgrade`, the hook the worker
installs (the ASGI WebSocket adapter, for instance).  The hook returns None to
decline, and the request is served as ordinary HTTP (RFC 9110 7.8 lets a
server ignore the offer), or a `Switch`.  Once llhttp stops at the end of the
head, the connection calls the switch with its transport and the bytes
already read past the head, forgets the connection, and never touches the
transport again.

The new protocol registers a `Session` with the server state (`adopt`) so
the worker can still count it, tick it once a second, drain it and abort it;
it calls `release` once its transport is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from prefork.http.connection import HttpConnection

Switch = Callable[[asyncio.Transport, bytes], None]


class UpgradeHook(Protocol):
    def __call__(
        self,
        conn: HttpConnection,
        method: bytes,
        target: bytes,
        version: str,
        headers: list[tuple[bytes, bytes]],
    ) -> Switch | None: ...


class Session(Protocol):
    """An upgraded connection, as the worker's server sees it."""

    def tick(self, now: float) -> None:
        """Called once a second (the server clock): keepalive and timeouts."""

    def shutdown(self, restart: bool) -> None:
        """The worker is going away (`restart`: it is being replaced): close politely."""

    def abort(self) -> None:
        """Close the transport now."""
