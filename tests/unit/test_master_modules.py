"""The master's delegated modules without processes: control requests, commands, status.

An `Arbiter` is built but never run: no listener, no fork.  Worker handles
are put in its table by hand, so what the commands and the status read is
exactly what a test set up.
"""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Iterator
from unittest.mock import ANY

import pytest

from prefork.channel import Channel
from prefork.config import Config
from prefork.control.protocol import BadRequest, Response, parse_request
from prefork.master import health, slots, status
from prefork.master.arbiter import Arbiter, StopMode
from prefork.master.reload import ReloadRun, replacement_queue
from prefork.master.workers import WorkerHandle, WorkerState


@pytest.fixture
def arbiter() -> Iterator[Arbiter]:
    master = Arbiter(Config(app="shop:app"), {})
    master.target = 2
    yield master
    for handle in master.workers.values():
        handle.channel.close()
    master.selector.close()


def add_worker(arbiter: Arbiter, slot: int, state: WorkerState = WorkerState.READY) -> WorkerHandle:
    master_end, worker_end = Channel.pair()
    worker_end.close()
    pid = 5000 + len(arbiter.workers)
    handle = WorkerHandle(pid, slot, arbiter.generation, master_end)
    if state is not WorkerState.BOOTING:
        handle.move(WorkerState.READY)
    arbiter.workers[handle.pid] = handle
    return handle


class Replies:
    """A `Reply` that keeps what it was given."""

    def __init__(self) -> None:
        self.answers: list[Response] = []

    def __call__(self, response: Response) -> None:
        self.answers.append(response)

    @property
    def last(self) -> Response:
        assert len(self.answers) == 1, self.answers
        return self.answers[0]


def ask(arbiter: Arbiter, request: dict[str, object]) -> Replies:
    replies = Replies()
    arbiter.commands.handle(request, replies)
    return replies


# -- the control protocol ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ({"cmd": "status"}, {"cmd": "status"}),
        ({"cmd": "reload"}, {"cmd": "reload", "wait": False}),
        ({"cmd": "reload", "wait": True}, {"cmd": "reload", "wait": True}),
        # As before the types: anything but true answers at once.
        ({"cmd": "reload", "wait": "yes"}, {"cmd": "reload", "wait": False}),
        ({"cmd": "stop", "wait": True}, {"cmd": "stop", "wait": True}),
        (
            {"cmd": "scale", "workers": -1, "relative": True},
            {"cmd": "scale", "workers": -1, "relative": True, "wait": False},
        ),
        ({"cmd": "logs"}, {"cmd": "logs", "lines": 0, "after": 0}),
        (
            {"cmd": "logs", "lines": 5, "after": 9, "worker": 1},
            {"cmd": "logs", "lines": 5, "after": 9, "worker": 1},
        ),
    ],
)
def test_well_formed_requests(raw: dict[str, object], parsed: dict[str, object]) -> None:
    assert parse_request(raw) == parsed


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ({}, "unknown command None"),
        ({"cmd": "upgrade"}, "unknown command 'upgrade'"),  # USR2 is the way to upgrade
        ({"cmd": "scale"}, "scale needs a worker count"),
        ({"cmd": "scale", "workers": "4"}, "scale needs a worker count"),
        ({"cmd": "scale", "workers": True}, "scale needs a worker count"),
        ({"cmd": "logs", "lines": "10"}, "lines and after must be integers"),
        ({"cmd": "logs", "worker": "a"}, "worker must be a slot number"),
    ],
)
def test_malformed_requests(raw: dict[str, object], error: str) -> None:
    with pytest.raises(BadRequest, match=error):
        parse_request(raw)


# -- commands ----------------------------------------------------------------------------


def test_a_malformed_request_is_a_usage_error(arbiter: Arbiter) -> None:
    answer = ask(arbiter, {"cmd": "scale", "workers": "many"}).last
    assert answer == {"ok": False, "error": "scale needs a worker count", "usage": True}


def test_scale_below_one_is_refused_and_changes_nothing(arbiter: Arbiter) -> None:
    answer = ask(arbiter, {"cmd": "scale", "workers": -2, "relative": True}).last
    assert answer == {"ok": False, "error": "the worker count must stay >= 1", "usage": True}
    assert arbiter.target == 2
    assert arbiter.scaled_to is None


def test_scale_is_relative_when_asked(arbiter: Arbiter) -> None:
    answer = ask(arbiter, {"cmd": "scale", "workers": 1, "relative": True}).last
    assert answer == {"ok": True, "result": "scaling to 3 workers"}
    assert (arbiter.target, arbiter.scaled_to) == (3, 3)


