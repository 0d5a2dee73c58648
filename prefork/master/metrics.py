"""What the master knows, as Prometheus metrics: workers, restarts, reloads, requests.

`render()` is called per scrape of `/metrics` (prefork/master/endpoint.py).
Request counters come from the workers' heartbeats (prefork/observe/metrics.py);
everything else is read from the arbiter's own state, plus one CPU time
reading per worker (/proc).  The metric names are listed in docs/operations.md.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from prefork import __version__, procfs
from prefork.channel import CounterName
from prefork.master.workers import WorkerHandle, WorkerState
from prefork.observe.metrics import Exposition, request_families

if TYPE_CHECKING:
    from prefork.master.arbiter import Arbiter


def render(arbiter: Arbiter) -> str:
    out = Exposition()
    out.family(
        "prefork_build_info",
        "gauge",
        "prefork and Python versions (always 1).",
        [({"version": __version__, "python": platform.python_version()}, 1)],
    )
    out.family(
        "prefork_start_time_seconds",
        "gauge",
        "When the master started, in seconds since the epoch.",
        [({}, round(arbiter.started_wall, 3))],
    )
    out.family(
        "prefork_uptime_seconds",
        "gauge",
        "Seconds since the master started.",
        [({}, round(time.time() - arbiter.started_wall, 3))],
    )
    workers = list(arbiter.workers.values())
    states = {state.value: 0 for state in WorkerState}
    for handle in workers:
        states[handle.state.value] += 1
    out.family(
        "prefork_workers",
        "gauge",
        "Worker processes, by state.",
        [({"state": state}, count) for state, count in states.items()],
    )
    out.family(
        "prefork_workers_target",
        "gauge",
        "The number of workers the master keeps.",
        [({}, arbiter.target)],
    )
    request_families(out, arbiter.metrics_totals.total())
    _gauge_sum(out, workers, "inflight", "prefork_requests_in_flight", "Requests being served.")
    _gauge_sum(out, workers, "connections", "prefork_open_connections", "Open client connections.")
    _gauge_sum(out, workers, "websockets", "prefork_open_websockets", "Open WebSocket sessions.")
    out.family(
        "prefork_worker_resident_memory_bytes",
        "gauge",
        "Each worker's resident set size, from its last heartbeat.",
        [(_worker_labels(h), h.counters["rss"]) for h in workers],
    )
    out.family(
        "prefork_worker_cpu_seconds_total",
        "counter",
        "CPU time (user + system) each worker has used.",
        [(_worker_labels(h), _cpu_seconds(h.pid)) for h in workers],
    )
    out.family(
        "prefork_worker_restarts_total",
        "counter",
        "Workers replaced or respawned, by reason.",
        [({"reason": reason}, count) for reason, count in sorted(arbiter.slots.totals().items())],
    )
    out.family(
        "prefork_reloads_total",
        "counter",
        "Rolling reloads (HUP, prefork reload, --reload), by outcome.",
        [({"result": result}, count) for result, count in sorted(arbiter.reloads.counts.items())],
    )
    return out.text()


def _worker_labels(handle: WorkerHandle) -> Mapping[str, object]:
    return {"slot": handle.slot, "pid": handle.pid}


def _cpu_seconds(pid: int) -> float:
    return round(procfs.cpu_seconds(pid) or 0.0, 3)


def _gauge_sum(
    out: Exposition, workers: list[WorkerHandle], key: CounterName, name: str, help_text: str
) -> None:
    total = sum(h.counters[key] for h in workers)
    out.family(name, "gauge", help_text, [({}, total)])
