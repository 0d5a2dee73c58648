"""Connection balancing: each worker accepts only its share of a shared listener.

Theory of operation
-------------------
Every worker watches the same listening socket, and the kernel wakes them
all when a connection is queued; whichever runs first takes what is there.
Under a burst (a proxy's keep-alive pool, a load generator) one worker could
take every connection before its siblings were scheduled: with 2 workers, 9
of 20 bursts of 64 connections ended 64/0, and the other worker idled for as
long as the connections lived.

So the workers share a small table in memory (`ConnectionTable`), mapped by
the master before the first fork.  Each worker owns one row, in which it
publishes its open connections (on every open and close) and the number of
connections it ever accepted, and which is marked active while it accepts
(from the start of serving until its drain).  When a listener is readable,
the worker's `AcceptGate` says how many connections it may take:

    share     = ceil((open connections of the active rows + queued) / active rows)
    allowance = share + ACCEPT_SLACK - own open connections

`queued` is the listener's accept queue (`AcceptQueue`: TCP_INFO reports it
for a TCP socket; for a unix socket sock_diag does, at a cost paid only
before pausing).  The worker with the fewest connections is always allowed
(its count is below the average, which is below the share as soon as one
connection is queued), so a queued connection never waits for the gate
alone.  A worker over its share stops watching the listener for `PAUSE` and
looks again.

A sibling can fail to take its share: its event loop is blocked in the app
(inline WSGI runs on it) or not scheduled.  If no other worker accepted
anything for `STALL_AFTER` while this one kept finding connections queued,
the workers under their share count as absent until they accept again.

Long-lived connections are rebalanced once a second (`excess`): a worker
holding more than `fair + tolerance(fair)` of the active rows' connections,
or above `fair` while a sibling is below `fair - tolerance(fair)`, answers
the next request of half of its connections above `fair` with
`Connection: close`; the client reconnects, and the gate sends the new
connection to a worker under its share.  That is how a worker added by a
scale-up, or the replacement of a drained one, gets its share of a pool of
keep-alive connections within seconds.

The worker hands its gate to the HTTP server, which knows it only by the
protocols it declares (`AcceptGate` in http/server.py; `ListenerGate`, which
`SharedListener` implements for one listener, in http/accept.py): the
protocol layer does not import this module.

Invariants: each cell has one writer at a time: the master zeroes a row when
it hands it out (before the fork) and when its worker has exited; in
between only that worker writes it.  A row's open count is 0 whenever the
row is inactive, so sums over all rows only count active workers.  Aligned
8-byte cells are read and written whole, so a reader sees an old or a new
value, never a torn one.
"""

from __future__ import annotations

import math
import mmap
import os
import socket
import struct
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from prefork.config import Config
    from prefork.sockets import Listener

# Rows in a table: workers alive at once, counting those still draining.
# 1024 rows take 24 KiB; a worker that finds no free row accepts unbalanced.
ROWS: Final = 1024
# Connections a worker may hold above its share before it stops accepting.
# Small, because the bound that matters is the worker left with the least:
# with 4 workers, 64 connections and three workers each 1 over, the fourth
# still gets 13 (a share of 16).
ACCEPT_SLACK: Final = 1
# How long a worker over its share leaves the queue to its siblings before
# looking again; a sibling woken by the same connection takes it well within.
PAUSE: Final = 0.001
# No sibling accepted anything for this long although connections stayed
# queued: they are blocked in the app or starved of CPU, so stop waiting for
# them.  Long enough for a busy machine's scheduler, short against a client's
# connect timeout.
STALL_AFTER: Final = 0.25
# An allowance with no limit (the acceptor's own batch bounds it).
UNLIMITED: Final = 1 << 30