def test_a_waiting_scale_is_answered_once_every_worker_is_ready(arbiter: Arbiter) -> None:
    add_worker(arbiter, 0)
    booting = add_worker(arbiter, 1, WorkerState.BOOTING)
    replies = ask(arbiter, {"cmd": "scale", "workers": 2, "wait": True})
    arbiter.commands.tick()
    assert replies.answers == []
    booting.move(WorkerState.READY)
    arbiter.commands.tick()
    assert replies.last == {"ok": True, "result": "scaled to 2 workers, all ready"}


def test_a_waiting_scale_fails_when_another_scale_supersedes_it(arbiter: Arbiter) -> None:
    replies = ask(arbiter, {"cmd": "scale", "workers": 4, "wait": True})
    ask(arbiter, {"cmd": "scale", "workers": 5})
    arbiter.commands.tick()
    assert replies.last == {
        "ok": False,
        "error": "superseded: the target is now 5 workers, not 4",
    }


def test_stop_goes_through_the_signal_queue(arbiter: Arbiter) -> None:
    replies = ask(arbiter, {"cmd": "stop", "wait": True})
    assert list(arbiter.signals) == [signal.SIGTERM]
    assert replies.answers == []
    arbiter.commands.stopped(0)
    assert replies.last == {"ok": True, "result": "stopped"}


def test_logs_of_one_worker(arbiter: Arbiter) -> None:
    arbiter.ring.add("master", "log", "Starting")
    arbiter.ring.add("worker 1", "stderr", "oops")
    arbiter.ring.add("worker 0", "stdout", "hello")
    answer = ask(arbiter, {"cmd": "logs", "worker": 1}).last
    assert answer == {"ok": True, "last": 3, "entries": [(2, ANY, "worker 1", "stderr", "oops")]}


# -- status ------------------------------------------------------------------------------


def test_status_rows_for_workers_and_crash_looping_slots(arbiter: Arbiter) -> None:
    serving = add_worker(arbiter, 0)
    serving.counters = {**serving.counters, "requests": 7, "rss": 1024}
    replacement = add_worker(arbiter, 0, WorkerState.BOOTING)
    serving.attach(replacement)
    for _ in range(slots.ERRORED_AFTER):
        arbiter.slots.boot_failed(1, 0.0, "boom")
    assert ask(arbiter, {"cmd": "status"}).last == status.status(arbiter) | {"uptime": ANY}
    report = status.status(arbiter)
    rows = [(w["slot"], w["state"], w["requests"], w["rss"]) for w in report["workers"]]
    assert rows == [(0, "ready (retiring)", 7, 1024), (0, "booting", 0, 0)]
    assert [(s["slot"], s["errored"], s["failures"]) for s in report["idle_slots"]] == [
        (1, True, slots.ERRORED_AFTER)
    ]
    assert report["state"] == "errored"
    assert (report["app"], report["target"], report["scaled"]) == ("shop:app", 2, False)


def test_the_state_word_says_the_most_urgent_thing(arbiter: Arbiter) -> None:
    assert status.state_word(arbiter) == "starting"
    arbiter.initial_ready = True
    assert status.state_word(arbiter) == "running"
    arbiter.reloads.run = ReloadRun(
        generation=2,
        reason="test",
        old_config=arbiter.config,
        old_tls=None,
        old_generation=1,
        old_target=2,
        queue=replacement_queue([], 2),
    )
    assert status.state_word(arbiter) == "reloading"
    arbiter.slots.boot_failed(0, 0.0, "boom")
    arbiter.slots[0].errored = True
    assert status.state_word(arbiter) == "errored"
    arbiter.stop_mode = StopMode.GRACEFUL
    assert status.state_word(arbiter) == "stopping"


def test_the_systemd_snapshot_counts_ready_workers_and_requests(arbiter: Arbiter) -> None:
    first, second = add_worker(arbiter, 0), add_worker(arbiter, 1, WorkerState.BOOTING)
    first.counters = {**first.counters, "requests": 3}
    second.counters = {**second.counters, "requests": 4}
    snap = status.snapshot(arbiter)
    assert (snap.ready, snap.target, snap.requests) == (1, 2, 7)


# -- replacement links -------------------------------------------------------------------


def test_a_failed_replacement_gives_its_predecessor_back(arbiter: Arbiter) -> None:
    old, new = add_worker(arbiter, 0), add_worker(arbiter, 1, WorkerState.BOOTING)
    old.attach(new)
    assert old.retiring
    assert not old.serving_capacity
    assert new.detach(predecessor_serves_on=True) is old
    assert not old.retiring
    assert new.replaces is None
    assert new.detach(predecessor_serves_on=True) is None


