"""The connection table and the accept gate (prefork/balance.py), without processes."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop

from prefork import balance
from prefork.config import Config
from prefork.http.accept import Acceptor
from prefork.sockets import Listener


@pytest.fixture
def table() -> balance.ConnectionTable:
    return balance.ConnectionTable()


def workers(table: balance.ConnectionTable, *opened: int) -> list[balance.AcceptGate]:
    """One active row per count, as forked workers that started serving."""
    gates = []
    for count in opened:
        row = table.claim()
        assert row is not None
        gate = table.gate(row)
        gate.join(count)
        gates.append(gate)
    return gates


class Queued(balance.AcceptQueue):
    """A queue of a known length, told cheaply (as TCP does) or only when counted (unix)."""

    def __init__(self, queued: int, exact: bool = True) -> None:  # no socket
        self.exact = exact
        self.queued = queued
        self.counted = 0

    def length(self) -> int:
        return self.queued if self.exact else 1

    def count(self) -> int:
        self.counted += 1
        return self.queued


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        monkeypatch.setattr(time, "monotonic", lambda: self.now)


def test_rows_are_handed_out_lowest_first_and_zeroed(table: balance.ConnectionTable) -> None:
    first, second = workers(table, 5, 7)
    assert (first.index, second.index) == (0, 1)
    assert table.open_connections(0) == 5
    table.release(0)
    assert table.open_connections(0) is None  # inactive: status falls back to heartbeats
    row = table.claim()
    assert row == 0
    assert table.open_connections(0) is None  # zeroed until its worker joins
    assert table.open_connections(1) == 7


def test_a_full_table_hands_out_nothing(table: balance.ConnectionTable) -> None:
    rows = [table.claim() for _ in range(balance.ROWS)]
    assert None not in rows
    assert table.claim() is None
    table.release(rows[17])  # type: ignore[arg-type]
    assert table.claim() == 17


def test_a_lone_worker_is_not_limited(table: balance.ConnectionTable) -> None:
    (gate,) = workers(table, 500)
    assert gate.allowance(Queued(64)) == balance.UNLIMITED


def test_the_allowance_is_the_share_of_open_and_queued_connections(
    table: balance.ConnectionTable,
) -> None:
    first, second = workers(table, 0, 0)
    # A burst of 64 queued: each may take 32, plus the slack.
    assert first.allowance(Queued(64)) == 32 + balance.ACCEPT_SLACK
    first.publish(32)
    assert first.allowance(Queued(32)) == balance.ACCEPT_SLACK
    assert second.allowance(Queued(32)) == 32 + balance.ACCEPT_SLACK


def test_a_costly_queue_length_is_asked_only_before_pausing(
    table: balance.ConnectionTable,
) -> None:
    first, _ = workers(table, 0, 0)
    unix = Queued(64, exact=False)
    assert first.allowance(unix) == 1 + balance.ACCEPT_SLACK  # as if 1 were queued
    assert unix.counted == 0
    first.publish(3)  # over the share of 3 + 1 connections: count before pausing
    assert first.allowance(unix) == 34 + balance.ACCEPT_SLACK - 3  # ceil((3 + 64) / 2)
    assert unix.counted == 1


def test_the_least_loaded_worker_is_always_allowed(table: balance.ConnectionTable) -> None:
    gates = workers(table, 40, 3, 25, 12)
    assert gates[1].allowance(Queued(1)) > 0


def test_draining_and_booting_workers_do_not_count(table: balance.ConnectionTable) -> None:
    first, _, draining = workers(table, 10, 10, 50)
    draining.leave()
    draining.publish(49)  # a connection closing after the drain began
    assert table.open_connections(draining.index) is None
    table.claim()  # a worker still booting: its row is not active yet
    assert first.allowance(Queued(2)) == 11 + balance.ACCEPT_SLACK - 10


def test_over_its_share_a_worker_waits_while_a_sibling_accepts(
    table: balance.ConnectionTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    busy, idle = workers(table, 30, 0)
    began = clock.now
    while clock.now - began < balance.STALL_AFTER * 2:  # a look after every pause
        assert busy.allowance(Queued(4)) == 0
        idle.accepted(1)  # the sibling keeps taking connections: keep waiting
        clock.now += balance.PAUSE * 10


def test_a_wait_ends_when_the_queue_empties(
    table: balance.ConnectionTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    busy, _ = workers(table, 30, 0)
    assert busy.allowance(Queued(1)) == 0
    clock.now += balance.STALL_AFTER * 4  # nothing queued meanwhile: no look
    assert busy.allowance(Queued(1)) == 0  # a new wait, not a stall


def test_a_stalled_sibling_is_left_out_after_a_while(
    table: balance.ConnectionTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    first, _, blocked = workers(table, 20, 20, 0)
    began = clock.now
    while clock.now - began < balance.STALL_AFTER:  # a look after every pause
        assert first.allowance(Queued(4)) == 0
        clock.now += balance.PAUSE * 10
    # The blocked sibling took nothing: share among the two others.
    assert first.allowance(Queued(4)) == 22 + balance.ACCEPT_SLACK - 20
    blocked.accepted(1)  # it is back: wait for it again
    assert first.allowance(Queued(4)) == 0


def test_excess_is_halved_above_the_fair_share(table: balance.ConnectionTable) -> None:
    # After a scale-up from 2 to 4 workers holding 64 connections.
    old, _, new, _ = workers(table, 32, 32, 0, 0)
    fair = 16
    assert old.excess(releasing=0) == (32 - fair) // 2
    assert old.excess(releasing=32 - fair) == 0  # already on their way out
    assert new.excess(releasing=0) == 0
    old.leave()
    assert old.excess(releasing=0) == 0


def test_within_the_tolerance_nothing_is_closed(table: balance.ConnectionTable) -> None:
    gates = workers(table, 13, 17, 17, 17)  # a burst's jitter (fair 16, tolerance 4)
    assert [gate.excess(releasing=0) for gate in gates] == [0, 0, 0, 0]


def test_a_sibling_far_below_makes_the_others_give_back() -> None:
    gates = workers(balance.ConnectionTable(), 20, 20, 18, 6)  # fair 16, tolerance 4
    assert [gate.excess(releasing=0) for gate in gates] == [2, 2, 1, 0]


def test_above_the_tolerance_a_worker_gives_back(table: balance.ConnectionTable) -> None:
    gates = workers(table, 23, 14, 14, 13)  # fair 16, tolerance 4
    assert [gate.excess(releasing=0) for gate in gates] == [4, 0, 0, 0]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock


def test_the_accept_queue_of_a_tcp_listener_is_read_cheaply(listener: socket.socket) -> None:
    queue = balance.AcceptQueue(listener)
    clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
    try:
        assert queue.exact
        assert queue.length() == queue.count() == 3
        listener.accept()[0].close()
        assert queue.length() == 2
    finally:
        for client in clients:
            client.close()


def test_the_accept_queue_of_a_unix_listener_is_counted_by_sock_diag(tmp_path: Path) -> None:
    path = str(tmp_path / "s")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(path)
        sock.listen(8)
        queue = balance.AcceptQueue(sock)
        clients = [socket.socket(socket.AF_UNIX) for _ in range(5)]
        try:
            for client in clients:
                client.connect(path)
            assert not queue.exact
            assert queue.length() == 1  # not without a netlink request
            assert queue.count() == 5
            sock.accept()[0].close()
            assert queue.count() == 4
        finally:
            queue.close()
            for client in clients:
                client.close()


class BudgetGate(balance.AcceptGate):
    """Allows `allowed` connections in all, then pauses the acceptor."""

    def __init__(self, allowed: int) -> None:
        super().__init__(balance.ConnectionTable().gate(0)._cells, 0)
        self.allowed = allowed
        self.took = 0

    def allowance(self, queue: balance.AcceptQueue) -> int:
        return self.allowed - self.took

    def accepted(self, count: int) -> None:
        self.took += count


@pytest.mark.parametrize("allowed", [0, 2])
def test_the_acceptor_takes_no_more_than_the_gate_allows(
    listener: socket.socket, allowed: int
) -> None:
    loop = uvloop.new_event_loop()
    gate = BudgetGate(allowed)
    copy = listener.dup()  # the acceptor closes its socket
    acceptor = Acceptor(loop, copy, asyncio.Protocol, gate=gate.listener(copy))
    clients = [socket.create_connection(listener.getsockname()) for _ in range(5)]
    try:
        acceptor.start()
        # Several wake-ups and pauses: the queue stays readable all along.
        loop.run_until_complete(asyncio.sleep(balance.PAUSE * 5))
        assert gate.took == allowed
        assert balance.AcceptQueue(listener).length() == 5 - allowed
    finally:
        acceptor.close()
        for client in clients:
            client.close()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()


def _listener(reserved_only: bool) -> Listener:
    return Listener(socket.socket(), "bound", reserved_only=reserved_only)


@pytest.mark.parametrize(
    ("balance_setting", "reserved", "expected"),
    [
        ("connections", (False,), "connections"),
        ("off", (False,), "off"),
        ("connections", (True,), "reuse-port"),
        ("connections", (True, False), "reuse-port, connections"),
    ],
)
def test_mode_says_how_each_kind_of_listener_is_balanced(
    balance_setting: str, reserved: tuple[bool, ...], expected: str
) -> None:
    listeners = [_listener(r) for r in reserved]
    try:
        config = Config(balance=balance_setting)
        assert balance.mode(config, listeners) == expected
        described = balance.describe(config, listeners)
        assert described.startswith(expected.split(", ", maxsplit=1)[0])
        if "reuse-port" in expected:
            assert "tcp_migrate_req" in described
    finally:
        for lsn in listeners:
            lsn.sock.close()
