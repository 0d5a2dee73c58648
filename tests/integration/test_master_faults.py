"""The master survives a bug in one of its policies; the workers keep serving.

The fault is injected from outside the product: a `sitecustomize` module on
the master's PYTHONPATH patches the scaling policy (what TTIN runs) to raise.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from tests.server import ROOT, Serve

WSGI = "tests.apps.proc_app:wsgi"
FAULTY_SCALING = """\
from prefork.master import arbiter

_scale = arbiter.Arbiter.scale
_faults = {{"left": {faults}}}


def scale(self, count):
    if _faults["left"]:
        _faults["left"] -= 1
        raise RuntimeError("injected fault in the scaling policy")
    _scale(self, count)


arbiter.Arbiter.scale = scale
"""


def faulty_env(tmp_path: Path, faults: int) -> dict[str, str]:
    (tmp_path / "sitecustomize.py").write_text(FAULTY_SCALING.format(faults=faults))
    return {"PYTHONPATH": f"{tmp_path}:{ROOT}"}


def test_a_fault_is_logged_and_the_in_flight_request_finishes(tmp_path: Path, serve: Serve) -> None:
    mark = tmp_path / "started"
    server = serve(WSGI, env=faulty_env(tmp_path, faults=1))
    result: dict[str, httpx.Response] = {}
    client = threading.Thread(
        target=lambda: result.update(slow=httpx.get(f"{server.url}/slow?{mark}", timeout=30))
    )
    client.start()
    try:
        deadline = time.monotonic() + 20
        while not mark.exists():  # the request is in the app now
            assert time.monotonic() < deadline, "the slow request never started"
            time.sleep(0.02)
        start = len(server.lines)
        server.signal(signal.SIGTTIN)
        server.wait_for_log(
            r"Unexpected error in the master; the workers keep serving", start=start
        )
        server.wait_for_log(r"RuntimeError: injected fault in the scaling policy", start=start)
    finally:
        client.join(30)
    assert result["slow"].status_code == 200
    # Still supervising: the next TTIN works.
    start = len(server.lines)
    server.signal(signal.SIGTTIN)
    server.wait_for_log(r"Scaling: 1 -> 2 workers", start=start)
    server.wait_for_log(r"Booting worker 1", start=start)
    assert server.proc.poll() is None


def test_repeated_faults_stop_the_master_gracefully(tmp_path: Path, serve: Serve) -> None:
    server = serve(WSGI, env=faulty_env(tmp_path, faults=1000))
    for _ in range(5):
        start = len(server.lines)
        server.signal(signal.SIGTTIN)
        server.wait_for_log(r"Unexpected error in the master", start=start)
    server.wait_for_log(r"Stopping gracefully: 5 unexpected errors within 60s")
    assert server.wait(30) == 1
    assert "Stopping (graceful)" in server.log
