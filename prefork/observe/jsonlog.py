"""`--log-format json`: one JSON object per line, for the error log and the access log.

Invariant: every line parses as JSON, whatever the request held.  Values go
through `json.dumps` with `ensure_ascii`, which escapes quotes, backslashes,
control characters and every non-ASCII character; bytes from the wire are
decoded as UTF-8 with `backslashreplace`, so an invalid byte shows as the
text `\\xff` instead of breaking the line or being lost.

Field names follow the common shippers' conventions (Elastic's ECS-lite
subset that Loki, Datadog and CloudWatch all index without a mapping):
`time` is ISO 8601 with milliseconds and the UTC offset; `level` is lower
case; durations are seconds.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any, Final

from prefork.wallclock import utc_offset

if TYPE_CHECKING:  # a type only: accesslog imports this module when JSON is on
    from prefork.observe.accesslog import AccessEntry

# The request headers an access entry reports.
_WANTED: Final = (b"user-agent", b"referer", b"x-request-id")
_dumps: Final = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


class _IsoClock:
    """`2026-12-02T16:55:01.123+00:00` for a wall-clock time; the seconds part is cached."""

    __slots__ = ("_prefix", "_second", "_suffix")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""
        self._suffix = ""

    def __call__(self, wall: float) -> str:
        second = int(wall)
        if second != self._second:
            tm = time.localtime(second)
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", tm)
            self._suffix = utc_offset(tm, ":")
            self._second = second
        return f"{self._prefix}.{int((wall - second) * 1000):03d}{self._suffix}"


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "backslashreplace")


class JsonAccessFormatter:
    """Renders an access entry as one JSON object (the access log's `format()` seam)."""

    __slots__ = ("_clock",)

    unknown_atoms: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._clock = _IsoClock()

    def format(self, entry: AccessEntry) -> str:
        wanted: dict[bytes, bytes | None] = dict.fromkeys(_WANTED)
        for name, value in entry.request_headers:
            if name in wanted and wanted[name] is None:
                wanted[name] = value
        path, _, query = entry.target.encode("latin-1").partition(b"?")
        return _dumps(
            {
                "time": self._clock(entry.start_wall),
                "level": "info",
                "type": "access",
                "pid": entry.pid,
                "client": entry.remote_addr,
                "method": entry.method,
                "path": _text(path),
                "query": _text(query),
                "http_version": entry.http_version,
                "status": entry.status,
                "bytes": entry.body_bytes,
                "duration": round(entry.duration, 6),
                "user_agent": _text(wanted[b"user-agent"]),
                "referer": _text(wanted[b"referer"]),
                "request_id": _text(wanted[b"x-request-id"]),
            }
        )


class JsonFormatter(logging.Formatter):
    """The error log (and, with JSON on, the application's own records) as JSON lines.

    `worker` is the worker's slot number, or None in the master.
    """

    def __init__(self, worker: int | None) -> None:
        super().__init__()
        self._worker = "master" if worker is None else worker
        self._clock = _IsoClock()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._clock(record.created),
            "level": record.levelname.lower(),
            "type": "server" if record.name == "prefork" else "app",
            "pid": record.process,
            "worker": self._worker,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return _dumps(entry)
