"""Worker-health pieces without a server: slot accounting, the memory guard, the status table."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from prefork import procfs
from prefork.control.display import format_status
from prefork.master import slots
from prefork.worker import memory

MIB = 1 << 20


def test_boot_failures_back_off_per_slot_then_the_slot_is_errored() -> None:
    book = slots.SlotBook()
    delays = [book.boot_failed(0, 100.0, "exited with status 1") for _ in range(4)]
    assert delays == [0.5, 1.0, 2.0, 4.0]
    assert not book.may_spawn(0, 103.9)
    assert book.may_spawn(0, 104.0)
    assert book.may_spawn(1, 100.0)  # another slot is not held back
    assert book.boot_failed(0, 104.0, "exited with status 1") == float("inf")
    assert book[0].errored
    assert not book.may_spawn(0, 10_000.0)
    assert book.errored(range(1))
    assert not book.errored(range(2))
    book.clear_errors()  # a reload or a scale
    assert book.may_spawn(0, 104.0)
    assert not book.errored(range(1))


def test_a_slot_that_stayed_up_starts_over() -> None:
    book = slots.SlotBook()
    book.boot_failed(0, 0.0, "x")
    book.boot_failed(0, 1.0, "x")
    book.stable(0)
    assert book[0].failures == 0
    assert book.boot_failed(0, 2.0, "x") == 0.5
    for _ in range(slots.ERRORED_AFTER):
        book.boot_failed(1, 0.0, "x")
    assert book[1].errored
    book.stable(1)  # a worker of that slot has served since (a retried replacement)
    assert not book[1].errored


def test_replacements_are_counted_by_reason() -> None:
    book = slots.SlotBook()
    book.replaced(1, slots.CRASH)
    book.replaced(1, slots.MEMORY)
    book.replaced(1, slots.MEMORY)
    assert book.summary(1) == "3 restarts (crash 1, memory 2)"
    status = book.status(1, time.monotonic())
    assert status["restarts"] == 3
    assert status["reasons"] == {"crash": 1, "memory": 2}
    last = status["last_restart"]
    assert last is not None
    assert last["reason"] == "memory"
    assert book.status(7, 0.0)["restarts"] == 0


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, bool]] = []

    def __call__(self, metric: str, used: int, hard: bool) -> None:
        self.calls.append((metric, used, hard))


def test_the_guard_reports_the_soft_limit_once_then_the_hard_one() -> None:
    rss = procfs.resident_bytes(procfs.ProcFile("/proc/self/statm"))
    assert rss > 0
    recorder = Recorder()
    under = memory.MemoryGuard(rss * 10, "rss", recorder)
    under.check(0.0)
    assert recorder.calls == []
    soft = memory.MemoryGuard(int(rss / 1.2), "rss", recorder)  # over, under 1.5x
    soft.check(0.0)
    soft.check(0.1)
    assert [(m, hard) for m, _, hard in recorder.calls] == [("rss", False)]
    hard = memory.MemoryGuard(rss // 4, "rss", recorder)
    hard.check(0.0)
    hard.check(0.1)
    assert [(m, h) for m, _, h in recorder.calls] == [("rss", False), ("rss", True)]
    for guard in (under, soft, hard):
        guard.close()


@pytest.mark.parametrize("metric", ["uss", "pss"])
def test_uss_and_pss_are_read_only_when_rss_is_over_the_limit(metric: str) -> None:
    recorder = Recorder()
    guard = memory.MemoryGuard(1, metric, recorder)  # everything is over 1 byte
    assert guard.rollup is not None
    used = procfs.rollup_bytes(guard.rollup, metric)
    rss = procfs.resident_bytes(guard.statm)
    assert 0 < used <= rss
    guard.check(5.0)
    assert recorder.calls[0][0] == metric
    assert recorder.calls[0][2]  # far over 1.5 x 1 byte
    guard.close()


def test_the_status_table_names_the_metric_and_explains_restarts() -> None:
    at = time.mktime((2026, 12, 2, 12, 0, 1, 0, 0, -1))
    worker = {
        "slot": 0,
        "pid": 11,
        "generation": 1,
        "state": "ready",
        "age": 5.0,
        "requests": 7,
        "inflight": 0,
        "rss": 50 * MIB,
        "memory": 30 * MIB,
        "cpu": 0.0,
        "restarts": 3,
        "reasons": {"crash": 1, "memory": 2},
        "last_restart": {"reason": "memory", "at": at},
    }
    idle = {
        "slot": 1,
        "restarts": 5,
        "reasons": {"crash": 5},
        "last_restart": {"reason": "crash", "at": at},
        "errored": True,
        "respawn_in": 0.0,
    }
    text = format_status(
        {
            "pid": 10,
            "version": "0.1.0",
            "app": "shop:app",
            "state": "errored",
            "generation": 1,
            "target": 2,
            "uptime": 61.0,
            "memory_metric": "uss",
            "workers": [worker],
            "idle_slots": [idle],
        }
    )
    lines = text.splitlines()
    table = lines.index(next(line for line in lines if line.startswith("SLOT")))
    assert lines[table].split()[9] == "USS"
    assert lines[table + 1].split() == [
        "0", "11", "1", "ready", "5s", "7", "0", "0", "0", "30.0M", "0.0", "3"
    ]  # fmt: skip
    assert lines[table + 2].split() == [
        "1", "-", "-", "errored", "-", "-", "-", "-", "-", "-", "-", "5"
    ]  # fmt: skip
    assert lines[table + 3] == "slot 0: 3 restarts (crash 1, memory 2), last: memory at 12:00:01"
    assert lines[table + 4] == "slot 1: 5 restarts (crash 5), last: crash at 12:00:01"


@pytest.mark.parametrize("metric", ["rss", "uss", "pss"])
def test_a_process_memory_is_read_from_proc(metric: str) -> None:
    used = procfs.memory_bytes(os.getpid(), metric)
    assert used is not None
    assert 0 < used <= procfs.resident_bytes(procfs.ProcFile("/proc/self/statm")) * 2


def test_a_process_cpu_time_is_read_from_proc() -> None:
    before = procfs.cpu_seconds(os.getpid())
    assert before is not None
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    after = procfs.cpu_seconds(os.getpid())
    assert after is not None
    assert after > before


def test_a_process_that_is_gone_has_no_figures() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names nothing (until the kernel reuses it)
    assert procfs.cpu_seconds(child.pid) is None
    assert procfs.memory_bytes(child.pid, "rss") is None
    assert procfs.memory_bytes(child.pid, "pss") is None
