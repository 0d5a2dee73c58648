"""The HTTP server inside one worker: listeners, connections, the clock, drain.

`ServerState` is what every connection of the worker shares: settings copied
into plain attributes (the hot path reads them per request), counters for
the heartbeat, the clock, the set of live connections that the
once-a-second sweep checks for expired deadlines, and the worker's row of
the connection table when it balances a shared listener (balance.py).

This is the protocol layer: it knows HTTP/1.1 and the exchange contract
(http/exchange.py), and nothing of the interfaces above it.  The worker
(worker/compose.py) hands it an `HttpSettings`, the exchange class of the
app's interface with that adapter's own state (`adapter`), and the services
it may call as the protocols below (`Metrics`, the access log as a
`Flushable`, the connection table's `AcceptGate`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from prefork.compiled import mypyc_attr
from prefork.http.accept import Acceptor, ListenerGate
from prefork.http.connection import (
    SHORTEST_LINE_AROUND_TARGET,
    HttpConnection,
    ProxyProtocolConnection,
)
from prefork.http.exchange import Exchange
from prefork.http.forwarded import ProxyTrust
from prefork.http.request_id import RequestIds
from prefork.http.response import Clock
from prefork.http.settings import HttpSettings
from prefork.http.upgrade import Session, UpgradeHook

if TYPE_CHECKING:
    import ssl

LOGGER: Final = logging.getLogger("prefork")

_UNLIMITED_LINE: Final = 65536
# The sweep's period: the resolution of every timeout and of the Date header.
CLOCK_TICK: Final = 1.0


@dataclass(slots=True)
class Counters:
    """What the worker's heartbeat reports (the master's `prefork status`)."""

    requests: int = 0
    inflight: int = 0
    connections: int = 0
    rejected: int = 0


class Metrics(Protocol):
    """Per-request counters (observe/metrics.py), kept only with --metrics-bind."""

    bytes_received: int
    rejected: dict[int, int]  # status -> requests refused by this layer

    def observe(self, method: bytes, status: int, seconds: float, body_bytes: int) -> None: ...


class AcceptGate(Protocol):
    """This worker's row of the connection table (balance.py), which the worker hands in.

    The server joins when it starts accepting and leaves when it drains; the
    connections publish their count on every open and close.
    """

    def join(self, open_connections: int) -> None: ...

    def leave(self) -> None: ...

    def publish(self, open_connections: int) -> None: ...

    def excess(self, releasing: int) -> int:
        """How many kept-alive connections to close gently, more than a fair share."""

    def listener(self, sock: socket.socket) -> ListenerGate:
        """The gate as the acceptor of one shared listener asks it."""


class Flushable(Protocol):
    """Output written in batches (the access log): flushed once a second, at drain and abort."""

    def flush(self) -> None: ...


class ServerState:
    """What every connection of one worker shares; the connections read it per request.

    Built once per server.  `exchange_class` and `adapter` come from the
    interface (ASGI, WSGI): the connection creates one exchange per request,
    and the exchange finds its interface's state (the app, ...) in `adapter`,
    which this layer never looks into.
    """

    __slots__ = (
        "adapter",
        "all_closed",
        "body_timeout",
        "clock",
        "connections",
        "counters",
        "draining",
        "exchange_class",
        "flushable",
        "gate",
        "header_timeout",
        "idle_timeout",
        "keep_alive",
        "limit_body",
        "limit_concurrency",
        "limit_field_size",
        "limit_fields",
        "limit_headers",
        "limit_target",
        "loop",
        "metrics",
        "on_request_limit",
        "proxy_trust",
        "request_ids",
        "request_limit",
        "request_timeout",
        "send_timeout",
        "sessions",
        "settings",
        "setups",
        "upgrade",
    )

    def __init__(
        self,
        settings: HttpSettings,
        loop: asyncio.AbstractEventLoop,
        exchange_class: type[Exchange],
        adapter: Any,
        metrics: Metrics | None = None,
        flushable: Flushable | None = None,
    ) -> None:
        self.settings = settings
        self.loop = loop
        self.exchange_class = exchange_class
        self.adapter = adapter
        self.clock = Clock(settings.server_header)
        self.counters = Counters()
        self.connections: set[HttpConnection] = set()
        # Accepted connections still being set up (TLS handshakes): a drain
        # waits for them as for connections (accept.SetupTracker).
        self.setups = 0
        # Connections taken over by a protocol switch (see http/upgrade.py).
        self.sessions: set[Session] = set()
        self.upgrade: UpgradeHook | None = None  # installed by the worker
        self.draining = False
        # This worker's row of the connection table; None when not balancing.
        self.gate: AcceptGate | None = None
        # Set by wait_drained; resolved by the connection that closes last.
        self.all_closed: asyncio.Future[None] | None = None
        self.keep_alive = settings.keep_alive > 0
        # Before the first request a connection gets the header timeout; after
        # a response, the keep-alive timeout.
        # Deadlines are set from the clock's last tick, which may be up to one
        # tick old; adding a tick makes a timeout T fire between T and T + 1 s,
        # never early.
        idle = settings.keep_alive if self.keep_alive else settings.header_timeout
        self.idle_timeout = (idle or float("inf")) + CLOCK_TICK
        self.header_timeout = (settings.header_timeout or float("inf")) + CLOCK_TICK
        self.body_timeout = (settings.body_timeout or float("inf")) + CLOCK_TICK
        self.send_timeout = (settings.send_timeout or float("inf")) + CLOCK_TICK
        line = settings.limit_request_line or _UNLIMITED_LINE
        self.limit_target = line - SHORTEST_LINE_AROUND_TARGET
        self.limit_fields = settings.limit_request_fields or 2**31
        self.limit_field_size = settings.limit_request_field_size or 2**31
        self.limit_headers = settings.limit_request_headers
        self.limit_body = settings.limit_request_body
        self.limit_concurrency = settings.limit_concurrency
        # --max-requests: the connection calls on_request_limit at this request
        # (0: never); the worker then stops taking new ones (worker/main.py).
        self.request_limit = 0
        self.on_request_limit: Callable[[], None] | None = None
        # A request's arrival is stamped with the clock's last tick, up to a
        # tick early: one more tick keeps this timeout from firing early too.
        self.request_timeout = (settings.request_timeout or float("inf")) + CLOCK_TICK
        self.proxy_trust = ProxyTrust(settings.forwarded_allow_ips)
        self.request_ids = RequestIds() if settings.request_id else None
        # None keeps the hot path at one attribute test when metrics are off.
        self.metrics = metrics
        self.flushable = flushable

    def setup_started(self) -> None:
        self.setups += 1

    def setup_ended(self) -> None:
        self.setups -= 1
        self.check_all_closed()

    def adopt(self, session: Session) -> None:
        """A protocol switch finished: track the session (it is still a connection)."""
        self.sessions.add(session)

    def release(self, session: Session) -> None:
        """The session's transport is gone."""
        self.sessions.discard(session)
        self.counters.connections -= 1
        self.check_all_closed()

    def check_all_closed(self) -> None:
        closed = self.all_closed
        if (
            closed is not None
            and not self.connections
            and not self.sessions
            and not self.setups
            and not closed.done()
        ):
            closed.set_result(None)

    def sweep(self) -> None:
        """Once a second: refresh the clock and close connections past a deadline."""
        clock = self.clock
        clock.tick()
        if self.flushable is not None:
            self.flushable.flush()
        now = clock.now
        oldest = now - self.request_timeout
        for conn in list(self.connections):
            if conn.read_deadline < now:
                conn.read_timeout()
            if conn.write_deadline < now:
                conn.write_timeout()
            pipeline = conn.pipeline
            if pipeline and pipeline[0].arrived < oldest and not conn.closing:
                pipeline[0].time_out(now - pipeline[0].arrived)
        for session in list(self.sessions):
            session.tick(now)
        if self.gate is not None and self.keep_alive and not self.draining:
            self.rebalance(self.gate)

    def rebalance(self, gate: AcceptGate) -> None:
        """Close some kept-alive connections gently when holding more than a fair share."""
        connections = self.connections
        releasing = sum(1 for conn in connections if not conn.keep_alive)
        excess = gate.excess(releasing)
        if excess:
            LOGGER.debug("Rebalancing: closing %d connections after their next response", excess)
            for conn in connections:
                if conn.keep_alive:  # answer its next request with Connection: close
                    conn.keep_alive = False
                    excess -= 1
                    if not excess:
                        break