_CELL: Final = struct.calcsize("q")
# Cell 0 holds the rows in use (a high-water mark), then three arrays of ROWS.
_OPEN: Final = 1
_ACCEPTED: Final = _OPEN + ROWS
_ACTIVE: Final = _ACCEPTED + ROWS
_CELLS: Final = _ACTIVE + ROWS
# struct tcp_info: on a listening socket, tcpi_unacked is the accept queue's
# length (Linux's tcp_get_info), after 8 bytes of u8 fields and 4 u32 fields.
_TCP_INFO_QUEUED: Final = 24
_TCP_INFO_READ: Final = _TCP_INFO_QUEUED + 4
# A unix listener's queue through sock_diag: linux/sock_diag.h, linux/unix_diag.h.
_NETLINK_SOCK_DIAG: Final = 4
_SOCK_DIAG_BY_FAMILY: Final = 20
_NLM_F_REQUEST: Final = 1
_UDIAG_SHOW_RQLEN: Final = 0x10
_UNIX_DIAG_RQLEN: Final = 4
_ANY: Final = 0xFFFFFFFF  # every state; "no cookie"
_NLMSG_HEADER: Final = struct.Struct("=IHHII")  # length, type, flags, seq, pid
# family, protocol, pad, states, inode, what to show, cookie (2 words)
_UNIX_DIAG_REQ: Final = struct.Struct("=BBHIIIII")
_UNIX_DIAG_MSG_SIZE: Final = 16
_NLATTR: Final = struct.Struct("=HH")  # length, type


class ConnectionTable:
    """Per-worker connection counts in shared anonymous memory, inherited by fork."""

    __slots__ = ("_cells", "_free", "_map")

    def __init__(self) -> None:
        self._map = mmap.mmap(-1, _CELLS * _CELL)  # MAP_SHARED | MAP_ANONYMOUS
        self._cells = memoryview(self._map).cast("q")
        self._free = list(range(ROWS - 1, -1, -1))  # master only; lowest first

    # -- master side ------------------------------------------------------------

    def claim(self) -> int | None:
        """A zeroed row for a worker about to be forked; None when all are taken."""
        if not self._free:
            return None
        index = self._free.pop()
        self._zero(index)
        cells = self._cells
        cells[0] = max(cells[0], index + 1)
        return index

    def release(self, index: int) -> None:
        """The row's worker has exited: forget its counts, reuse the row."""
        self._zero(index)
        self._free.append(index)
        self._free.sort(reverse=True)
        in_use = set(range(ROWS)) - set(self._free)
        self._cells[0] = max(in_use, default=-1) + 1

    def _zero(self, index: int) -> None:
        cells = self._cells
        cells[_ACTIVE + index] = 0
        cells[_OPEN + index] = 0
        cells[_ACCEPTED + index] = 0

    def open_connections(self, index: int) -> int | None:
        """The live open-connection count of an active row (None when inactive)."""
        cells = self._cells
        return cells[_OPEN + index] if cells[_ACTIVE + index] else None

    # -- worker side ------------------------------------------------------------

    def gate(self, index: int) -> AcceptGate:
        return AcceptGate(self._cells, index)


