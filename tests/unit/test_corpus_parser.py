"""The hostile-input corpus through the HTTP engine alone: no sockets, no processes.

Each case in tests/corpus/ goes through prefork's connection code over the
fake transport of tests/protocol_harness.py, cut the same ways as the live
runs (whole, byte by byte, 3 seeded pieces), to the same echo apps, and is
judged by the same rules (tests/corpus/harness.py `judge`).  A failure here
points at the protocol layer; one only in tests/integration/test_corpus.py
points at the socket, worker or process side.

The probe works as on a live connection: it is sent only once the expected
responses arrived and the connection is still open.  The engine is run again
with the probe appended (the apps are deterministic), and what it wrote past
the first run is the answer to the probe.
"""

from __future__ import annotations

import re
from typing import Any, Final

import pytest

from tests.apps import hardening_echo
from tests.corpus.harness import PROBE, Case, case_params, judge, load_cases, pieces, read_case
from tests.protocol_harness import run_exchange
from tests.responses import ResponseReader

ECHO: Final = {"wsgi": hardening_echo.wsgi_app, "asgi": hardening_echo.asgi_app}
# The settings of tests/integration/test_corpus.py's "limited" server.
SETTINGS: Final[dict[str, dict[str, Any]]] = {
    "default": {},
    "limited": {"limit_request_body": 1024},
}
CASES: Final = load_cases()
# Each byte is one data_received call, and up to ROUNDS loop turns while a
# request is incomplete: byte by byte, the few cases past 2 KiB would take half
# of this file's time.  The whole and split modes cover them here, and the live
# runs send them byte by byte up to 16 KiB.
BYTEWISE_MAX: Final = 2048
ROUNDS: Final = 200  # loop turns a piece may take to settle
_DATE: Final = re.compile(rb"\r\ndate: [^\r]*")


@pytest.mark.parametrize(("case", "interface", "mode"), case_params(CASES, BYTEWISE_MAX))
def test_corpus_through_the_engine(case: Case, interface: str, mode: str) -> None:
    app = ECHO[interface]
    settings = SETTINGS[case.server]
    chunks = pieces(case.raw, mode, case.name)
    first = run_exchange(app, chunks, interface=interface, max_rounds=ROUNDS, **settings)
    reader = ResponseReader.of_bytes(first.raw, closed=first.closed)

    def send_probe() -> bool:
        again = run_exchange(
            app, [*chunks, PROBE], interface=interface, max_rounds=ROUNDS, **settings
        )
        assert _undated(again.raw).startswith(_undated(first.raw)), "a different second answer"
        reader.extend(again.raw[len(first.raw) :], closed=again.closed)
        return not first.closed

    result = read_case(reader, case, send_probe)
    problems = judge(case, result)
    assert not problems, f"{case.name} [{interface}/{mode}] ({case.doc}): " + "; ".join(problems)


def _undated(raw: bytes) -> bytes:
    """Without Date headers, which may differ between two runs a second apart."""
    return _DATE.sub(b"", raw)
