"""One WebSocket connection after the protocol switch: bytes in, messages out.

Theory of operation
-------------------
The HTTP connection hands its transport over (http/upgrade.py) and the
session becomes the transport's protocol.  Until the interface adapter
accepts, the session is CONNECTING: nothing is parsed (a client must wait
for the 101), and the adapter may still answer with plain HTTP instead
(`respond`: a refusal, a denial response, a 403).  `accept` writes the 101
and starts framing with the `websockets` library's sans-IO `Protocol`, which
parses and serialises frames, answers pings, runs permessage-deflate,
enforces the message size (1009) and reports protocol errors (1002).  The
session adds what that layer leaves to its caller: reassembling fragments
into messages, UTF-8 validation of text as it arrives (1007, failing fast on
the first bad fragment), keepalive pings, timeouts, flow control and the
server-initiated close on drain.

Fast path: websockets' parser is a generator that costs several
microseconds per frame, as much as everything else of an echo round trip.
While nothing is half-parsed (its reader is empty, no fragmented message is
under way) and no extension was negotiated, `_fast_frames` takes whole,
final, masked text/binary frames within the size limit straight out of the
received bytes, and `send` builds unfragmented frames itself and queues
those under 64 KiB for the end of the loop turn (outbox.py), so that the
frames one connection gets in a turn leave in one write.  Anything
else, from the first byte that does not fit on (a control frame, a
fragment, a partial frame, invalid UTF-8, RSV bits), goes to websockets,
which therefore sees every frame that needs a decision.

States: CONNECTING -> OPEN -> CLOSING (a close frame was sent, or the peer's
was echoed) -> CLOSED (transport gone); CONNECTING -> CLOSED when answered
with HTTP.  `closed` (the code and reason the adapter reports as the
disconnect) is set exactly once, at the first of: the peer's close frame, a
close we sent on our own (protocol error, ping timeout, drain), the transport
closing (1006).

Flow control, both ways:
- incoming messages wait in `inbox` for the adapter; past INBOX_HIGH bytes
  reading pauses until the adapter has taken them, so an app that does not
  receive holds at most one maximum-size message plus INBOX_HIGH;
- `send` only queues (into `pending` for at most a turn and PENDING_HIGH
  bytes, then into the transport); the adapter awaits `drain()`,
  which waits while the transport is above its high-water mark, so a client
  that does not read stalls the app instead of growing the worker.  A client
  that reads nothing for --send-timeout is dropped.
"""

from __future__ import annotations

import asyncio
import codecs
import enum
import os
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, NamedTuple, cast

from websockets.extensions.base import Extension
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State

from prefork.ws.outbox import PENDING_HIGH, Outbox

try:
    from websockets.speedups import apply_mask
except ImportError:  # websockets built without its C extension
    from websockets.utils import apply_mask

if TYPE_CHECKING:
    from prefork.http.server import ServerState

INF: Final = float("inf")
# Pause reading when this much received data waits for the app; uvicorn and
# hypercorn use a queue of 16 messages, which bounds nothing when each may be
# 16 MiB.
INBOX_HIGH: Final = 65536
# How long the peer has to answer our close frame (websockets' close_timeout).
CLOSE_TIMEOUT: Final = 10.0

# RFC 6455 7.4.1
NORMAL: Final = 1000
GOING_AWAY: Final = 1001
ABNORMAL: Final = 1006
INVALID_DATA: Final = 1007
INTERNAL_ERROR: Final = 1011
SERVICE_RESTART: Final = 1012

_TEXT: Final = Opcode.TEXT
_BINARY: Final = Opcode.BINARY
_CONT: Final = Opcode.CONT
_CLOSE: Final = Opcode.CLOSE
_PONG: Final = Opcode.PONG
_OPEN: Final = State.OPEN
_SIMPLE: Final = frozenset((0x81, 0x82))  # first byte of a final text or binary frame


class _Framing(Protocol):
    """websockets' protocol, accepting a close in the middle of a fragmented message.

    RFC 6455 5.4 lets control frames, a close included, arrive between the
    fragments of a message; websockets fails that close with 1002, where
    Autobahn (case 7.1.5) and the RFC expect the close to be echoed.  The
    incomplete message is dropped.
    """

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is _CLOSE:
            self.current_size = None
        super().recv_frame(frame)


class Closed(NamedTuple):
    code: int
    reason: str


