"""Frames sent during one event-loop turn, written once per connection when it ends.

A broadcast sends one message to every member of a room; when several
messages go out in the same turn (two publishers, a burst), writing each
frame as it is sent costs one send(2) per frame per member, and the kernel's
loopback or TCP path is most of a delivery's cost.  Sessions therefore queue
their small frames (`WebSocketSession.send`) and register here once per turn;
one callback at the start of the next loop iteration writes each session's
frames with one `transport.write`.  uWebSockets calls the same thing corking.

The delay is one loop iteration (no timer), and it is bounded in bytes too:
a session writes its queue at once when it passes `PENDING_HIGH`, so an app
that sends in a loop without awaiting anything else still reaches the
transport's high-water mark and `drain()` (backpressure is unchanged).
"""

from __future__ import annotations

import asyncio
from typing import Final, Protocol

# Past this many queued bytes a session writes at once instead of at the turn's end.
PENDING_HIGH: Final = 65536


class Writer(Protocol):
    def write_pending(self) -> None: ...


class Outbox:
    """One per worker loop: the sessions holding frames queued this turn."""

    __slots__ = ("loop", "scheduled", "writers")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.writers: list[Writer] = []
        self.scheduled = False

    def add(self, writer: Writer) -> None:
        """`writer` queued its first frame of this turn."""
        self.writers.append(writer)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        writers, self.writers = self.writers, []
        for writer in writers:
            writer.write_pending()
