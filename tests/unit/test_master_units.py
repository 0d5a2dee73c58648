"""Process-layer pieces that need no server: states, channel, policies, formatting."""

from __future__ import annotations

import os
import signal
import time

import pytest

from prefork.channel import Booted, Channel, Drain, Ready
from prefork.control.display import format_status
from prefork.master import health, slots
from prefork.master.reload import replacement_queue
from prefork.master.workers import TRANSITIONS, IllegalTransition, WorkerHandle, WorkerState


def handle(slot: int = 0, generation: int = 1) -> WorkerHandle:
    master_end, worker_end = Channel.pair()
    worker_end.close()
    return WorkerHandle(pid=1000 + slot, slot=slot, generation=generation, channel=master_end)


def test_every_state_is_in_the_table() -> None:
    assert set(TRANSITIONS) == set(WorkerState)
    assert TRANSITIONS[WorkerState.EXITED] == frozenset()


def test_the_normal_life_of_a_worker() -> None:
    h = handle()
    assert h.serving_capacity
    h.move(WorkerState.READY)
    assert h.ready_at is not None
    h.move(WorkerState.DRAINING)
    assert not h.serving_capacity
    h.move(WorkerState.EXITED)
    assert not h.alive
    h.channel.close()


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ([], WorkerState.BOOTING),
        ([WorkerState.READY], WorkerState.BOOTING),
        ([WorkerState.DRAINING], WorkerState.READY),
        ([WorkerState.EXITED], WorkerState.DRAINING),
    ],
)
def test_illegal_moves_raise(path: list[WorkerState], bad: WorkerState) -> None:
    h = handle()
    for state in path:
        h.move(state)
    with pytest.raises(IllegalTransition, match=f"-> {bad.value}"):
        h.move(bad)
    h.channel.close()


def test_a_retiring_worker_is_not_capacity() -> None:
    h = handle()
    h.move(WorkerState.READY)
    h.retiring = True
    assert not h.serving_capacity
    h.channel.close()


def test_channel_keeps_message_boundaries_and_reports_eof() -> None:
    master, worker = Channel.pair()
    booted = Booted(type="booted", declared="wsgi", detected=True)
    assert worker.send(booted)
    assert worker.send(Ready(type="ready"))
    messages, eof = master.receive()
    assert messages == [booted, {"type": "ready"}]
    assert not eof
    worker.sock.send(b"not json")
    worker.sock.send(b'{"type": "no such message"}')
    worker.close()
    messages, eof = master.receive()
    assert messages == []
    assert eof
    drain = Drain(type="drain", restart=True)
    assert not master.send(drain)  # the peer is gone: dropped, not raised
    master.close()


def test_channel_is_not_inherited_across_exec() -> None:
    master, worker = Channel.pair()
    assert not os.get_inheritable(master.fileno())
    assert not os.get_inheritable(worker.fileno())
    master.close()
    worker.close()


def test_respawn_backoff_is_exponential_and_capped() -> None:
    delays = [slots.respawn_delay(n) for n in range(10)]
    assert delays[:4] == [0.0, 0.5, 1.0, 2.0]
    assert delays[-1] == slots.BACKOFF_MAX
    assert delays == sorted(delays)


def test_exit_descriptions() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert health.describe_exit(status) == "exited with status 4"
    assert health.exit_code(status) == 4
    pid = os.fork()
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert health.describe_exit(status) == "was killed by SIGKILL (not by prefork; out of memory?)"
    assert (
        health.describe_exit(status, "no heartbeat for 5s")
        == "was killed by SIGKILL (by prefork: no heartbeat for 5s)"
    )
    assert health.exit_code(status) is None


def test_reload_replaces_oldest_ready_first() -> None:
    young, old, booting, newer = handle(0), handle(1), handle(2), handle(3, generation=2)
    old.started -= 100
    for h in (young, old, newer):
        h.move(WorkerState.READY)
    queue = replacement_queue([young, old, booting, newer], generation=2)
    assert list(queue) == [old, young]
    for h in (young, old, booting, newer):
        h.channel.close()


def test_status_table() -> None:
    text = format_status(
        {
            "pid": 10,
            "name": "shop",
            "version": "0.1.0",
            "app": "shop:app",
            "state": "running",
            "generation": 2,
            "target": 1,
            "uptime": 61.0,
            "listeners": ["http://127.0.0.1:8000"],
            "balance": "connections",
            "workers": [
                {
                    "slot": 0,
                    "pid": 11,
                    "generation": 2,
                    "state": "ready",
                    "age": 5.0,
                    "requests": 7,
                    "inflight": 1,
                    "connections": 4,
                    "websockets": 2,
                    "rss": 3 * 2**20,
                    "cpu": 1.5,
                    "restarts": 0,
                }
            ],
            "last_reload": {
                "ok": False,
                "generation": 3,
                "detail": "cannot import 'shop:app': boom",
                "finished": time.time(),
            },
        }
    )
    lines = text.splitlines()
    assert lines[0] == "prefork 0.1.0 [shop]: master pid 10, running, up 61s"
    assert lines[1] == "app shop:app, generation 2, target 1 workers"
    assert lines[2] == "listening at http://127.0.0.1:8000"
    assert lines[3] == "balancing: connections"
    assert lines[4].split() == [
        "SLOT", "PID", "GEN", "STATE", "AGE", "REQUESTS", "INFLIGHT", "CONNS", "WS", "RSS",
        "CPU%", "RESTARTS",
    ]  # fmt: skip
    assert lines[5].split() == [
        "0", "11", "2", "ready", "5s", "7", "1", "4", "2", "3.0M", "1.5", "0"
    ]  # fmt: skip
    assert "last reload: FAILED" in lines[6]
    assert "boom" in lines[6]
