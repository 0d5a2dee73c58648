"""Reading the C WebSocket load client's key=value report (benchmarks/wsload.py)."""

from __future__ import annotations

import pytest

from benchmarks.wsload import LoadReport, parse_report

REPORT = """scenario=echo
connections=100
seconds=2.000148
messages=70282
rate=35138.398
p50_ms=2.199571
p99_ms=12.984918
client_cpu_s=0.441532
errors=0
"""


def test_a_full_report_is_read_with_its_types() -> None:
    assert parse_report(REPORT) == LoadReport(
        "echo", 100, 2.000148, 70282, 35138.398, 2.199571, 12.984918, 0.441532, 0
    )


def test_errors_are_read_not_dropped() -> None:
    assert parse_report(REPORT.replace("errors=0", "errors=3")).errors == 3


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (REPORT.replace("errors=0\n", ""), "lacks errors"),
        (REPORT.replace("messages=70282", "messages=many"), "messages='many'"),
        (REPORT + "wsload: connection 3: wrong echo\n", "not a wsload report line"),
        (REPORT + "colour=blue\n", "not a wsload report line"),
        (REPORT + "errors=0\n", "errors twice"),
        ("", "lacks scenario"),
    ],
)
def test_a_damaged_report_is_refused(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_report(text)
