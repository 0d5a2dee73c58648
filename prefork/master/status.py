"""What the master reports about itself: `prefork status`, its state word, systemd's STATUS.

Read-only views of the arbiter's state, built per request (a status
request, a systemd status tick); nothing here changes the master.  The
shapes are the control protocol's (control/protocol.py), and
control/display.py lays them out as text.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from prefork import __version__, balance, procfs, systemd
from prefork.control.protocol import IdleSlotStatus, MasterState, Status, WorkerStatus
from prefork.master.workers import WorkerHandle, WorkerState

if TYPE_CHECKING:
    from prefork.master.arbiter import Arbiter


def state_word(arbiter: Arbiter) -> MasterState:
    """One word for the whole master, most urgent first."""
    if arbiter.stop_mode:
        return "stopping"
    if any(record.errored for record in arbiter.slots.records.values()):
        return "errored"
    if arbiter.reloads.in_progress:
        return "reloading"
    return "running" if arbiter.initial_ready else "starting"


def open_connections(arbiter: Arbiter, handle: WorkerHandle) -> int:
    """Live from the connection table while it accepts; else from its last heartbeat."""
    live = None if handle.row is None else arbiter.table.open_connections(handle.row)
    return handle.counters["connections"] if live is None else live


def cpu_percent(handle: WorkerHandle, now: float) -> float:
    """The worker's CPU use since the previous status (0.0 the first time), as psutil's."""
    used = procfs.cpu_seconds(handle.pid)
    if used is None:
        return 0.0
    previous, handle.cpu_sample = handle.cpu_sample, (now, used)
    if previous is None or now <= previous[0]:
        return 0.0
    return round(100 * (used - previous[1]) / (now - previous[0]), 1)


def worker_status(arbiter: Arbiter, handle: WorkerHandle, now: float) -> WorkerStatus:
    metric = arbiter.config.memory_metric
    memory: int | None = handle.counters["rss"]
    if metric != "rss":  # a page-table walk: only when asked
        memory = procfs.memory_bytes(handle.pid, metric)
    counters = handle.counters
    return WorkerStatus(
        slot=handle.slot,
        pid=handle.pid,
        generation=handle.generation,
        state=handle.state.value + (" (retiring)" if handle.retiring else ""),
        age=round(now - handle.started, 1),
        requests=counters["requests"],
        inflight=counters["inflight"],
        connections=open_connections(arbiter, handle),
        websockets=counters["websockets"],
        rss=counters["rss"],
        memory=memory or 0,
        cpu=cpu_percent(handle, now),
        **arbiter.slots.status(handle.slot, now),
    )


def status(arbiter: Arbiter) -> Status:
    """The answer to `prefork status` (and what `prefork top` redraws)."""
    now = time.monotonic()
    config = arbiter.config
    handles = sorted(arbiter.workers.values(), key=lambda w: (w.slot, w.started))
    live = {handle.slot for handle in handles}
    # Slots with no live worker because of a crash loop still have a row.
    idle_slots = [
        IdleSlotStatus(slot=slot, **arbiter.slots.status(slot, now))
        for slot, record in sorted(arbiter.slots.records.items())
        if slot not in live and (record.errored or record.not_before > now)
    ]
    tls = arbiter.tls is not None
    return Status(
        ok=True,
        pid=os.getpid(),
        name=config.name,
        app=config.app,
        version=__version__,
        uptime=round(time.time() - arbiter.started_wall, 1),
        generation=arbiter.generation,
        target=arbiter.target,
        scaled=arbiter.scaled_to is not None,
        state=state_word(arbiter),
        listeners=[listener.url(tls) for listener in arbiter.listeners],
        balance=balance.mode(config, arbiter.listeners),
        reloading=arbiter.reloads.in_progress,
        last_reload=arbiter.reloads.last,
        memory_metric=config.memory_metric,
        max_memory=config.max_memory,
        workers=[worker_status(arbiter, handle, now) for handle in handles],
        idle_slots=idle_slots,
    )


def snapshot(arbiter: Arbiter) -> systemd.Snapshot:
    """What systemd's STATUS= line says (systemd.py formats it)."""
    workers = arbiter.workers.values()
    return systemd.Snapshot(
        state=state_word(arbiter),
        ready=sum(1 for w in workers if w.state is WorkerState.READY),
        target=arbiter.target,
        requests=sum(w.counters["requests"] for w in workers),
        last_reload=arbiter.reloads.last,
    )
