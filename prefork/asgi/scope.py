"""The ASGI connection scope: one builder for `http` and `websocket` scopes.

`ASGIAdapter` is what the scopes (and the exchanges) draw from: the ASGI
interface's state for one server, built by the worker (worker/compose.py).

Both describe one request head the same way (ASGI spec 2.4): where it came
from (`client`, `server`, `scheme`, after what a trusted proxy said, see
http/forwarded.py), what it asked for (`path` percent-decoded under
`root_path`, `raw_path`, `query_string`, `headers`), and a copy of the
lifespan `state`.  The callers add what only their kind has (`method`,
`subprotocols`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import unquote

from prefork.asgi.types import ASGIApp
from prefork.http.exchange import split_target
from prefork.observe.accesslog import AccessLog

if TYPE_CHECKING:
    from prefork.http.connection import HttpConnection
    from prefork.http.forwarded import Forwarded

ASGI_VERSION: Final = {"version": "3.0", "spec_version": "2.4"}
# scope type -> (scheme without TLS, scheme with TLS)
_SCHEMES: Final = {"http": ("http", "https"), "websocket": ("ws", "wss")}


@dataclass(frozen=True, slots=True)
class ASGIAdapter:
    """What the ASGI interface keeps for one server (`ServerState.adapter`)."""

    app: ASGIApp  # ASGI 3 (loader.py wraps an ASGI 2 app)
    app_state: dict[str, Any]  # lifespan state; each scope gets a shallow copy
    root_path: str  # --root-path
    secure: bool  # served over TLS: `https` and `wss`
    access_log: AccessLog


def connection_scope(
    kind: Literal["http", "websocket"],
    conn: HttpConnection,
    view: Forwarded | None,
    version: str,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    extensions: dict[str, Any],
) -> dict[str, Any]:
    """The scope of `kind` ("http" or "websocket") for one request head on `conn`."""
    adapter: ASGIAdapter = conn.state.adapter
    client = conn.client
    server = conn.sockname
    secure = adapter.secure
    if view is not None:  # a trusted proxy's word
        if view.client is not None:
            client = view.client
        server = view.server
        secure = view.scheme == "https"
    raw_path, query = split_target(target)
    path = raw_path.decode("ascii")
    if raw_path.find(b"%") >= 0:  # find(), not `in`: see on_header in http/connection.py
        path = unquote(path)
    root_path = adapter.root_path
    return {
        "type": kind,
        "asgi": ASGI_VERSION,
        "http_version": version,
        "server": server,
        "client": client,
        "scheme": _SCHEMES[kind][secure],
        "root_path": root_path,
        "path": root_path + path if root_path else path,
        "raw_path": raw_path,
        "query_string": query,
        "headers": headers,
        "state": adapter.app_state.copy(),
        "extensions": extensions,
    }