class Phase(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Limits:
    max_size: int | None
    ping_interval: float  # 0: no pings
    ping_timeout: float  # 0: wait for pongs forever
    send_timeout: float


class WebSocketSession(asyncio.Protocol):
    __slots__ = (
        "close_deadline",
        "closed",
        "decoder",
        "early",
        "fast",
        "fragments",
        "inbox",
        "inbox_bytes",
        "limits",
        "next_ping",
        "on_lost",
        "outbox",
        "pending",
        "pending_bytes",
        "phase",
        "ping_deadline",
        "ping_payload",
        "protocol",
        "reading_paused",
        "server",
        "transport",
        "waiter",
        "write_deadline",
        "write_waiters",
    )

    def __init__(
        self,
        server: ServerState,
        limits: Limits,
        outbox: Outbox,
        on_lost: Callable[[], None],
    ) -> None:
        self.server = server
        self.limits = limits
        self.outbox = outbox
        self.pending: list[bytes] | None = None  # frames queued this turn (outbox.py)
        self.pending_bytes = 0
        self.on_lost = on_lost  # the adapter's: the transport is gone
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by attach
        self.phase = Phase.CONNECTING
        self.protocol: Protocol | None = None  # framing, from accept on
        self.fast = False  # no extension negotiated: the fast path may run
        self.early = bytearray()  # bytes that arrived before the 101
        self.closed: Closed | None = None
        self.inbox: deque[str | bytes | Closed] = deque()
        self.inbox_bytes = 0
        self.waiter: asyncio.Future[None] | None = None
        self.fragments: list[str] | list[bytes] | None = None
        self.decoder: codecs.IncrementalDecoder | None = None
        self.reading_paused = False
        self.write_waiters: list[asyncio.Future[None]] = []
        self.write_deadline = INF
        self.close_deadline = INF
        self.next_ping = INF
        self.ping_deadline = INF
        self.ping_payload = b""

    # -- set-up: the connection's Switch, then the adapter's decision -----------

    def attach(self, transport: asyncio.Transport, rest: bytes) -> None:
        self.transport = transport
        transport.set_protocol(self)
        self.server.adopt(self)
        if rest:
            self.data_received(rest)

    def accept(self, headers: bytes, extensions: list[Extension]) -> None:
        """Send the 101 (`headers`: the header block after the status line) and start framing."""
        if self.phase is not Phase.CONNECTING:
            return  # the client left while the app decided; its sends will raise
        self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\n" + headers + b"\r\n")
        protocol = self.protocol = _Framing(Side.SERVER, state=_OPEN, max_size=self.limits.max_size)
        protocol.extensions = extensions
        self.fast = not extensions
        self.phase = Phase.OPEN
        if self.limits.ping_interval:
            self.next_ping = self.server.clock.now + self.limits.ping_interval
        early, self.early = bytes(self.early), bytearray()
        if early:
            self.data_received(early)

    def respond(self, data: bytes) -> None:
        """Answer with plain HTTP instead of a 101 (a complete response), then close."""
        self.phase = Phase.CLOSED
        if not self.transport.is_closing():
            self.transport.write(data)
            self.transport.close()

    # -- asyncio.Protocol --------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        protocol = self.protocol
        if protocol is None:
            if self.phase is Phase.CONNECTING:
                self.early += data
                if len(self.early) > INBOX_HIGH:  # frames before the 101: not a client
                    self.transport.abort()
            return
        if (
            self.fast
            and not protocol.reader.buffer
            and protocol.current_size is None
            and protocol.state is _OPEN
        ):
            data = self._fast_frames(data)
            if not data:
                return
        protocol.receive_data(data)
        for frame in cast("list[Frame]", protocol.events_received()):  # past the handshake
            opcode = frame.opcode
            if opcode is _TEXT or opcode is _BINARY or opcode is _CONT:
                if not self._data_frame(opcode, frame.data, frame.fin):
                    break
            elif opcode is _PONG:
                if frame.data == self.ping_payload:
                    self.ping_deadline = INF
            elif opcode is _CLOSE:
                rcvd = protocol.close_rcvd
                if rcvd is not None:
                    self._set_closed(rcvd.code, rcvd.reason)
        if protocol.state is not _OPEN:
            self._protocol_closing(protocol)
        self._flush()

    def _fast_frames(self, data: bytes) -> bytes:
        """Deliver the simple frames at the start of `data`; what is left for websockets."""
        offset = 0
        end = len(data)
        max_size = self.limits.max_size or end
        while end - offset >= 6:
            first = data[offset]
            second = data[offset + 1]
            # FIN, no RSV bit, text or binary, masked (RFC 6455 5.2), 7- or 16-bit length.
            if first not in _SIMPLE or second < 0x80 or second == 0xFF:
                break
            size = second & 0x7F
            mask = offset + 2
            if size == 126:
                size = (data[mask] << 8) | data[mask + 1]
                mask += 2
            start = mask + 4
            if start + size > end or size > max_size:
                break
            payload = apply_mask(data[start : start + size], data[mask:start])
            if first == 0x81:
                try:
                    self._deliver(payload.decode())
                except UnicodeDecodeError:
                    break  # websockets parses it again and the session fails it (1007)
            else:
                self._deliver(payload)
            offset = start + size
        return data[offset:] if offset else data

    def _data_frame(self, opcode: Opcode, data: bytes | bytearray | memoryview, fin: bool) -> bool:
        """Add a data frame to the message being received; False once the protocol failed."""
        if opcode is _TEXT and fin:
            try:
                self._deliver(bytes(data).decode())
            except UnicodeDecodeError as exc:
                assert self.protocol is not None
                self.protocol.fail(INVALID_DATA, f"invalid UTF-8 at position {exc.start}")
                return False
            return True
        if opcode is _TEXT or (opcode is _CONT and self.decoder is not None):
            decoder = self.decoder
            if decoder is None:
                decoder = self.decoder = _utf8_decoder()
            try:
                text = decoder.decode(data, fin)
            except UnicodeDecodeError as exc:
                assert self.protocol is not None
                self.protocol.fail(INVALID_DATA, f"invalid UTF-8 at position {exc.start}")
                return False
            if fin:
                self.decoder = None
                pieces = self.fragments
                self._deliver("".join(pieces) + text if pieces else text)  # type: ignore[arg-type]
                self.fragments = None
            elif self.fragments is None:
                self.fragments = [text]
            else:
                self.fragments.append(text)  # type: ignore[arg-type]
            return True
        chunk = data if type(data) is bytes else bytes(data)
        if fin:
            pieces = self.fragments
            self._deliver(b"".join(pieces) + chunk if pieces else chunk)  # type: ignore[arg-type]
            self.fragments = None
        elif self.fragments is None:
            self.fragments = [chunk]
        else:
            self.fragments.append(chunk)  # type: ignore[arg-type]
        return True

    def _deliver(self, message: str | bytes) -> None:
        self.inbox.append(message)
        self.inbox_bytes += len(message)
        if self.inbox_bytes > INBOX_HIGH and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def _protocol_closing(self, protocol: Protocol) -> None:
        """The protocol sent or received a close frame: report it and bound the wait."""
        if self.phase is Phase.OPEN:
            self.phase = Phase.CLOSING
            self.close_deadline = self.server.clock.now + CLOSE_TIMEOUT
            self.next_ping = self.ping_deadline = INF
        sent = protocol.close_sent
        if self.closed is None and sent is not None:
            # We failed the connection (1002, 1007, 1009): the app hears our code.
            self._set_closed(sent.code, sent.reason)

    def eof_received(self) -> bool | None:
        if self.protocol is not None:
            self.protocol.receive_eof()
            self._flush()
        return False  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self.phase = Phase.CLOSED
        self.pending = None
        self._set_closed(ABNORMAL, "")
        self.server.release(self)
        self._wake_writers()
        self.on_lost()

    def pause_writing(self) -> None:
        self.write_deadline = self.server.clock.now + self.limits.send_timeout

    def resume_writing(self) -> None:
        self.write_deadline = INF
        self._wake_writers()

    # -- the adapter's side --------------------------------------------------------

    async def receive(self) -> str | bytes | Closed:
        """The next message, or how the connection closed (then always that)."""
        inbox = self.inbox
        while not inbox:  # a Closed, once set, stays at the end of the inbox
            waiter = self.waiter = self.server.loop.create_future()
            await waiter
        message = inbox[0]
        if type(message) is Closed:
            return message
        inbox.popleft()
        self.inbox_bytes -= len(message)
        if (
            self.reading_paused
            and self.inbox_bytes <= INBOX_HIGH
            and not self.transport.is_closing()
        ):
            self.reading_paused = False
            self.transport.resume_reading()
        return message

    def send(self, message: str | bytes) -> None:
        protocol = self.protocol
        assert protocol is not None
        if self.fast and protocol.state is _OPEN and not protocol.expect_continuation_frame:
            # An unmasked, final, uncompressed frame: what websockets would write.
            if isinstance(message, str):
                data, first = _encoded(message), 0x81
            else:
                data, first = message, 0x82
            size = len(data)
            if size < 126:
                frame = bytes((first, size)) + data
            elif size < 65536:
                frame = struct.pack("!BBH", first, 126, size) + data
            else:
                self.write_pending()
                head = struct.pack("!BBQ", first, 127, size)
                self.transport.writelines((head, data))  # no copy of a large payload
                return
            pending = self.pending
            if pending is None:
                self.pending = [frame]
                self.pending_bytes = len(frame)
                self.outbox.add(self)
            else:
                pending.append(frame)
                self.pending_bytes += len(frame)
                if self.pending_bytes > PENDING_HIGH:
                    self.write_pending()
            return
        if isinstance(message, str):
            protocol.send_text(message.encode())
        else:
            protocol.send_binary(message)
        self._flush()

    def write_pending(self) -> None:
        """Write the frames queued this turn, in one piece."""
        pending = self.pending
        if pending is None:
            return
        self.pending = None
        if not self.transport.is_closing():
            self.transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    @property
    def writing_paused(self) -> bool:
        """The client is behind on reading: the sender should await `drain()`."""
        return self.write_deadline != INF

    async def drain(self) -> None:
        """Wait while the client is behind on reading what was sent."""
        if self.write_deadline != INF and self.phase is not Phase.CLOSED:
            waiter: asyncio.Future[None] = self.server.loop.create_future()
            self.write_waiters.append(waiter)
            await waiter

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake (no-op once it started)."""
        protocol = self.protocol
        if self.phase is not Phase.OPEN or protocol is None:
            return
        protocol.send_close(code, reason)
        self._protocol_closing(protocol)
        self._flush()

    @property
    def is_open(self) -> bool:
        return self.phase is Phase.OPEN

    def close_code(self) -> int:
        """The code that ended the session, for the access log."""
        protocol = self.protocol
        if protocol is not None:
            if protocol.close_rcvd is not None:
                return protocol.close_rcvd.code
            if protocol.close_sent is not None:
                return protocol.close_sent.code
        return ABNORMAL

    # -- Session (http/upgrade.py) ---------------------------------------------------

    def tick(self, now: float) -> None:
        if self.write_deadline < now or self.close_deadline < now:
            self.abort()  # the client stopped reading, or never answered our close
            return
        if self.ping_deadline < now and not self.reading_paused:
            # (While reading is paused for a slow app, a pong cannot be seen.)
            self._fail(INTERNAL_ERROR, "keepalive ping timeout")
        elif self.next_ping <= now and self.protocol is not None:
            self.ping_payload = os.urandom(4)
            self.protocol.send_ping(self.ping_payload)
            self._flush()
            self.next_ping = now + self.limits.ping_interval
            if self.limits.ping_timeout and self.ping_deadline == INF:
                self.ping_deadline = now + self.limits.ping_timeout

    def shutdown(self, restart: bool) -> None:
        code = SERVICE_RESTART if restart else GOING_AWAY
        if self.phase is Phase.OPEN:
            self._fail(code, "server restarting" if restart else "server shutting down")
        elif self.phase is Phase.CONNECTING:
            self.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- internals -------------------------------------------------------------------

    def _fail(self, code: int, reason: str) -> None:
        """Close from our side for a reason of our own; the app hears `code`."""
        self._set_closed(code, reason)
        self.close(code, reason)

    def _set_closed(self, code: int, reason: str) -> None:
        if self.closed is None:
            self.closed = closed = Closed(code, reason)
            self.inbox.append(closed)
            self._wake()

    def _flush(self) -> None:
        protocol = self.protocol
        if protocol is None:
            return
        outgoing = protocol.data_to_send()
        if outgoing and self.pending is not None:
            self.write_pending()  # what the app sent first leaves first
        for data in outgoing:
            if data:
                self.transport.write(data)
            else:
                # websockets' SEND_EOF: a server closes the TCP connection first
                # (RFC 6455 7.1.1); close() sends what is buffered before the FIN.
                self.transport.close()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _wake_writers(self) -> None:
        waiters, self.write_waiters = self.write_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


_last_text: list[tuple[str, bytes]] = [("", b"")]


def _encoded(text: str) -> bytes:
    """`text` as UTF-8, remembering the last one: a broadcast sends one str to many sessions."""
    last, data = _last_text[0]
    if text is not last:
        data = text.encode()
        if len(data) <= INBOX_HIGH:  # never pins a large message
            _last_text[0] = (text, data)
    return data


def _utf8_decoder() -> codecs.IncrementalDecoder:
    return codecs.getincrementaldecoder("utf-8")()
