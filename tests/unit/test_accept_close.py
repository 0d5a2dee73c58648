"""Closing a listener: the queue of one of its own is served, a shared one is left."""

from __future__ import annotations

import asyncio
import socket
from typing import cast

import pytest
import uvloop

from prefork import balance
from prefork.http.accept import Acceptor


class Greeter(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.WriteTransport, transport).write(b"hello")
        transport.close()


@pytest.mark.parametrize("own", [True, False], ids=["own", "shared"])
def test_a_closing_listener_serves_its_own_queue_and_leaves_a_shared_one(own: bool) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    address = listener.getsockname()
    loop = uvloop.new_event_loop()
    # --reuse-port: the worker's socket is the only copy; shared: the master keeps one.
    sock = listener if own else listener.dup()
    acceptor = Acceptor(loop, sock, Greeter, own=own)
    clients = [socket.create_connection(address, timeout=5) for _ in range(3)]
    try:
        acceptor.start()  # the loop never runs before close: all three stay queued
        acceptor.close()
        loop.run_until_complete(asyncio.sleep(0.05))
        if own:
            # Closed with them still queued, the kernel would reset all three.
            assert [client.recv(16) for client in clients] == [b"hello"] * 3
        else:
            assert balance.AcceptQueue(listener).length() == 3  # for a sibling to take
    finally:
        for client in clients:
            client.close()
        listener.close()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
