"""The WebSocket benchmark's report: ratios pair each peer with prefork under the same client."""

from __future__ import annotations

from benchmarks.websocket import Sample, report


def sample(server: str, client: str, rate: float) -> Sample:
    return Sample(server, 1, client, rate, 1.0, 2.0, 10.0, rate, 5.0, 4096.0, 6.0, 2.0)


def test_ratios_compare_runs_of_the_same_client() -> None:
    text = report(
        [
            sample("prefork", "c", 300.0),
            sample("prefork", "python", 100.0),
            sample("uvicorn", "c", 100.0),
            sample("uvicorn", "python", 80.0),
        ],
        ["prefork", "uvicorn"],
    )
    assert "| uvicorn | c | 3.00x | 1.00x | 3.00x | 1.00x | 1.00x |" in text
    assert "| uvicorn | python | 1.25x | 1.00x | 1.25x | 1.00x | 1.00x |" in text
    assert "| 1 | prefork | python | 100 |" in text
