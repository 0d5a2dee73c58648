"""Request metrics: counted in each worker, summed by the master, exposed as Prometheus text.

Theory of operation
-------------------
With `--metrics-bind` set, each worker keeps a `RequestMetrics`: plain
integers and lists bumped once per finished request (no system call, no
lock: the loop thread owns it; WSGI --threads finish requests on the loop
thread too).  The once-a-second heartbeat carries its cumulative
`snapshot()` to the master, and a draining worker sends a last one before it
exits.  The master's `MetricsTotals` keeps the latest snapshot of each live
worker and folds an exited worker's last snapshot into `retired`, so every
counter only ever grows across reloads, crashes and scale-downs (a crashed
worker loses at most its last second).

Cardinality is bounded by construction: methods outside the standard set are
counted as `other`, statuses by class (`2xx`); no label takes a path.
"""

from __future__ import annotations

from bisect import bisect_left as _bucket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

# Prometheus client's default buckets: Grafana dashboards expect them.
BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
METHODS: Final = frozenset(
    (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE")
)


class RequestMetrics:
    """One worker's counters (cumulative since it started)."""

    __slots__ = (
        "bytes_received",
        "bytes_sent",
        "duration_buckets",
        "duration_sum",
        "rejected",
        "requests",
    )

    def __init__(self) -> None:
        self.requests: dict[tuple[bytes, int], int] = {}  # (b"GET", 2) -> count
        self.duration_buckets = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.duration_sum = 0.0
        self.bytes_received = 0
        self.bytes_sent = 0  # response bodies
        self.rejected: dict[int, int] = {}  # status -> requests refused by the protocol layer

    def observe(self, method: bytes, status: int, seconds: float, body_bytes: int) -> None:
        # Per request: a tuple key, no string building (snapshot() names them).
        key = (method if method in METHODS else b"other", status // 100)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        self.duration_buckets[_bucket(BUCKETS, seconds)] += 1
        self.duration_sum += seconds
        self.bytes_sent += body_bytes

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": {
                f"{method.decode('ascii')} {f'{klass}xx' if klass else 'none'}": count
                for (method, klass), count in self.requests.items()
            },
            "buckets": self.duration_buckets,
            "sum": self.duration_sum,
            "in": self.bytes_received,
            "out": self.bytes_sent,
            "rejected": {str(status): count for status, count in self.rejected.items()},
        }


@dataclass
class MetricsTotals:
    """The master's sum over workers: live ones' latest snapshots plus the retired."""

    live: dict[int, dict[str, Any]] = field(default_factory=dict)  # pid -> snapshot
    retired: dict[str, Any] = field(default_factory=dict)

    def update(self, pid: int, snapshot: Mapping[str, Any]) -> None:
        if isinstance(snapshot, Mapping):
            self.live[pid] = dict(snapshot)

    def exited(self, pid: int) -> None:
        last = self.live.pop(pid, None)
        if last is not None:
            self.retired = _add(self.retired, last)

    def total(self) -> dict[str, Any]:
        result = self.retired
        for snapshot in self.live.values():
            result = _add(result, snapshot)
        return result


def _add(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    requests = _add_counts(a.get("requests", {}), b.get("requests", {}))
    buckets_a = list(a.get("buckets", [0] * (len(BUCKETS) + 1)))
    buckets_b = list(b.get("buckets", [0] * (len(BUCKETS) + 1)))
    return {
        "requests": requests,
        "buckets": [int(x) + int(y) for x, y in zip(buckets_a, buckets_b, strict=True)],
        "sum": float(a.get("sum", 0.0)) + float(b.get("sum", 0.0)),
        "in": int(a.get("in", 0)) + int(b.get("in", 0)),
        "out": int(a.get("out", 0)) + int(b.get("out", 0)),
        "rejected": _add_counts(a.get("rejected", {}), b.get("rejected", {})),
    }


def _add_counts(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, int]:
    result = {key: int(count) for key, count in a.items()}
    for key, count in b.items():
        result[key] = result.get(key, 0) + int(count)
    return result


# -- exposition ----------------------------------------------------------------


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Mapping[str, object]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
    return "{" + inner + "}"


class Exposition:
    """Builds Prometheus text format 0.0.4, one family at a time."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(
        self,
        name: str,
        kind: str,
        help_text: str,
        samples: Iterable[tuple[Mapping[str, object], float]],
        suffix: str = "",
    ) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.lines.append(f"{name}{suffix}{_labels(labels)} {_number(value)}")

    def histogram(self, name: str, help_text: str, buckets: list[int], total: float) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} histogram")
        running = 0
        for bound, count in zip((*BUCKETS, float("inf")), buckets, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            self.lines.append(f'{name}_bucket{{le="{le}"}} {running}')
        self.lines.append(f"{name}_sum {_number(total)}")
        self.lines.append(f"{name}_count {running}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def request_families(out: Exposition, totals: Mapping[str, Any]) -> None:
    """The request counters summed over every worker, past and present."""
    requests = totals.get("requests", {})
    samples = []
    for key, count in sorted(requests.items()):
        method, _, status = key.partition(" ")
        samples.append(({"method": method, "status": status}, count))
    out.family(
        "prefork_requests_total",
        "counter",
        "Requests answered, by method and status class.",
        samples,
    )
    out.histogram(
        "prefork_request_duration_seconds",
        "Time from the request head to the last byte of the response.",
        list(totals.get("buckets", [0] * (len(BUCKETS) + 1))),
        float(totals.get("sum", 0.0)),
    )
    out.family(
        "prefork_rejected_requests_total",
        "counter",
        "Malformed or refused requests answered by prefork itself (never reached the app).",
        [
            ({"status": status}, count)
            for status, count in sorted(totals.get("rejected", {}).items())
        ],
    )
    out.family(
        "prefork_received_bytes_total",
        "counter",
        "Bytes read from clients (heads and bodies).",
        [({}, totals.get("in", 0))],
    )
    out.family(
        "prefork_response_body_bytes_total",
        "counter",
        "Response body bytes sent to clients.",
        [({}, totals.get("out", 0))],
    )
