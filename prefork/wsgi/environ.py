"""PEP 3333 environ construction.

The keys that never change within a worker are built once (`template`); a
request copies that dict and adds its own keys.  Header names map to CGI keys
(`user-agent` -> `HTTP_USER_AGENT`) through a bounded cache, since a worker
sees the same few dozen names over and over.  Header names with underscores
never get here (the connection drops them), so `X_Foo` cannot pose as `X-Foo`.
"""

from __future__ import annotations

import sys
from typing import Any, Final

from prefork.http.forwarded import Forwarded
from prefork.http.response import SERVER_SOFTWARE
from prefork.tls import PeerTLS, wsgi_environ
from prefork.wsgi.file_wrapper import FileWrapper

_KEY_CACHE_MAX: Final = 1024
KEYS: dict[bytes, str] = {
    b"content-type": "CONTENT_TYPE",
    b"content-length": "CONTENT_LENGTH",
}


def template(root_path: str, secure: bool, multithread: bool) -> dict[str, Any]:
    """The keys every request of this worker shares (`secure`: served over TLS)."""
    return {
        "SCRIPT_NAME": root_path.rstrip("/"),
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https" if secure else "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": multithread,
        # PEP 3333: true if the app "may be simultaneously invoked by another
        # process". Always so here, even with --workers 1: a rolling reload, a
        # --max-requests or --max-memory replacement runs the new worker beside
        # the old one, and `prefork scale`/TTIN can add workers at any time.
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
    }


def connection_environ(
    template: dict[str, Any],
    sockname: tuple[str, int] | None,
    client: tuple[str, int] | None,
    peer: PeerTLS | None = None,
) -> dict[str, Any]:
    """The environ keys shared by every request of one connection."""
    environ = template.copy()
    if peer is not None:
        environ.update(wsgi_environ(peer))
    environ["SERVER_NAME"] = sockname[0] if sockname else "localhost"
    environ["SERVER_PORT"] = str(sockname[1]) if sockname else "80"
    # A unix socket peer has no address; it is local by definition.
    environ["REMOTE_ADDR"] = client[0] if client else "127.0.0.1"
    if client:
        environ["REMOTE_PORT"] = str(client[1])
    return environ


def apply_forwarded(environ: dict[str, Any], view: Forwarded) -> None:
    """What a trusted proxy said: the client, the scheme and the server (HTTP_HOST comes
    from the request headers, where the connection already put a forwarded Host)."""
    environ["wsgi.url_scheme"] = view.scheme
    if view.client is not None:
        environ["REMOTE_ADDR"] = view.client[0]
        environ["REMOTE_PORT"] = str(view.client[1])
    if view.server is not None:
        environ["SERVER_NAME"] = view.server[0]
        environ["SERVER_PORT"] = str(view.server[1])


def header_key(name: bytes) -> str:
    key = KEYS.get(name)
    if key is None:
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        if len(KEYS) < _KEY_CACHE_MAX:
            KEYS[name] = key
    return key


def join_repeated(environ: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    """Set each header's key to all its fields' values, joined as RFC 9110 5.3 says:
    with commas (cookies with "; ", RFC 6265)."""
    joined: dict[str, str] = {}
    for name, value in headers:
        key = header_key(name)
        text = value.decode("latin-1")
        if key in joined:
            separator = "; " if key == "HTTP_COOKIE" else ","
            text = joined[key] + separator + text
        joined[key] = text
    environ.update(joined)
