"""The master's side of the control socket, driven by the master's selector.

Each client sends one request line and gets one response line; the master
never blocks on a client: reads are non-blocking and buffered (bounded by
MAX_REQUEST), and the response, a few KiB at most, is written with a short
timeout.  The handler answers through a `Reply` callback, at once or later
(a waiting `prefork reload` is answered when the reload ends); a client that
hangs up meanwhile is simply forgotten.

Only the master's own uid (or root) may talk to it: the socket file is 0600
in a directory nobody else can write to (checked, never assumed:
`prefork.control.check_directory`), and SO_PEERCRED is checked as well.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Final

from prefork import logs
from prefork.control import check_directory, peer_credentials, trusted_uid
from prefork.control.protocol import Answer, Reply, Response
from prefork.errors import ControlError, ControlSocketInUse

log = logs.LOGGER

MAX_REQUEST: Final = 65536
SEND_TIMEOUT: Final = 1.0

# Gets each decoded request object (not yet checked: protocol.parse_request).
Handler = Callable[[dict[str, object], Reply], None]


class ControlServer:
    """The master's control socket: accepts trusted clients, reads one request
    line each, hands it to the handler and writes the reply it is given."""

    def __init__(self, path: str, handler: Handler, selector: selectors.BaseSelector) -> None:
        self.path = path
        self.handler = handler
        self.selector = selector
        self.sock: socket.socket | None = None
        self.identity: tuple[int, int] | None = None
        # client -> its request bytes so far; None once the request was handed
        # to the handler (the client then waits for its reply).
        self.clients: dict[socket.socket, bytearray | None] = {}

    def open(self, *, private: bool, take_over: bool = False) -> None:
        """Bind the socket; `take_over` replaces a live one (an upgraded master).

        `private`: the path is the default one, in a directory prefork owns.
        Missing directories are created 0700; an existing one is checked,
        never trusted (`check_directory`).  Raises ControlError when the place is not
        safe, ControlSocketInUse when another master of ours listens there.
        """
        directory = Path(self.path).parent
        try:
            os.makedirs(directory, 0o700, exist_ok=True)
        except OSError as exc:
            raise ControlError(f"cannot create {directory}: {exc.strerror or exc}") from None
        check_directory(directory, private=private)
        with contextlib.suppress(FileNotFoundError):
            st = os.lstat(self.path)
            if not stat.S_ISSOCK(st.st_mode):
                raise ControlError(f"{self.path} exists and is not a socket")
            if st.st_uid != os.geteuid():
                raise ControlError(f"{self.path} belongs to uid {st.st_uid}; refusing to use it")
            owner = None if take_over else _live_owner(self.path)
            if owner is not None:
                raise ControlSocketInUse(
                    f"another prefork master (pid {owner}) already listens on {self.path}"
                )
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            sock.bind(self.path)
        except OSError as exc:
            sock.close()
            raise ControlError(f"cannot bind {self.path}: {exc.strerror or exc}") from None
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
        try:
            data = client.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)  # hung up (perhaps while waiting for an outcome)
            return
        buffer = self.clients[client]
        if buffer is None:
            return  # the request is being handled; anything after it is ignored
        buffer += data
        if b"\n" not in buffer:
            if len(buffer) > MAX_REQUEST:
                self._reply(client, Answer(ok=False, error="request too large"))
            return
        line = bytes(buffer.split(b"\n", 1)[0])
        self.clients[client] = None
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")  # noqa: TRY004 - protocol error, not a type bug
        except ValueError:
            self._reply(client, Answer(ok=False, error="bad request: expected one JSON object"))
            return
        try:
            self.handler(request, lambda response: self._reply(client, response))
        except Exception as exc:  # a bug in one command must not kill the master
            log.exception("control command %r failed", request.get("cmd"))
            self._reply(client, Answer(ok=False, error=f"internal error: {exc}"))

    def _reply(self, client: socket.socket, response: Response) -> None:
        if client not in self.clients:
            return  # answered already, or it hung up
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

    def stop_listening(self) -> None:
        """Accept no new client and remove the socket file; clients waiting for
        an outcome (a `prefork stop`) keep their connection until answered."""
        if self.sock is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.sock)
        self.sock.close()
        self.sock = None
        if self.identity is not None:
            with contextlib.suppress(OSError):
                st = os.lstat(self.path)
                if (st.st_dev, st.st_ino) == self.identity:
                    os.unlink(self.path)

    def close(self) -> None:
        for client in list(self.clients):
            self._drop(client)
        self.stop_listening()


def _live_owner(path: str) -> int | None:
    """The pid of the process listening on `path`, or None if nothing answers."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
        pid, _ = peer_credentials(probe)
    except OSError:
        return None
    finally:
        probe.close()
    return pid


def _peer_allowed(client: socket.socket) -> bool:
    try:
        _, uid = peer_credentials(client)
    except OSError:
        return False
    return trusted_uid(uid)
