"""Frames queued for the end of the loop turn (prefork/ws/outbox.py) keep their guarantees.

Order: what an app sends in one turn, small and large frames and the close
after them, reaches the client in the order sent.  Backpressure: an app
that sends small messages without awaiting anything else still stalls on a
client that does not read.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import pytest

from tests.apps.ws_app import BURST
from tests.integration.test_websocket import APP, raw_handshake, read_frame, worker_rss
from tests.server import Server, run_server


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with run_server(APP, "-w", "1", "--graceful-timeout", "1") as srv:
        yield srv


def test_a_burst_then_a_close_arrives_complete_and_in_order(server: Server) -> None:
    with raw_handshake(server, "/burst") as sock:
        received = []
        while True:
            _, opcode, payload = read_frame(sock)
            if opcode == 0x8:
                break
            received.append(int(payload.rstrip(b".")))
    assert received == list(range(BURST))
    assert struct.unpack("!H", payload[:2])[0] == 4002


def test_small_sends_to_a_client_that_does_not_read_stall_the_app(server: Server) -> None:
    before = worker_rss(server)
    with raw_handshake(server, "/flood-small") as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        time.sleep(3)  # the app sends as fast as it may, for 3 s
        grown = worker_rss(server) - before
    assert grown < 64 * 2**20, f"worker grew {grown >> 20} MiB for a client that does not read"