def test_a_ready_replacement_leaves_its_predecessor_retiring(arbiter: Arbiter) -> None:
    old, new = add_worker(arbiter, 0), add_worker(arbiter, 1, WorkerState.BOOTING)
    old.attach(new)
    assert new.detach(predecessor_serves_on=False) is old
    assert old.retiring  # it drains next


# -- the watchdog ------------------------------------------------------------------------


class Signals:
    """Stands in for the arbiter's kill and send_signal: no signal leaves the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, arbiter: Arbiter) -> None:
        self.sent: list[tuple[int, int, str]] = []
        monkeypatch.setattr(arbiter, "kill", self.kill)
        monkeypatch.setattr(arbiter, "send_signal", self.send_signal)

    def kill(self, handle: WorkerHandle, why: str, signum: int = signal.SIGKILL) -> None:
        handle.killed_for = why
        self.sent.append((handle.pid, signum, why))

    def send_signal(self, handle: WorkerHandle, signum: int) -> None:
        self.sent.append((handle.pid, signum, ""))


def test_the_watchdog_kills_slow_boots_and_aborts_silent_workers(
    arbiter: Arbiter, monkeypatch: pytest.MonkeyPatch
) -> None:
    signals = Signals(monkeypatch, arbiter)
    arbiter.config = dataclasses.replace(arbiter.config, boot_timeout=10.0, timeout=5.0)
    booting = add_worker(arbiter, 0, WorkerState.BOOTING)
    silent = add_worker(arbiter, 1)
    fine = add_worker(arbiter, 2)
    now = booting.started + 11
    silent.last_seen = now - 6
    fine.last_seen = now - 1
    health.watch(arbiter, now)
    assert signals.sent == [
        (booting.pid, signal.SIGKILL, "not ready within --boot-timeout 10s"),
        (silent.pid, signal.SIGABRT, "no heartbeat for 5s"),
        (silent.pid, signal.SIGCONT, ""),
    ]
    assert (booting.end_reason, silent.end_reason, fine.end_reason) == ("timeout", "timeout", None)
    signals.sent.clear()
    health.watch(arbiter, now + 1)  # each is dealt with once
    assert signals.sent == []
    assert silent.kill_at is not None
    health.watch(arbiter, silent.kill_at)  # the abort did not end it
    assert signals.sent == [(silent.pid, signal.SIGKILL, "no heartbeat for 5s")]


# -- what an exit means ------------------------------------------------------------------


def exited(code: int) -> int:
    """A waitpid status for a process that exited with `code`."""
    return code << 8


def reap(arbiter: Arbiter, handle: WorkerHandle, status: int) -> None:
    was = handle.state
    del arbiter.workers[handle.pid]
    handle.channel.close()
    handle.move(WorkerState.EXITED)
    arbiter.exits.judge(handle, status, was)


def test_a_broken_first_boot_stops_the_master_with_its_status(
    arbiter: Arbiter, monkeypatch: pytest.MonkeyPatch
) -> None:
    signals = Signals(monkeypatch, arbiter)
    sibling = add_worker(arbiter, 1, WorkerState.BOOTING)
    reap(arbiter, add_worker(arbiter, 0, WorkerState.BOOTING), exited(4))
    assert arbiter.exit_status == 4
    assert arbiter.stop_mode is StopMode.FAST
    assert signals.sent == [(sibling.pid, signal.SIGQUIT, "")]


def test_a_failed_replacement_leaves_the_old_worker_serving(
    arbiter: Arbiter, monkeypatch: pytest.MonkeyPatch
) -> None:
    Signals(monkeypatch, arbiter)
    arbiter.initial_ready = True
    old = add_worker(arbiter, 0)
    new = add_worker(arbiter, 0, WorkerState.BOOTING)
    old.attach(new)
    reap(arbiter, new, exited(3))
    assert old.serving_capacity
    assert old.retry_at > 0
    assert arbiter.slots[0].failures == 1
    assert arbiter.stop_mode is None


def test_a_crash_after_serving_is_counted_but_not_backed_off(arbiter: Arbiter) -> None:
    arbiter.initial_ready = True
    worker = add_worker(arbiter, 0)
    assert worker.ready_at is not None
    worker.ready_at -= slots.EARLY_WINDOW + 1
    reap(arbiter, worker, signal.SIGSEGV)  # killed by a signal
    record = arbiter.slots[0]
    assert (record.restarts, record.last_reason, record.failures) == (1, "crash", 0)
    assert arbiter.slots.may_spawn(0, 0.0)


def test_an_early_crash_backs_its_slot_off(arbiter: Arbiter) -> None:
    arbiter.initial_ready = True
    reap(arbiter, add_worker(arbiter, 0), signal.SIGSEGV)
    record = arbiter.slots[0]
    assert record.failures == 1
    assert not arbiter.slots.may_spawn(0, record.not_before - 0.1)
