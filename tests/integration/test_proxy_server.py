"""Forwarded client information through a real server, for both interfaces.

A trusted peer's X-Forwarded-* / Forwarded headers reach the ASGI scope,
the WSGI environ and the access log; an untrusted peer's headers pass
through to the app untouched and change nothing.  The parsing rules
themselves are table-tested in tests/unit/test_forwarded.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from tests.server import Server, SharedServers, run_server

IO_TIMEOUT: Final = 15.0
APPS: Final = {
    "inline": ("tests.apps.proxy_app:wsgi_app",),
    "threads": ("tests.apps.proxy_app:wsgi_app", "--threads", "2"),
    "asgi": ("tests.apps.proxy_app:asgi_app",),
}
TRUST: Final = {
    "default": (),
    "elsewhere": ("--forwarded-allow-ips", "10.0.0.0/8"),
}
COMMON: Final = ("-w", "1", "--graceful-timeout", "1", "--access-logfile", "/dev/stderr")
NGINX: Final = {
    "X-Forwarded-For": "6.6.6.6, 203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "shop.example",
}


def server_for(shared_server: SharedServers, mode: str, trust: str = "default") -> Server:
    return shared_server(*APPS[mode], *TRUST[trust], *COMMON)


def seen(client: httpx.Client, url: str, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get(url, headers=headers)
    assert response.status_code == 200
    result: dict[str, Any] = json.loads(response.text)
    return result


@pytest.mark.parametrize("mode", list(APPS))
def test_trusted_proxy_is_believed(shared_server: SharedServers, mode: str) -> None:
    server = server_for(shared_server, mode)
    start = len(server.lines)
    with httpx.Client(timeout=IO_TIMEOUT) as client:
        view = seen(client, server.url + "/believed", NGINX)
        # The same keep-alive connection, no forwarding headers: nothing carries over.
        direct = seen(client, server.url + "/direct", {})
    assert view["client"] == ["203.0.113.7", 0]
    assert view["scheme"] == "https"
    assert view["server"] == ["shop.example", 443]
    assert view["host"] == "shop.example"
    assert direct["client"][0] == "127.0.0.1"
    assert direct["client"][1] != 0
    assert direct["scheme"] == "http"
    assert direct["server"] == ["127.0.0.1", server.port]
    assert direct["host"] == f"127.0.0.1:{server.port}"
    server.wait_for_log(r'^203\.0\.113\.7 - - \[.*"GET /believed HTTP/1\.1" 200', start=start)


@pytest.mark.parametrize("mode", list(APPS))
def test_rfc7239_forwarded(shared_server: SharedServers, mode: str) -> None:
    server = server_for(shared_server, mode)
    header = 'for=6.6.6.6, for="[2001:db8::1]:4711";proto=https;host="shop.example:8443"'
    with httpx.Client(timeout=IO_TIMEOUT) as client:
        view = seen(client, server.url, {"Forwarded": header})
    assert view["client"] == ["2001:db8::1", 4711]
    assert view["scheme"] == "https"
    assert view["server"] == ["shop.example", 8443]
    assert view["host"] == "shop.example:8443"


@pytest.mark.parametrize("mode", list(APPS))
def test_untrusted_peer_is_not_believed(shared_server: SharedServers, mode: str) -> None:
    server = server_for(shared_server, mode, "elsewhere")
    start = len(server.lines)
    with httpx.Client(timeout=IO_TIMEOUT) as client:
        view = seen(client, server.url + "/forged", {**NGINX, "Forwarded": "for=1.1.1.1"})
    assert view["client"][0] == "127.0.0.1"
    assert view["scheme"] == "http"
    assert view["server"] == ["127.0.0.1", server.port]
    assert view["host"] == f"127.0.0.1:{server.port}"
    assert view["x_forwarded_for"] == NGINX["X-Forwarded-For"]  # passed through untouched
    server.wait_for_log(r'^127\.0\.0\.1 - - \[.*"GET /forged HTTP/1\.1" 200', start=start)


@pytest.mark.parametrize("mode", list(APPS))
def test_malformed_values_are_ignored(shared_server: SharedServers, mode: str) -> None:
    server = server_for(shared_server, mode)
    bad = {"X-Forwarded-For": "not an address", "X-Forwarded-Port": "99999"}
    with httpx.Client(timeout=IO_TIMEOUT) as client:
        view = seen(client, server.url, {**bad, "X-Forwarded-Proto": "https"})
    assert view["client"][0] == "127.0.0.1"
    assert view["scheme"] == "https"  # the well-formed part still counts
    assert view["server"] == ["127.0.0.1", server.port]


def unix_view(server: Server, socket_path: Path) -> dict[str, Any]:
    transport = httpx.HTTPTransport(uds=str(socket_path))
    with httpx.Client(transport=transport, timeout=IO_TIMEOUT) as client:
        return seen(client, "http://app.test/", NGINX)


@pytest.mark.parametrize("interface", ["wsgi", "asgi"])
@pytest.mark.parametrize(
    ("trust", "believed"), [((), True), (("--forwarded-allow-ips", "127.0.0.1"), False)]
)
def test_unix_socket_peer(
    tmp_path: Path, interface: str, trust: tuple[str, ...], believed: bool
) -> None:
    socket_path = tmp_path / "app.sock"
    app = f"tests.apps.proxy_app:{interface}_app"
    with run_server(app, "-w", "1", *trust, bind=[f"unix:{socket_path}"]) as server:
        view = unix_view(server, socket_path)
    if believed:
        assert view["client"] == ["203.0.113.7", 0]
        assert view["scheme"] == "https"
        assert view["host"] == "shop.example"
    else:
        assert view["client"] in (None, ["127.0.0.1", None])  # ASGI None; WSGI's unix default
        assert view["scheme"] == "http"
        assert view["host"] == "app.test"
