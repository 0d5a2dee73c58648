"""`parse_wrk`, the benchmark harness's reader of wrk's report: pure, so it runs without wrk."""

from __future__ import annotations

import pytest

from benchmarks.harness import parse_wrk
from benchmarks.instructions import parse_annotate

WRK_OUTPUT = """\
Running 3s test @ http://127.0.0.1:59405/plaintext
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.99ms    2.08ms  15.32ms   68.81%
    Req/Sec     7.96k     2.03k   11.17k    53.33%
  Latency Distribution
     50%  623.00us
     75%    4.18ms
     90%    5.84ms
     99%    1.24s
  24094 requests in 3.05s, 1.79MB read
  Socket errors: connect 1, read 24083, write 2, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:   7903.80
Transfer/sec:    602.05KB
""".replace("1.24s\n", "1.24s \n")  # wrk pads a one-letter unit to two characters


def test_parse_wrk_reads_every_figure() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result.requests == 24094
    assert result.seconds == pytest.approx(3.05)
    assert result.rps == pytest.approx(7903.80)
    assert result.p50_ms == pytest.approx(0.623)
    assert result.p99_ms == pytest.approx(1240.0)
    assert (result.connect_errors, result.read_errors, result.write_errors) == (1, 24083, 2)
    assert result.timeouts == 3
    assert result.non_2xx == 7
    assert result.errors == 1 + 24083 + 2 + 3 + 7


def test_parse_wrk_rejects_output_without_summary() -> None:
    with pytest.raises(ValueError, match="no summary"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


ANNOTATE_OUTPUT = """\
--------------------------------------------------------------------------------
Ir                  file:function
--------------------------------------------------------------------------------
94,979,698 (100.0%)  PROGRAM TOTALS
5,367,130 ( 5.65%)  Objects/dictobject.c:unicodekeys_lookup_unicode [/v/libpython3.13.so.1.0]
4,646,168 ( 4.89%)  Python/generated_cases.c.h:_PyEval_EvalFrameDefault'2 [/v/libpython3.13.so.1.0]
1,000,000 ( 1.05%)  Include/object.h:_PyEval_EvalFrameDefault [/v/libpython3.13.so.1.0]
4,466,077 ( 4.70%)  ./elf/tls_get_addr.S:__tls_get_addr [/usr/lib/ld-linux-x86-64.so.2]
"""


def test_parse_annotate_adds_up_a_functions_inlined_parts() -> None:
    costs = parse_annotate(ANNOTATE_OUTPUT)
    assert costs == {
        "unicodekeys_lookup_unicode": 5_367_130,
        "_PyEval_EvalFrameDefault": 5_646_168,
        "__tls_get_addr": 4_466_077,
    }
