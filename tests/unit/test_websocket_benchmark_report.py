"""The WebSocket benchmark's report: ratios pair each peer with prefork under the same client."""

from __future__ import annotations

from benchmarks.websocket import Sample, report


def sample(server: str, client: str, rate: float) -> Sample:
    """Echo at 10 µs of server CPU per round trip, broadcast at 5 µs per delivery."""
    return Sample(server, 1, client, rate, 1.0, 2.0, 10.0, rate, 5.0, 4096.0, 6.0, 2.0)


def test_ratios_compare_runs_of_the_same_client() -> None:
    text = report(
        [
            sample("prefork", "c", 30000.0),
            sample("prefork", "python", 10000.0),
            sample("uvicorn", "c", 10000.0),
            sample("uvicorn", "python", 8000.0),
        ],
        ["prefork", "uvicorn"],
    )
    assert "| uvicorn | c | 3.00x | 1.00x | 3.00x | 1.00x | 1.00x |" in text
    assert "| uvicorn | python | 1.25x | 1.00x | 1.25x | 1.00x | 1.00x |" in text
    assert "| 1 | prefork | python | 10,000 |" in text


def test_server_busy_is_the_workers_cpu_time_over_the_window() -> None:
    text = report([sample("prefork", "c", 30000.0)], ["prefork"])
    # 30,000 round trips/s x 10 µs = 30% of a CPU; 30,000 deliveries/s x 5 µs = 15%.
    assert "| 30% / 15% |" in text
