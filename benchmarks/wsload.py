"""The C WebSocket load client, benchmarks/wsload.c: building it, running it, reading its report.

The binary is built with gcc on first use (and again whenever the source is
newer) into benchmarks/build/, which git ignores; gcc and libc6-dev are
installed with apt-get when missing and we are root, as wrk is.  Any error
the client reports (a connection that failed, a wrong echo) fails the run:
the benchmark never turns an erroneous run into a number.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from benchmarks.harness import BENCH_DIR, HOST, BenchError, ensure_command

SOURCE: Final = BENCH_DIR / "wsload.c"
BINARY: Final = BENCH_DIR / "build" / "wsload"
CFLAGS: Final = ("-O2", "-Wall", "-Wextra")


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What one wsload run printed (see wsload.c's header comment)."""

    scenario: str
    connections: int
    seconds: float
    messages: int
    rate: float
    p50_ms: float
    p99_ms: float
    client_cpu_s: float
    errors: int


_FIELDS: Final = {
    "scenario": str,
    "connections": int,
    "seconds": float,
    "messages": int,
    "rate": float,
    "p50_ms": float,
    "p99_ms": float,
    "client_cpu_s": float,
    "errors": int,
}


def parse_report(text: str) -> LoadReport:
    """Parse wsload's key=value lines; ValueError names what is missing or malformed."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or key not in _FIELDS:
            raise ValueError(f"not a wsload report line: {line!r}")
        if key in values:
            raise ValueError(f"wsload reported {key} twice")
        values[key] = value
    missing = [key for key in _FIELDS if key not in values]
    if missing:
        raise ValueError(f"wsload report lacks {', '.join(missing)}")
    fields = {}
    for key, kind in _FIELDS.items():
        try:
            fields[key] = kind(values[key])
        except ValueError:
            raise ValueError(f"wsload reported {key}={values[key]!r}") from None
    return LoadReport(**fields)


def ensure_wsload(binary: Path = BINARY) -> Path:
    """The built client, compiling it if it is missing or older than its source."""
    if binary.exists() and binary.stat().st_mtime >= SOURCE.stat().st_mtime:
        return binary
    gcc = ensure_command("gcc", ["gcc", "libc6-dev"])
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(binary.name + ".partial")
    done = subprocess.run(
        [gcc, *CFLAGS, "-o", str(partial), str(SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"could not build {SOURCE.name}:\n{done.stderr.strip()}")
    os.replace(partial, binary)  # never leave a half-written binary under the final name
    return binary


def run_wsload(
    binary: Path, scenario: str, port: int, connections: int, seconds: float, *extra: str
) -> LoadReport:
    """One wsload run against HOST:port; BenchError unless every message was right."""
    argv = [str(binary), scenario, "--host", HOST, "--port", str(port)]
    argv += ["--connections", str(connections), "--seconds", str(seconds), *extra]
    # The handshakes are bounded at 60 s inside; this only catches a wedged client.
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120, check=False)
    try:
        report = parse_report(done.stdout)
    except ValueError as exc:
        message = f"wsload {scenario} failed ({done.returncode}): {exc}\n{done.stderr.strip()}"
        raise BenchError(message) from None
    if done.returncode != 0 or report.errors:
        raise BenchError(
            f"wsload {scenario}: {report.errors} errors (exit {done.returncode}):\n"
            + done.stderr.strip()
        )
    if report.messages == 0:
        raise BenchError(f"wsload {scenario}: not one message in {seconds} s")
    return report
