"""What serving leaves behind: no object, and no reference cycle for the collector."""

from __future__ import annotations

import gc

import pytest

from benchmarks import apps
from prefork.http.connection import HttpConnection
from tests.protocol_harness import run_exchange

APPS = {"wsgi": apps.wsgi_plaintext, "asgi": apps.asgi_plaintext}


@pytest.mark.parametrize("interface", ["wsgi", "asgi"])
def test_served_requests_leave_no_object_behind(interface: str) -> None:
    # mypyc leaked each request's header list when Exchange allowed Python
    # subclasses: 1 KiB per request, and the collector's passes over the
    # leaked lists were 100 ms stalls at the 99th percentile under wrk.
    probe = b"leak-probe.example"
    request = b"GET /plaintext HTTP/1.1\r\nHost: " + probe + b"\r\n\r\n"
    outcome = run_exchange(APPS[interface], [request] * 200, max_rounds=20)
    assert outcome.raw.count(b"HTTP/1.1 200 ") == 200
    gc.collect()
    left = [o for o in gc.get_objects() if type(o) is list and o and o[0] == (b"host", probe)]
    assert left == []


@pytest.mark.parametrize("interface", ["wsgi", "asgi"])
def test_a_closed_connection_is_freed_without_the_collector(interface: str) -> None:
    # A connection in a reference cycle (its parser holds its callbacks) is
    # freed only by the collector: with a new connection per request that
    # was a tenth of a worker's time, in passes of up to 3 ms.
    request = b"GET /plaintext HTTP/1.1\r\nHost: cycle.example\r\nConnection: close\r\n\r\n"
    gc.collect()
    gc.disable()
    try:
        outcome = run_exchange(APPS[interface], request)
        gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds is kept, to be seen
        gc.collect()
        in_cycles = [o for o in gc.garbage if isinstance(o, HttpConnection)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert outcome.closed and outcome.statuses == [200]
    assert in_cycles == []