class AcceptGate:
    """One worker's row: it publishes its counts and asks for its allowance."""

    __slots__ = ("_cells", "_checked_at", "_progress", "_waiting_since", "index")

    def __init__(self, cells: memoryview, index: int) -> None:
        self._cells = cells
        self.index = index
        self._waiting_since: float | None = None  # over its share since (monotonic)
        self._progress = 0  # the siblings' accepted total when that began
        self._checked_at = 0.0  # the last look while over its share

    def join(self, open_connections: int) -> None:
        """Start counting as a worker that accepts."""
        self._cells[_OPEN + self.index] = open_connections
        self._cells[_ACTIVE + self.index] = 1

    def leave(self) -> None:
        """Stop accepting (drain): the siblings share the new connections without us."""
        self._cells[_ACTIVE + self.index] = 0
        self._cells[_OPEN + self.index] = 0

    def publish(self, open_connections: int) -> None:
        """Called on every connection opened or closed while active."""
        if self._cells[_ACTIVE + self.index]:
            self._cells[_OPEN + self.index] = open_connections

    def accepted(self, count: int) -> None:
        self._cells[_ACCEPTED + self.index] += count

    def listener(self, sock: socket.socket) -> SharedListener:
        """This gate as one shared listener's acceptor asks it (http/accept.py)."""
        return SharedListener(self, sock)

    def allowance(self, queue: AcceptQueue) -> int:
        """How many connections this worker may accept now from `queue` (0: pause)."""
        cells = self._cells
        rows = cells[0]
        active = sum(cells[_ACTIVE : _ACTIVE + rows])
        if active <= 1:
            return UNLIMITED
        opened = cells[_OPEN : _OPEN + rows]
        total = sum(opened)
        own = cells[_OPEN + self.index]
        queued = queue.length()
        share = math.ceil((total + queued) / active)
        allowance = share + ACCEPT_SLACK - own
        if allowance <= 0 and not queue.exact:
            queued = queue.count()  # costly: only before pausing
            share = math.ceil((total + queued) / active)
            allowance = share + ACCEPT_SLACK - own
        if allowance > 0:
            self._waiting_since = None
            return allowance
        progress = sum(cells[_ACCEPTED : _ACCEPTED + rows]) - cells[_ACCEPTED + self.index]
        now = time.monotonic()
        # A wait goes on while connections stay queued (a look every PAUSE);
        # a long silence means the queue emptied and this is a new wait.
        fresh = now - self._checked_at > STALL_AFTER
        self._checked_at = now
        if self._waiting_since is None or progress != self._progress or fresh:
            self._waiting_since = now
            self._progress = progress
            return 0
        if now - self._waiting_since < STALL_AFTER:
            return 0
        # The rows under their share have not accepted for STALL_AFTER although
        # connections are queued: share among the others only.
        flags = cells[_ACTIVE : _ACTIVE + rows]
        serving = [n for n, flag in zip(opened, flags, strict=True) if flag and n >= share]
        share = math.ceil((sum(serving) + queued) / len(serving))
        return max(1, share + ACCEPT_SLACK - own)

    def excess(self, releasing: int) -> int:
        """Connections to close gently now, `releasing` being already on their way out.

        A worker above the fair share gives back half of what it holds above
        it when it exceeds the share by more than the tolerance, or when a
        sibling is that far below it (a worker just added, or one that lost
        the race for the reconnections).
        """
        cells = self._cells
        if not cells[_ACTIVE + self.index]:
            return 0
        rows = cells[0]
        flags = cells[_ACTIVE : _ACTIVE + rows]
        counts = [n for n, flag in zip(cells[_OPEN : _OPEN + rows], flags, strict=True) if flag]
        if len(counts) <= 1:
            return 0
        fair = math.ceil(sum(counts) / len(counts))
        keep = cells[_OPEN + self.index] - releasing
        slack = tolerance(fair)
        if keep <= fair or (keep <= fair + slack and min(counts) >= fair - slack):
            return 0
        return math.ceil((keep - fair) / 2)


class SharedListener:
    """One listener shared with the siblings: how many of its queued connections to take."""

    __slots__ = ("gate", "queue")

    pause: Final = PAUSE  # how long to look away when the allowance is 0

    def __init__(self, gate: AcceptGate, sock: socket.socket) -> None:
        self.gate = gate
        self.queue = AcceptQueue(sock)

    def allowance(self) -> int:
        return self.gate.allowance(self.queue)

    def accepted(self, count: int) -> None:
        self.gate.accepted(count)

    def close(self) -> None:
        self.queue.close()


def tolerance(fair: int) -> int:
    """How far above its fair share a worker may stay without closing connections.

    Well above ACCEPT_SLACK, so connections are not closed over the ordinary
    jitter of a burst, and relative, so a large pool is not churned for a few.
    """
    return 2 + fair // 8


