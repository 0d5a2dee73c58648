"""Listeners: parse bind addresses, bind or inherit them, describe them.

Theory of operation
-------------------
The master opens every listener once, before the first fork, and keeps it
for its whole life; workers inherit the file descriptors.  Because the
listening socket (and its kernel accept queue) outlives every worker, a
connection that arrives while workers are being replaced waits in the queue
instead of being refused.

Where a listener comes from, first match wins:

1. a previous master (`PREFORK_INHERIT_FDS`, set by a USR2 upgrade or a
   --preload reload): those fds are adopted and nothing is bound;
2. systemd socket activation (`LISTEN_FDS` for our pid): same;
3. `--bind`: HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N.

Unix socket files: a stale file (nothing accepts on it) is replaced; a live
one is a BindError.  The file is removed on exit only by the master that
owns it, and only if it is still the file that master created (same inode),
so an upgraded master's socket is never removed by its predecessor.

--reuse-port: the master binds each TCP address with SO_REUSEPORT but never
calls listen() on it.  A bound, non-listening socket reserves the port
(and resolves port 0) without joining the kernel's SO_REUSEPORT group, so no
connection is ever queued on a socket nobody accepts from.  Each worker then
binds and listens on its own SO_REUSEPORT socket (`worker_sockets`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from prefork import systemd
from prefork.errors import BindError

if TYPE_CHECKING:
    from prefork.config import Config

INHERIT_ENV: Final = "PREFORK_INHERIT_FDS"

Kind = Literal["tcp", "unix", "fd"]
Origin = Literal["bound", "systemd", "inherited", "fd"]


@dataclass(frozen=True, slots=True)
class Address:
    kind: Kind
    host: str = ""
    port: int = 0
    path: str = ""
    fd: int = -1


def parse_address(spec: str) -> Address:
    """Parse one --bind value; ValueError says what is wrong."""
    if spec.startswith("unix:"):
        path = spec[5:]
        if not path:
            raise ValueError(f"{spec!r}: expected unix:PATH")
        return Address("unix", path=path)
    if spec.startswith("fd://"):
        text = spec[5:]
        if not text.isdigit():
            raise ValueError(f"{spec!r}: expected fd://N with N a file descriptor number")
        return Address("fd", fd=int(text))
    if spec.startswith("["):
        host, sep, rest = spec[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"{spec!r}: expected [IPV6]:PORT, e.g. [::1]:8000")
        port_text = rest[1:]
    else:
        host, sep, port_text = spec.rpartition(":")
        if not sep:
            raise ValueError(f"{spec!r}: expected HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N")
        if ":" in host:
            raise ValueError(f"{spec!r}: write IPv6 addresses in brackets, e.g. [::1]:8000")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{spec!r}: port must be a number from 0 to 65535")
    return Address("tcp", host=host or "0.0.0.0", port=int(port_text))


@dataclass(slots=True)
class Listener:
    sock: socket.socket
    origin: Origin
    # (path, st_dev, st_ino) of a unix socket file this master must remove on
    # exit; None when someone else owns the file (systemd, fd://N).
    owned_file: tuple[str, int, int] | None = None
    # --reuse-port: this TCP socket is bound but not listening (see above).
    reserved_only: bool = False

    def url(self, tls: bool = False) -> str:
        return describe(self.sock, tls)


def describe(sock: socket.socket, tls: bool = False) -> str:
    """How the banner shows a listener: http://127.0.0.1:8000, http://[::1]:8000, unix:/p.

    A unix socket served with TLS reads `unix:/p (https)`.
    """
    if sock.family == socket.AF_UNIX:
        name = sock.getsockname()
        if isinstance(name, bytes):  # abstract namespace
            name = "@" + name[1:].decode(errors="replace")
        return f"unix:{name} (https)" if tls else f"unix:{name}"
    host, port = sock.getsockname()[:2]
    scheme = "https" if tls else "http"
    if sock.family == socket.AF_INET6:
        return f"{scheme}://[{host}]:{port}"
    return f"{scheme}://{host}:{port}"


def _bind_error(spec: str, exc: OSError) -> BindError:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EADDRINUSE:
        reason = "Address already in use (is another server running?)"
    return BindError(f"cannot bind {spec}: {reason}")


def _tcp_socket(address: Address, spec: str, reuse_port: bool) -> socket.socket:
    try:
        infos = socket.getaddrinfo(
            address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise BindError(f"cannot bind {spec}: {exc.strerror}") from None
    family, _, _, _, sockaddr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # [::]:80 means IPv6 only; bind 0.0.0.0:80 as well for IPv4.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
    except OSError as exc:
        sock.close()
        raise _bind_error(spec, exc) from None
    return sock


def _unix_socket(path: str, spec: str) -> tuple[socket.socket, tuple[str, int, int]]:
    with contextlib.suppress(FileNotFoundError):
        mode = os.lstat(path).st_mode
        if not stat.S_ISSOCK(mode):
            raise BindError(f"cannot bind {spec}: {path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(1.0)
            probe.connect(path)
        except OSError:
            os.unlink(path)  # stale: left by a server that died
        else:
            raise BindError(f"cannot bind {spec}: another server is listening on {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)  # permissions follow the umask (--umask)
    except OSError as exc:
        sock.close()
        raise _bind_error(spec, exc) from None
    st = os.stat(path)
    return sock, (path, st.st_dev, st.st_ino)


def _listen(sock: socket.socket, spec: str, backlog: int) -> None:
    try:
        sock.listen(backlog)
    except OSError as exc:
        raise _bind_error(spec, exc) from None


def _adopt(fd: int, spec: str) -> socket.socket:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise BindError(f"cannot use {spec}: {exc.strerror}") from None
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise BindError(f"cannot use {spec}: not a stream socket")
    sock.set_inheritable(False)
    return sock


def _file_identity(sock: socket.socket) -> tuple[str, int, int] | None:
    if sock.family != socket.AF_UNIX:
        return None
    name = sock.getsockname()
    if not isinstance(name, str) or not name:
        return None
    try:
        st = os.stat(name)
    except OSError:
        return None
    return (name, st.st_dev, st.st_ino)


def inherited_fds(environ: Mapping[str, str]) -> list[int] | None:
    text = environ.get(INHERIT_ENV)
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part]
    except ValueError:
        raise BindError(f"invalid {INHERIT_ENV}={text!r}: expected fd numbers") from None


def open_listeners(
    config: Config, environ: MutableMapping[str, str] | None = None
) -> list[Listener]:
    """Every listener the master serves on. Removes the env vars it consumed."""
    environ = os.environ if environ is None else environ
    fds = inherited_fds(environ)
    environ.pop(INHERIT_ENV, None)
    if fds is not None:
        # A previous master handed these over; it will leave their files alone.
        listeners = []
        for fd in fds:
            sock = _adopt(fd, f"inherited fd {fd}")
            # A --reuse-port reservation arrives bound but not listening.
            accepting = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            listener = Listener(sock, "inherited", _file_identity(sock), not accepting)
            listeners.append(listener)
        return listeners
    activated = systemd.listen_fds(environ)
    if activated:
        return [Listener(_adopt(fd, f"systemd fd {fd}"), "systemd") for fd in activated]
    return bind_all(config.bind, config.backlog, config.reuse_port)


def bind_all(binds: Sequence[str], backlog: int, reuse_port: bool = False) -> list[Listener]:
    listeners: list[Listener] = []
    try:
        for spec in binds:
            try:
                address = parse_address(spec)
            except ValueError as exc:
                raise BindError(f"cannot bind {exc}") from None
            if address.kind == "unix":
                sock, identity = _unix_socket(address.path, spec)
                listeners.append(Listener(sock, "bound", identity))
                _listen(sock, spec, backlog)
            elif address.kind == "fd":
                listeners.append(Listener(_adopt(address.fd, spec), "fd"))
            else:
                sock = _tcp_socket(address, spec, reuse_port)
                listeners.append(Listener(sock, "bound", reserved_only=reuse_port))
                if not reuse_port:
                    _listen(sock, spec, backlog)
    except BaseException:
        close_all(listeners, unlink=True)
        raise
    return listeners


def worker_sockets(listeners: Sequence[Listener], backlog: int) -> list[socket.socket]:
    """The sockets one worker accepts on (called in the worker after fork).

    Shared listeners are used as they are; a --reuse-port reservation gets a
    fresh SO_REUSEPORT socket bound to the same address, owned by this worker.
    """
    result = []
    for listener in listeners:
        if not listener.reserved_only:
            result.append(listener.sock)
            continue
        master = listener.sock
        sock = socket.socket(master.family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if master.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(master.getsockname())
        sock.listen(backlog)
        result.append(sock)
    return result


def remove_file(identity: tuple[str, int, int]) -> None:
    """Unlink a unix socket file if it is still the one we created."""
    path, dev, ino = identity
    try:
        st = os.lstat(path)
    except OSError:
        return
    if (st.st_dev, st.st_ino) == (dev, ino):
        with contextlib.suppress(OSError):
            os.unlink(path)


def close_all(listeners: Sequence[Listener], unlink: bool) -> None:
    for listener in listeners:
        if unlink and listener.owned_file is not None:
            remove_file(listener.owned_file)
        listener.sock.close()
