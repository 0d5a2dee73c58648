"""The accept loop of one listening socket, which backs off when descriptors run out.

Theory of operation
-------------------
uvloop's `create_server` leaves accept() to libuv, which handles EMFILE and
ENFILE with "the EMFILE trick": it closes a spare descriptor, accepts every
pending connection and closes it at once, then reopens the spare.  Clients
get an empty reply or a reset, and nothing is logged.  That is reasonable
for a lone process, but in a pre-fork server the listener is shared: a
connection one worker resets could have been served by a sibling with
descriptors to spare.  Other accept() failures (ENOBUFS, ENOMEM) are
swallowed in silence too.

So each listener gets an `Acceptor` instead:

* the listening socket is watched with `add_reader`; when it is readable up
  to `ACCEPT_BATCH` connections are taken with non-blocking accept() and
  handed to the event loop as transports (`connect_accepted_socket`);
* when accept() fails with a resource error (EMFILE, ENFILE, ENOBUFS,
  ENOMEM) the socket is no longer watched for a delay that starts at
  `BACKOFF_FIRST` and doubles up to `BACKOFF_MAX` (trio's
  serve_listeners pauses on the same four errnos, for a fixed 0.1 s; asyncio
  for 1 s).  Pending connections stay in the
  kernel's queue, where a sibling worker or this one, once a descriptor is
  free, accepts them; connections already open keep being served, as the
  event loop is not blocked.  A failure is logged at ERROR at most once
  per `LOG_INTERVAL` (so a still-failing listener, or one flapping at the
  limit, costs a line every ten seconds), and the first accept that works
  after a logged failure at INFO;
* connection-level failures (the client gave up before accept() returned)
  are skipped; any other error is logged like a resource error and backed
  off at the longest delay, rather than retried in a busy loop;
* on a listener shared by several workers, a `ListenerGate` (the worker
  hands in balance.py's) bounds each batch to this worker's share; a worker
  over its share stops watching for the gate's `pause`, leaving the queue
  to its siblings.

Invariant: the listener is watched (`_watching`) or a retry is scheduled
(`_retry`), never both, until `close()`; after `close()` neither.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:
    import ssl

LOGGER: Final = logging.getLogger("prefork")

# Connections taken per readiness event.  With a listener shared by several
# workers, a bounded batch leaves the rest of the queue to the siblings woken
# by the same event (asyncio takes up to `backlog` at once).
ACCEPT_BATCH: Final = 16
# At most this many queued connections are taken when a listener of our own
# closes: a full queue at the default --backlog (2048).
QUEUE_LIMIT: Final = 2048
BACKOFF_FIRST: Final = 0.1
BACKOFF_MAX: Final = 1.0
LOG_INTERVAL: Final = 10.0

# Out of a per-process or system-wide resource: waiting frees it (a response
# finishes, a connection closes), retrying at once does not.
RESOURCE_ERRORS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# The connection died in the queue (client reset, firewall, protocol error on
# Linux): nothing wrong with the listener, take the next one.
CONNECTION_ERRORS: Final = frozenset(
    {errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR, errno.ECONNRESET}
)

ProtocolFactory = Callable[[], asyncio.Protocol]


class SetupTracker(Protocol):
    """Told when an accepted connection's setup (a TLS handshake) starts and ends.

    Until the setup ends the protocol has no connection_made, so a draining
    server that only counted connections would exit under a handshake.
    """

    def setup_started(self) -> None: ...

    def setup_ended(self) -> None: ...


class ListenerGate(Protocol):
    """This worker's share of one listener its siblings accept on too (balance.py)."""

    @property
    def pause(self) -> float:
        """How long to stop watching the listener when the allowance is 0."""

    def allowance(self) -> int:
        """How many queued connections this worker may take now."""

    def accepted(self, count: int) -> None: ...

    def close(self) -> None: ...