class AcceptQueue:
    """How many connections wait in one listener's accept queue (at least 1).

    A TCP listener answers one getsockopt(TCP_INFO), so `length` is exact.
    A unix listener answers only a sock_diag netlink request (tens of
    microseconds), so `length` says 1 and `count` asks the kernel, which the
    gate does only before pausing.  Without sock_diag (no unix_diag module)
    `count` says 1 too, and the workers take turns in smaller steps.
    """

    __slots__ = ("_diag", "_netlink", "_request", "exact", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.exact = sock.family != socket.AF_UNIX
        self._diag = not self.exact  # False once sock_diag failed: never ask again
        self._netlink: socket.socket | None = None
        self._request = b""  # built on first use

    def length(self) -> int:
        """The queue's length if the kernel tells it cheaply, else 1."""
        if not self.exact:
            return 1
        try:
            info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_READ)
        except OSError:
            return 1
        queued: int = struct.unpack_from("I", info, _TCP_INFO_QUEUED)[0]
        return max(queued, 1)

    def count(self) -> int:
        """The queue's length, however costly to learn."""
        if self.exact:
            return self.length()
        if not self._diag:
            return 1
        try:
            return max(self._ask_unix_diag(), 1)
        except OSError:
            self._diag = False
            self.close()
            return 1

    def _ask_unix_diag(self) -> int:
        if self._netlink is None:
            self._netlink = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG)
            inode = os.fstat(self.sock.fileno()).st_ino
            body = _UNIX_DIAG_REQ.pack(
                socket.AF_UNIX, 0, 0, _ANY, inode, _UDIAG_SHOW_RQLEN, _ANY, _ANY
            )
            size = _NLMSG_HEADER.size + len(body)
            header = _NLMSG_HEADER.pack(size, _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 0, 0)
            self._request = header + body
        # The kernel answers within send(), so the reply is there to read.
        self._netlink.send(self._request)
        reply = self._netlink.recv(4096, socket.MSG_DONTWAIT)
        length, kind = _NLMSG_HEADER.unpack_from(reply)[:2]
        if kind != _SOCK_DIAG_BY_FAMILY:
            raise OSError("sock_diag did not describe the socket")
        offset = _NLMSG_HEADER.size + _UNIX_DIAG_MSG_SIZE
        while offset + _NLATTR.size <= length:
            size, attribute = _NLATTR.unpack_from(reply, offset)
            if attribute == _UNIX_DIAG_RQLEN:
                queued: int = struct.unpack_from("I", reply, offset + _NLATTR.size)[0]
                return queued
            offset += (size + 3) & ~3  # attributes are 4-byte aligned
        raise OSError("sock_diag gave no queue length")

    def close(self) -> None:
        if self._netlink is not None:
            self._netlink.close()
            self._netlink = None


def migrate_req() -> bool | None:
    """net.ipv4.tcp_migrate_req (Linux >= 5.14): None when the kernel lacks it."""
    try:
        with open("/proc/sys/net/ipv4/tcp_migrate_req", encoding="ascii") as fh:
            return fh.read().strip() == "1"
    except OSError:
        return None


def mode(config: Config, listeners: Sequence[Listener]) -> str:
    """The balancing in use, as `prefork status` shows it: connections, off, reuse-port."""
    modes = []
    if any(listener.reserved_only for listener in listeners):
        modes.append("reuse-port")
    if not listeners or not all(listener.reserved_only for listener in listeners):
        modes.append(config.balance)
    return ", ".join(modes)


def describe(config: Config, listeners: Sequence[Listener]) -> str:
    """The banner's line: the mode, and what it means on this kernel."""
    parts = []
    for word in mode(config, listeners).split(", "):
        if word == "connections":
            parts.append("connections (each worker accepts its share of the shared listener)")
        elif word == "off":
            parts.append("off (the first worker awake accepts up to 16 connections at a time)")
        else:
            migrate = migrate_req()
            if migrate:
                kernel = "tcp_migrate_req=1: a draining worker's queue moves to its siblings"
            elif migrate is None:
                kernel = "no tcp_migrate_req: a draining worker's queued connections can be reset"
            else:
                kernel = "tcp_migrate_req=0: a draining worker's queued connections can be reset"
            parts.append(f"reuse-port (the kernel spreads TCP connections by hash; {kernel})")
    return "; ".join(parts)
