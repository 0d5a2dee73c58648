"""The worker <-> master channel: one SOCK_SEQPACKET socketpair per worker.

SEQPACKET keeps message boundaries, so each send is one small JSON object
and the reader needs no framing; EOF (the peer's end closed, i.e. the peer
died) is a zero-length read, which is how a worker notices its master is
gone.  Both ends are non-blocking: a message that cannot be sent now is
dropped (only heartbeats could pile up, and a newer one follows each
second), so neither process can ever block on the other.

Worker -> master messages, in the order a worker sends them (`WorkerMessage`):

    Booted     the app is imported: its interface, and whether it was detected
    Ready      it accepts connections
    Heartbeat  once a second: its `Counters` (and metrics with --metrics-bind)
    Failed     it could not boot (status 3 or 4, one line, the traceback); it exits
    Retire     it stopped taking new work (--max-requests, --max-memory); `now`:
               it is draining already, replace it without waiting for a
               replacement to be ready

The master talks to workers with signals (TERM drain, QUIT/INT now, USR1
reopen logs) and one message, `Drain`, sent just before a TERM (`restart`:
the master keeps serving, e.g. a reload).

Master and worker are always the same version of prefork, so the wire
format is internal: the JSON of these TypedDicts, no more.
"""

from __future__ import annotations

import json
import socket
from typing import Any, Final, Literal, NotRequired, TypedDict, cast

MAX_MESSAGE: Final = 65536


class Counters(TypedDict):
    """A worker's counters as of its last heartbeat."""

    requests: int
    inflight: int
    connections: int
    websockets: int
    rss: int  # bytes


CounterName = Literal["requests", "inflight", "connections", "websockets", "rss"]


def no_counters() -> Counters:
    """Before a worker's first heartbeat."""
    return Counters(requests=0, inflight=0, connections=0, websockets=0, rss=0)


class Booted(TypedDict):
    type: Literal["booted"]
    declared: str  # the app's interface as the log names it
    detected: bool


class Ready(TypedDict):
    type: Literal["ready"]


class Heartbeat(TypedDict):
    type: Literal["heartbeat"]
    counters: Counters
    metrics: NotRequired[dict[str, Any]]  # observe/metrics.py's snapshot


class Failed(TypedDict):
    type: Literal["failed"]
    status: int  # the exit status that follows: EXIT_BOOT or EXIT_IMPORT
    error: str  # one line
    traceback: str  # the user's traceback behind it, or ""


RetireReason = Literal["max-requests", "memory"]


class Retire(TypedDict):
    type: Literal["retire"]
    reason: RetireReason
    detail: str  # one line for the log
    now: bool


class Drain(TypedDict):
    type: Literal["drain"]
    restart: bool


WorkerMessage = Booted | Ready | Heartbeat | Failed | Retire
Message = WorkerMessage | Drain
_TYPES: Final = frozenset({"booted", "ready", "heartbeat", "failed", "retire", "drain"})


class Channel:
    """One end of a worker's channel: non-blocking sends, every waiting message per read."""

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
        """Send one message now, or drop it (False) if it cannot go without blocking."""
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
            if isinstance(message, dict) and message.get("type") in _TYPES:
                # The peer is this same prefork (see the module docstring).
                messages.append(cast("Message", message))

    def close(self) -> None:
        self.sock.close()
