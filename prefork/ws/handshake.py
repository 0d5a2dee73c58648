"""The WebSocket opening handshake (RFC 6455 4.2), checked and negotiated by websockets.

prefork has already parsed and checked the HTTP head; this turns it into the
`websockets` library's Request, lets its sans-IO ServerProtocol validate the
handshake and negotiate permessage-deflate (RFC 7692, window bits included),
and returns either the accepted handshake or the refusal to send.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from websockets.datastructures import Headers
from websockets.extensions.base import Extension, ServerExtensionFactory
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.http11 import Request
from websockets.server import ServerProtocol

# websockets' own server defaults (enable_server_permessage_deflate): 12-bit
# windows and memLevel 5 bound zlib to tens of KiB per connection.
_DEFLATE: Final = ServerPerMessageDeflateFactory(
    server_max_window_bits=12,
    client_max_window_bits=12,
    compress_settings={"memLevel": 5},
)


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid handshake: the response headers websockets computed, and the extensions."""

    headers: list[tuple[bytes, bytes]]  # Upgrade, Connection, Sec-WebSocket-Accept/-Extensions
    extensions: list[Extension]


@dataclass(frozen=True, slots=True)
class Refused:
    status: int
    reason: str


def negotiate(
    method: bytes,
    target: bytes,
    version: str,
    headers: list[tuple[bytes, bytes]],
    deflate: bool,
) -> Accepted | Refused:
    if method != b"GET" or version != "1.1":
        return Refused(400, "invalid WebSocket handshake: it must be a GET over HTTP/1.1")
    request = Request(
        path=target.decode("latin-1"),
        headers=Headers((n.decode("latin-1"), v.decode("latin-1")) for n, v in headers),
    )
    factories: list[ServerExtensionFactory] = [_DEFLATE] if deflate else []
    protocol = ServerProtocol(extensions=factories)
    response = protocol.accept(request)
    if response.status_code != 101:
        exc = protocol.handshake_exc
        reason = str(exc) if exc is not None else response.reason_phrase
        # A request that is not a valid upgrade gets 400, whatever status websockets
        # chose: the client asked for something it cannot have.
        return Refused(400, f"invalid WebSocket handshake: {reason}")
    accepted = [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers.raw_items()
        if name.lower() != "date"  # the server clock's Date line is used instead
    ]
    return Accepted(accepted, protocol.extensions)


def subprotocols(headers: list[tuple[bytes, bytes]]) -> list[str]:
    """The subprotocols the client offered (Sec-WebSocket-Protocol), in its order."""
    offered: list[str] = []
    for name, value in headers:
        if name == b"sec-websocket-protocol":
            offered += [p.strip() for p in value.decode("latin-1").split(",") if p.strip()]
    return offered


def asks_for_websocket(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether `Upgrade` names websocket (h2c and other offers are not ours to take)."""
    return any(
        name == b"upgrade" and b"websocket" in value.lower().replace(b" ", b"").split(b",")
        for name, value in headers
    )
