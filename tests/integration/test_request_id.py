"""`--request-id`: a trusted proxy's X-Request-ID is kept, any other request gets a new one."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.server import run_server

GENERATED = re.compile(r"[0-9a-f]{12}-[0-9a-f]+")


def ids_seen(url: str, sent: str | None = None) -> list[str]:
    headers = {"X-Request-ID": sent} if sent is not None else {}
    view = httpx.get(url + "/", headers=headers, timeout=10).json()
    return [value for name, value in view["headers"] if name == "x-request-id"]


@pytest.mark.parametrize("app", ["wsgi_app", "asgi_app"])
def test_ids_are_generated_and_a_trusted_proxys_is_kept(tmp_path: Path, app: str) -> None:
    access = tmp_path / "access.log"
    fmt = "%({x-request-id}i)s"
    args = ("--request-id", "--access-logfile", str(access), "--access-logformat", fmt)
    with run_server(f"tests.apps.hardening_echo:{app}", *args) as server:
        first, second = ids_seen(server.url), ids_seen(server.url)
        assert len(first) == 1 and GENERATED.fullmatch(first[0]), first
        assert len(second) == 1 and second != first
        # 127.0.0.1 is trusted by default: the proxy's id is kept, not doubled.
        assert ids_seen(server.url, "from-nginx-42") == ["from-nginx-42"]
    logged = access.read_text().splitlines()
    assert logged == [first[0], second[0], "from-nginx-42"]


def test_an_untrusted_clients_id_is_replaced() -> None:
    args = ("--request-id", "--forwarded-allow-ips", "")
    with run_server("tests.apps.hardening_echo:wsgi_app", *args) as server:
        seen = ids_seen(server.url, "chosen-by-the-client")
        assert len(seen) == 1 and GENERATED.fullmatch(seen[0]), seen


def test_off_by_default_the_header_passes_through() -> None:
    with run_server("tests.apps.hardening_echo:wsgi_app") as server:
        assert ids_seen(server.url) == []
        assert ids_seen(server.url, "anything") == ["anything"]