# worker/compose.py's WorkerServer extends it from Python.  (mypyc leaks a
# reference to each constructor argument of such a class: harmless here, built
# once per worker, and why Exchange, built per request, does not allow it.)
@mypyc_attr(allow_interpreted_subclasses=True)
class HttpServer:
    """Serves HTTP on inherited listening sockets until drained or aborted."""

    def __init__(
        self,
        state: ServerState,
        ssl_context: ssl.SSLContext | None = None,
        gate: AcceptGate | None = None,
    ) -> None:
        self.state = state
        self.gate = gate
        self.counters = state.counters
        self.loop = state.loop
        self.servers: list[Acceptor] = []
        self._ticker: asyncio.TimerHandle | None = None
        self._ssl = ssl_context  # on every listener, unix sockets too (prefork/tls.py)

    async def start(
        self, sockets: Sequence[socket.socket], shared: Collection[socket.socket] = ()
    ) -> None:
        """Accept on `sockets`; those in `shared` (the master's) are balanced by the gate."""
        state = self.state
        connection = ProxyProtocolConnection if state.settings.proxy_protocol else HttpConnection
        gate = self.gate
        for sock in sockets:
            # Not loop.create_server: see prefork/http/accept.py for what
            # libuv does when descriptors run out.
            server = Acceptor(
                self.loop,
                sock,
                lambda: connection(state),
                self._ssl,
                state,
                gate.listener(sock) if gate is not None and sock in shared else None,
                own=sock not in shared,
            )
            server.start()
            self.servers.append(server)
        if gate is not None and any(server.gate for server in self.servers):
            state.gate = gate
            gate.join(state.counters.connections)
        self._tick()

    def _tick(self) -> None:
        self.state.sweep()
        self._ticker = self.loop.call_later(CLOCK_TICK, self._tick)

    def begin_drain(self) -> None:
        """Stop accepting; every connection closes after its next response head.

        Every response head sent from now on says `Connection: close` (the
        exchanges read `state.draining` when they build it).  A response whose
        head already promised keep-alive is not cut short by a close: the
        client may already be sending its next request on that connection, and
        it could not know the request was never read.  That request is answered
        (with `Connection: close`) instead.  Idle keep-alive connections stay
        open until their keep-alive deadline for the same reason.
        """
        state = self.state
        state.draining = True
        self._leave()
        self.stop_accepting()
        for conn in state.connections:
            # New requests on a kept-alive connection get `Connection: close`;
            # responses already promised keep-alive keep the promise (their
            # heads read state.draining when they are built).
            conn.keep_alive = False
            if not conn.pipeline and not conn.in_head:
                conn.read_deadline = min(conn.read_deadline, state.clock.now + state.idle_timeout)

    def stop_accepting(self) -> None:
        """Close this worker's listening sockets (idempotent).

        New connections then go to the other workers (a shared listener, or the
        rest of a --reuse-port group), or are refused once nobody listens.
        """
        for server in self.servers:
            server.close()

    def close_sessions(self, restart: bool) -> None:
        """Ask every upgraded session to close (the drain's grace for them is over)."""
        for session in list(self.state.sessions):
            session.shutdown(restart)

    async def wait_drained(self, timeout: float) -> bool:
        """Wait until every connection closed (True) or `timeout` passed (False)."""
        state = self.state
        try:
            if state.connections or state.setups or state.sessions:
                state.all_closed = self.loop.create_future()
                await asyncio.wait_for(asyncio.shield(state.all_closed), timeout)
        except TimeoutError:
            return False
        finally:
            # Also when no connection was open: lines of the last second are
            # still in the batch (the sweep flushes once a second).
            self._flush()
        return True

    def _leave(self) -> None:
        state = self.state
        if state.gate is not None:
            state.gate.leave()
            state.gate = None

    def _flush(self) -> None:
        if self.state.flushable is not None:
            self.state.flushable.flush()

    def abort(self) -> None:
        self._leave()
        self._flush()
        self.stop_accepting()
        for conn in list(self.state.connections):
            conn.transport.abort()
        for session in list(self.state.sessions):
            session.abort()
        if self._ticker is not None:
            self._ticker.cancel()
