"""An idle worker carries only what serving needs: features load on first use.

Every module a worker imports, or inherits from the master's heap through
fork(), is resident in every worker (docs/profile.md, "Idle memory").  These
tests pin the imports that were made lazy, through an app that lists its
worker's sys.modules, and check that each feature still works on its first
use.  sys.modules, not an RSS threshold: RSS moves with the machine.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from functools import cache

import httpx
from websockets.sync.client import connect

from tests.server import ROOT, Server, run_server

# Imported by nobody a plain worker needs: the WebSocket stack (websockets
# alone brings importlib.metadata, email and zipfile), the request-body spool,
# what the master uses only for itself.
NEVER_WHEN_IDLE = ("websockets", "importlib.metadata", "tempfile", "psutil", "difflib", "random")


@cache
def loaded_by_the_interpreter() -> frozenset[str]:
    """What this interpreter imports before any prefork code runs.

    A site-packages .pth file may import anything at startup (CI's image has
    one that loads certifi, hence tempfile and random); that is the machine's,
    not the worker's, and no laziness in prefork can avoid it.
    """
    listing = subprocess.run(
        [sys.executable, "-c", "import sys; print(*sys.modules, sep='\\n')"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return frozenset(listing.stdout.split())


def imported_by_prefork(loaded: set[str]) -> set[str]:
    return loaded.intersection(NEVER_WHEN_IDLE) - loaded_by_the_interpreter()


def worker_modules(server: Server) -> set[str]:
    response = httpx.get(server.url + "/modules", timeout=10)
    assert response.status_code == 200
    return set(response.text.split("\n"))


def test_an_idle_wsgi_worker_imports_no_feature_it_has_not_used() -> None:
    with run_server("tests.apps.modules_app:wsgi", "-w", "1") as server:
        loaded = worker_modules(server)
        assert "prefork.wsgi.inline" in loaded  # the listing is the worker's
        assert not imported_by_prefork(loaded)
        # A body over the in-memory limit is spooled to a file, imported now.
        body = bytes(range(256)) * (6 * 1024)  # 1.5 MiB
        answer = httpx.post(server.url + "/size", content=body, timeout=30)
        assert answer.text == f"{len(body)} {hashlib.sha256(body).hexdigest()}"
        assert "tempfile" in worker_modules(server)


def test_an_asgi_worker_imports_websockets_with_its_first_upgrade() -> None:
    with run_server("tests.apps.modules_app:asgi", "-w", "1") as server:
        loaded = worker_modules(server)
        assert "prefork.asgi.http" in loaded
        assert not imported_by_prefork(loaded)
        with connect(f"ws://127.0.0.1:{server.port}/", open_timeout=15) as websocket:
            websocket.send("first")
            assert websocket.recv(timeout=15) == "first"
        assert {"websockets", "prefork.asgi.websocket"} <= worker_modules(server)
