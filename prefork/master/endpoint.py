"""The master's own HTTP endpoint (`--metrics-bind`): /metrics, /healthz, /readyz.

Theory of operation
-------------------
Served by the master, never by application code, so a wedged app cannot take
its health checks down with it.  It runs on the master's `selectors` loop
like everything else there (no thread: fork must stay safe): a non-blocking
listener, and per client a read of at most `MAX_REQUEST` bytes until the end
of the head, one response, then close (`Connection: close`; Prometheus and
kubelet open a connection per scrape or probe anyway).  A client that sends
nothing is dropped after `CLIENT_TIMEOUT` seconds, swept on the master's
regular wake-ups.

- `/metrics`: Prometheus text exposition (`render()`).
- `/healthz`: 200 while the master's loop runs; liveness.
- `/readyz`: 200 when at least one worker is ready and the master is not
  stopping, else 503; readiness (take the instance out of rotation).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from prefork import logs

log = logs.LOGGER

MAX_REQUEST: Final = 8192  # nginx's default client_header_buffer_size is 1 KiB; a probe needs less
CLIENT_TIMEOUT: Final = 5.0
METRICS_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class _Client:
    sock: socket.socket
    deadline: float
    received: bytes = b""
    outgoing: bytes = b""


@dataclass
class Endpoint:
    """The --metrics-bind listener and its clients, served from the master's selector."""

    sock: socket.socket
    selector: selectors.BaseSelector
    render: Callable[[], str]
    ready: Callable[[], bool]
    clients: dict[int, _Client] = field(default_factory=dict)

    @classmethod
    def open(
        cls,
        address: tuple[str, int],
        selector: selectors.BaseSelector,
        render: Callable[[], str],
        ready: Callable[[], bool],
    ) -> Endpoint:
        host, port = address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(64)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        endpoint = cls(sock, selector, render, ready)
        selector.register(sock, selectors.EVENT_READ, endpoint._accept)
        return endpoint

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return host, port

    def _accept(self) -> None:
        for _ in range(16):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: try again on the next wake-up
                log.warning("metrics endpoint: accept failed: %s", exc.strerror)
                return
            conn.setblocking(False)
            client = _Client(conn, time.monotonic() + CLIENT_TIMEOUT)
            self.clients[conn.fileno()] = client
            self.selector.register(conn, selectors.EVENT_READ, lambda c=client: self._read(c))

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(MAX_REQUEST)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(client)
            return
        if not data:
            self._close(client)
            return
        client.received += data
        if b"\r\n\r\n" not in client.received and b"\n\n" not in client.received:
            if len(client.received) >= MAX_REQUEST:
                self._respond(client, 431, "text/plain", "request head too large\n")
            return
        self._respond(client, *self._answer(client.received))

    def _answer(self, head: bytes) -> tuple[int, str, str]:
        line = head.split(b"\n", 1)[0].strip().split(b" ")
        if len(line) != 3 or not line[2].startswith(b"HTTP/1."):
            return 400, "text/plain", "bad request\n"
        method, target = line[0], line[1].split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            return 405, "text/plain", "only GET and HEAD\n"
        if target == b"/metrics":
            return 200, METRICS_TYPE, self.render()
        if target == b"/healthz":
            return 200, "text/plain", "ok\n"
        if target == b"/readyz":
            if self.ready():
                return 200, "text/plain", "ready\n"
            return 503, "text/plain", "not ready\n"
        return 404, "text/plain", "not found: /metrics, /healthz, /readyz\n"

    def _respond(self, client: _Client, status: int, content_type: str, body: str) -> None:
        payload = body.encode()
        reason = {
            200: "OK",
            400: "Bad Request",
            404: "Not Found",
            405: "Method Not Allowed",
            431: "Request Header Fields Too Large",
            503: "Service Unavailable",
        }[status]
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        ).encode()
        is_head = client.received.startswith(b"HEAD ")
        client.outgoing = head if is_head else head + payload
        self.selector.modify(client.sock, selectors.EVENT_WRITE, lambda: self._write(client))
        self._write(client)

    def _write(self, client: _Client) -> None:
        try:
            sent = client.sock.send(client.outgoing)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(client)
            return
        client.outgoing = client.outgoing[sent:]
        if not client.outgoing:
            self._close(client)

    def _close(self, client: _Client) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(client.sock)
        self.clients.pop(client.sock.fileno(), None)
        client.sock.close()

    def sweep(self, now: float) -> None:
        """Drop clients past their deadline (called on the master's wake-ups)."""
        for client in [c for c in self.clients.values() if c.deadline < now]:
            self._close(client)

    def close_inherited(self) -> None:
        """In a new worker: close the copies of the sockets, leave the selector alone."""
        for client in self.clients.values():
            client.sock.close()
        self.sock.close()

    def close(self) -> None:
        for client in list(self.clients.values()):
            self._close(client)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.sock)
        self.sock.close()