class Acceptor:
    """Accepts connections on one listening socket until closed."""

    __slots__ = (
        "_announce",
        "_delay",
        "_episodes",
        "_failing_since",
        "_logged_at",
        "_retry",
        "_watching",
        "factory",
        "fd",
        "gate",
        "loop",
        "name",
        "own",
        "sock",
        "ssl",
        "tracker",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        factory: ProtocolFactory,
        ssl_context: ssl.SSLContext | None = None,
        tracker: SetupTracker | None = None,
        gate: ListenerGate | None = None,
        *,
        own: bool = False,
    ) -> None:
        self.loop = loop
        self.sock = sock
        # Only this process accepts on it (--reuse-port): see close().
        self.own = own
        self.fd = sock.fileno()
        self.factory = factory
        self.ssl = ssl_context
        self.tracker = tracker
        self.name = _describe(sock)
        self.gate = gate  # None: take a full batch (a listener of our own, or one worker)
        # 0.0 while accepting normally; otherwise the delay of the backoff in
        # progress, the next one doubling it.
        self._delay = 0.0
        # When the current (or last) run of failures began.
        self._failing_since = 0.0
        # The ERROR line is rate-limited per listener, across runs of failures:
        # descriptors hovering at the limit make them short and frequent.
        self._logged_at = float("-inf")
        self._episodes = 0  # runs of failures begun since the last ERROR line
        self._announce = False  # the last ERROR line still awaits its "again" line
        self._retry: asyncio.TimerHandle | None = None
        self._watching = False

    def start(self) -> None:
        self.sock.setblocking(False)
        self._watch()

    def close(self) -> None:
        """Stop accepting and close this process's copy of the listening socket.

        Closing matters with --reuse-port: the kernel keeps routing new
        connections to an open SO_REUSEPORT socket nobody accepts on.  On such
        a socket of our own, closing also resets the connections still queued
        on it (unless the kernel migrates them: tcp_migrate_req), so they are
        taken and served first; only one arriving between that last accept()
        and the close can still be lost.  A shared socket stays open in the
        master, and its queue stays for the siblings.
        """
        watching = self._watching
        if watching:
            self.loop.remove_reader(self.fd)
            self._watching = False
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self.gate is not None:
            self.gate.close()
        if self.own and watching:  # not while backing off: out of descriptors
            # A listener error (out of descriptors) leaves the rest to be reset, as before.
            self._take(QUEUE_LIMIT)
        self.sock.close()

    def _watch(self) -> None:
        self._retry = None
        self._watching = True
        self.loop.add_reader(self.fd, self._accept)

    def _accept(self) -> None:
        gate = self.gate
        batch = ACCEPT_BATCH
        if gate is not None:
            batch = min(batch, gate.allowance())
            if not batch:
                self._pause(gate.pause)
                return
        accepted, failure = self._take(batch)
        if gate is not None and accepted:
            gate.accepted(accepted)
        if failure is not None:
            self._back_off(failure)

    def _take(self, limit: int) -> tuple[int, OSError | None]:
        """Accept and serve up to `limit` queued connections.

        Returns how many were taken, and the listener error that stopped it
        early (None when the queue ran dry or the limit was reached).
        """
        sock = self.sock
        accepted = 0
        for _ in range(limit):
            try:
                conn, _addr = sock.accept()
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in CONNECTION_ERRORS:
                    continue
                return accepted, exc
            if self._delay:
                self._recovered()
            accepted += 1
            self._serve(conn)
        return accepted, None

    def _serve(self, conn: socket.socket) -> None:
        coro = self.loop.connect_accepted_socket(self.factory, conn, ssl=self.ssl)
        try:
            future = coro.send(None)
        except StopIteration:
            return
        except Exception as exc:  # one connection's failure stays its own
            # The transport could not be set up (the socket died already, or
            # epoll is out of memory): drop this connection only.
            LOGGER.debug("Dropped a connection accepted on %s: %r", self.name, exc)
            conn.close()
            return
        tracker = self.tracker
        if tracker is None:
            _suspend(coro, future, None)
            return
        tracker.setup_started()
        _suspend(coro, future, tracker.setup_ended)

    def _back_off(self, exc: OSError) -> None:
        now = time.monotonic()
        if exc.errno not in RESOURCE_ERRORS:
            delay = BACKOFF_MAX
        elif self._delay:
            delay = min(self._delay * 2, BACKOFF_MAX)
        else:
            delay = BACKOFF_FIRST
        if not self._delay:
            self._failing_since = now
            self._episodes += 1
        if now - self._logged_at >= LOG_INTERVAL:
            self._log(exc, delay, now)
        self._delay = delay
        self._pause(delay)

    def _pause(self, delay: float) -> None:
        self.loop.remove_reader(self.fd)
        self._watching = False
        self._retry = self.loop.call_later(delay, self._watch)

    def _log(self, exc: OSError, delay: float, now: float) -> None:
        code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        reason = exc.strerror or str(exc)
        if now > self._failing_since:
            since = f", for {now - self._failing_since:.0f} s now"
        elif self._episodes > 1:
            # Descriptors hovering at the limit fail, recover and fail again.
            since = f", {self._episodes - 1} more times since the last report"
        else:
            since = ""
        LOGGER.error(
            "Cannot accept connections on %s: %s (%s)%s; retrying in %g s",
            self.name,
            reason,
            code,
            since,
            delay,
        )
        self._logged_at = now
        self._episodes = 0
        self._announce = True

    def _recovered(self) -> None:
        if self._announce:
            LOGGER.info(
                "Accepting connections on %s again after %.1f s",
                self.name,
                time.monotonic() - self._failing_since,
            )
            self._announce = False
        self._delay = 0.0


def _suspend(coro: Coroutine[Any, Any, Any], future: Any, ended: Callable[[], None] | None) -> None:
    """Resume `coro` when `future` is done, as a Task would, without being one.

    connect_accepted_socket creates the transport before its first await (it
    then waits for connection_made, or for the TLS handshake), so the
    connection is live as soon as the first step returns, and a Task would
    only add a loop iteration and an object per connection.  An error after
    that point (a failed TLS handshake, a client gone) has already closed the
    transport and is of interest only when debugging.  `ended` is called
    once the setup is over, whichever way.
    """
    future._asyncio_future_blocking = False

    def resume(_: object) -> None:
        try:
            following = coro.send(None)
        except StopIteration:
            pass
        except Exception as exc:  # one connection's failure stays its own
            LOGGER.debug("Connection setup failed: %r", exc)
        else:
            _suspend(coro, following, ended)
            return
        if ended is not None:
            ended()

    future.add_done_callback(resume)


def _describe(sock: socket.socket) -> str:
    address = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        path = address.decode(errors="replace") if isinstance(address, bytes) else address
        return f"unix:{path}"
    if sock.family == socket.AF_INET6:
        return f"[{address[0]}]:{address[1]}"
    return f"{address[0]}:{address[1]}"
