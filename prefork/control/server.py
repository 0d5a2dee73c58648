"""The master's side of the control socket, driven by the master's selector.

Each client sends one request line and gets one response line; the master
never blocks on a client: reads are non-blocking and buffered (bounded by
MAX_REQUEST), and the response, a few KiB at most, is written with a short
timeout.  Only the master's own uid (or root) may talk to it: the socket
file is 0600 inside a 0700 directory, and SO_PEERCRED is checked as well.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import stat
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from prefork import logs

log = logs.LOGGER

MAX_REQUEST: Final = 65536
SEND_TIMEOUT: Final = 1.0

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class ControlServer:
    def __init__(self, path: str, handler: Handler, selector: selectors.BaseSelector) -> None:
        self.path = path
        self.handler = handler
        self.selector = selector
        self.sock: socket.socket | None = None
        self.identity: tuple[int, int] | None = None
        self.clients: dict[socket.socket, bytearray] = {}

    def open(self, take_over: bool = False) -> None:
        """Bind the socket; `take_over` replaces a live one (an upgraded master).

        Raises OSError with a readable message when the path is in use.
        """
        directory = Path(self.path).parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISSOCK(os.lstat(self.path).st_mode):
                raise OSError(f"{self.path} exists and is not a socket")
            if not take_over and _is_live(self.path):
                raise OSError(f"another master is listening on {self.path}")
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            sock.bind(self.path)
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(old_umask)
        sock.listen(16)
        sock.setblocking(False)
        st = os.stat(self.path)
        self.identity = (st.st_dev, st.st_ino)
        self.sock = sock
        self.selector.register(sock, selectors.EVENT_READ, self._accept)

    def _accept(self) -> None:
        assert self.sock is not None
        while True:
            try:
                client, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("control socket accept failed: %s", exc)
                return
            if not _peer_allowed(client):
                client.close()
                continue
            client.setblocking(False)
            self.clients[client] = bytearray()
            self.selector.register(client, selectors.EVENT_READ, lambda c=client: self._read(c))

    def _read(self, client: socket.socket) -> None:
        buffer = self.clients[client]
        try:
            data = client.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        buffer += data
        if b"\n" not in buffer:
            if len(buffer) > MAX_REQUEST:
                self._reply(client, {"ok": False, "error": "request too large"})
            return
        line = bytes(buffer.split(b"\n", 1)[0])
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")  # noqa: TRY004 - protocol error, not a type bug
        except ValueError:
            self._reply(client, {"ok": False, "error": "bad request: expected one JSON object"})
            return
        try:
            response = self.handler(request)
        except Exception as exc:  # a bug in one command must not kill the master
            log.exception("control command %r failed", request.get("cmd"))
            response = {"ok": False, "error": f"internal error: {exc}"}
        self._reply(client, response)

    def _reply(self, client: socket.socket, response: dict[str, Any]) -> None:
        try:
            client.settimeout(SEND_TIMEOUT)
            client.sendall(json.dumps(response).encode() + b"\n")
        except OSError:
            pass
        self._drop(client)

    def _drop(self, client: socket.socket) -> None:
        self.clients.pop(client, None)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(client)
        client.close()

    def close_inherited(self) -> None:
        """In a forked worker: close our copies, leave the (shared) selector alone."""
        for client in self.clients:
            client.close()
        self.clients = {}
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.identity = None

    def close(self, unlink: bool = True) -> None:
        for client in list(self.clients):
            self._drop(client)
        if self.sock is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.sock)
        self.sock.close()
        self.sock = None
        if unlink and self.identity is not None:
            with contextlib.suppress(OSError):
                st = os.lstat(self.path)
                if (st.st_dev, st.st_ino) == self.identity:
                    os.unlink(self.path)


def _is_live(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _peer_allowed(client: socket.socket) -> bool:
    try:
        creds = client.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return False
    _, uid, _ = struct.unpack("3i", creds)
    return uid in (0, os.getuid())
