"""--log-format json: the access entry formatter, without processes."""

from __future__ import annotations

import json

from prefork.observe.accesslog import AccessEntry
from prefork.observe.jsonlog import JsonAccessFormatter


def test_access_formatter_escapes_what_json_needs() -> None:
    entry = AccessEntry(
        remote_addr="10.0.0.1",
        method="POST",
        target="/a\x00b?x=\u00ff".encode().decode("latin-1"),
        http_version="1.1",
        status=201,
        body_bytes=5,
        request_headers=[(b"user-agent", b'"\\\n\x1b')],
        response_headers=[],
        start_wall=1_700_000_000.25,
        duration=0.0012345,
        pid=42,
    )
    line = JsonAccessFormatter().format(entry)
    assert "\n" not in line and line.isascii()
    parsed = json.loads(line)
    assert parsed["path"] == "/a\x00b"
    assert parsed["query"] == "x=\u00ff"
    assert parsed["user_agent"] == '"\\\n\x1b'
    assert parsed["duration"] == 0.001234 or parsed["duration"] == 0.001235
    assert parsed["time"].startswith("20") and ".250" in parsed["time"]
    assert parsed["referer"] is None and parsed["request_id"] is None
