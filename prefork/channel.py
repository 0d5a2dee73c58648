"""The worker <-> master channel: one SOCK_SEQPACKET socketpair per worker.

SEQPACKET keeps message boundaries, so each send is one small JSON object
and the reader needs no framing; EOF (the peer's end closed, i.e. the peer
died) is a zero-length read, which is how a worker notices its master is
gone.  Both ends are non-blocking: a message that cannot be sent now is
dropped (only heartbeats could pile up, and a newer one follows each
second), so neither process can ever block on the other.

Worker -> master messages (`t` is the type):

    {"t": "booted", "interface": "wsgi"|"asgi", "declared": ..., "detected": bool}
    {"t": "ready"}
    {"t": "hb", "requests": n, "inflight": n, "connections": n, "websockets": n,
     "rejected": n, "rss": bytes}
    {"t": "failed", "status": 3|4, "error": "one line"}   (then the worker exits)
    {"t": "retire", "reason": "max-requests"|"memory", "detail": "one line", "now": bool}
        (it stopped taking new work; `now`: it is draining already, replace it
        without waiting for a replacement to be ready)

The master talks to workers with signals (TERM drain, QUIT/INT now, USR1
reopen logs) and one message, sent just before a TERM:

    {"t": "drain", "restart": bool}   (true: the master keeps serving, e.g. a reload)
"""

from __future__ import annotations

import json
import socket
from typing import Any, Final

MAX_MESSAGE: Final = 65536

Message = dict[str, Any]


class Channel:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.setblocking(False)

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        """(master end, worker end); neither is inherited across exec."""
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        return cls(a), cls(b)

    def fileno(self) -> int:
        return self.sock.fileno()

    @property
    def closed(self) -> bool:
        return self.sock.fileno() < 0

    def send(self, message: Message) -> bool:
        data = json.dumps(message, separators=(",", ":")).encode()
        try:
            self.sock.send(data)
        except (BlockingIOError, BrokenPipeError, ConnectionError, OSError):
            return False
        return True

    def receive(self) -> tuple[list[Message], bool]:
        """Every message waiting now, and whether the peer has gone (EOF)."""
        messages: list[Message] = []
        while True:
            try:
                data = self.sock.recv(MAX_MESSAGE)
            except BlockingIOError:
                return messages, False
            except OSError:
                return messages, True
            if not data:
                return messages, True
            try:
                message = json.loads(data)
            except ValueError:
                continue  # a peer bug must not take the master down
            if isinstance(message, dict):
                messages.append(message)

    def close(self) -> None:
        self.sock.close()
