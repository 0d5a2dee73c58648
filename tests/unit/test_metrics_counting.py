"""Request metrics: a worker's counters and the master's totals, without processes."""

from __future__ import annotations

from prefork.observe.metrics import MetricsTotals, RequestMetrics


def test_worker_side_counting() -> None:
    metrics = RequestMetrics()
    metrics.observe(b"GET", 200, 0.001, 10)
    metrics.observe(b"BREW", 418, 0.3, 0)
    metrics.observe(b"POST", 0, 20.0, 0)  # the client left before a response
    snapshot = metrics.snapshot()
    assert snapshot["requests"] == {"GET 2xx": 1, "other 4xx": 1, "POST none": 1}
    assert snapshot["buckets"][0] == 1 and snapshot["buckets"][-1] == 1
    assert snapshot["out"] == 10


def test_totals_keep_what_exited_workers_counted() -> None:
    totals = MetricsTotals()
    one, two = RequestMetrics(), RequestMetrics()
    one.observe(b"GET", 200, 0.001, 5)
    two.observe(b"GET", 200, 0.001, 5)
    totals.update(1, one.snapshot())
    totals.update(2, two.snapshot())
    totals.exited(1)
    two.observe(b"GET", 500, 0.001, 5)
    totals.update(2, two.snapshot())
    assert totals.total()["requests"] == {"GET 2xx": 2, "GET 5xx": 1}
    assert totals.total()["out"] == 15
