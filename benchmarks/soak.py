"""Slow-client soak: does one prefork worker keep serving under slowloris, and what
does an idle keep-alive connection cost it?

    python benchmarks/soak.py                      # full: 1000 slow, 10,000 idle
    python benchmarks/soak.py --slow 200 --idle 1000 --duration 10 --json

Phase 1 starts `slowhttptest -H` (slowloris: connections that send a header
line every few seconds and never finish) against a 1-worker server running
examples.wsgi_hello, while a well-behaved client opens a fresh connection per
request, back to back.  It reports that client's success rate and p50/p99
latency: the header timeout (--header-timeout) is what must keep the worker
available.

Phase 2 opens N connections to the same worker; each sends one request, reads
the answer, and stays open (keep-alive raised to 120 s so none expires).  The
worker's RSS before and after, divided by N, is the memory per idle
connection.  A sample of the connections is then reused to prove they are live.

Only 127.0.0.1 is used.  Each phase is bounded (--duration, plus fixed
margins under 60 s); the server runs in its own process group, slowhttptest
in its own session, and both are killed by group on the way out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import psutil

ROOT: Final = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.server import Server, run_server  # noqa: E402

APP: Final = "examples.wsgi_hello:application"
REQUEST: Final = b"GET / HTTP/1.1\r\nHost: soak\r\n\r\n"
ONE_SHOT: Final = b"GET / HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n"
SLOWHTTPTEST: Final = "/usr/bin/slowhttptest"


@dataclass
class SlowPhase:
    slow_connections: int
    duration: float
    requests: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    success_rate: float = 0.0
    slowhttptest_summary: str = ""


@dataclass
class IdlePhase:
    connections: int
    opened: int = 0
    rss_before: int = 0
    rss_after: int = 0
    bytes_per_connection: float = 0.0
    open_seconds: float = 0.0
    failed: int = 0  # connections refused, reset or not answered with 200
    first_failure: str = ""
    sample_reused_ok: int = 0
    sample_size: int = 0


def raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(f"soak: need {needed} file descriptors, the hard limit is {hard}")
    return hard


def read_response(sock: socket.socket) -> int:
    """Read one response to a GET with a Content-Length body; return its status."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside the response body")
        body += chunk
    return status


def worker_pid(server: Server) -> int:
    pids = server.worker_pids()
    if len(pids) != 1:
        raise SystemExit(f"soak: expected one worker, found {sorted(pids)}")
    return pids.pop()


@contextlib.contextmanager
def slowloris(port: int, connections: int, duration: float) -> Iterator[subprocess.Popen[str]]:
    rate = min(200, connections)
    command = [
        SLOWHTTPTEST,
        "-H",
        "-c",
        str(connections),
        "-i",
        "10",
        "-r",
        str(rate),
        "-t",
        "GET",
        "-u",
        f"http://127.0.0.1:{port}/",
        "-x",
        "24",
        "-p",
        "3",
        "-l",
        str(int(duration)),
    ]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def normal_client(
    port: int, stop: threading.Event, latencies: list[float], errors: dict[str, int]
) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5.0) as sock:
                sock.sendall(ONE_SHOT)
                status = read_response(sock)
            if status != 200:
                errors[f"status {status}"] = errors.get(f"status {status}", 0) + 1
                continue
            latencies.append(time.perf_counter() - started)
        except OSError as exc:
            key = type(exc).__name__
            errors[key] = errors.get(key, 0) + 1


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_slow_phase(server: Server, connections: int, duration: float) -> SlowPhase:
    result = SlowPhase(connections, duration)
    if not shutil.which(SLOWHTTPTEST):
        raise SystemExit(f"soak: {SLOWHTTPTEST} not found (apt-get install slowhttptest)")
    latencies: list[float] = []
    errors: dict[str, int] = {}
    stop = threading.Event()
    # slowhttptest runs a little longer than the measurement so the client is
    # measured only while the slow connections are all in place.
    with slowloris(server.port, connections, duration + 5) as proc:
        ramp = connections / min(200, connections) + 1.0
        time.sleep(ramp)  # pacing: slowhttptest opens `rate` connections a second
        client = threading.Thread(
            target=normal_client, args=(server.port, stop, latencies, errors), daemon=True
        )
        client.start()
        stop.wait(duration)
        stop.set()
        client.join(10)
        output = ""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            output, _ = proc.communicate(timeout=10)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output or "")
    lines = [" ".join(line.split()) for line in plain.splitlines() if line.strip()]
    result.slowhttptest_summary = " | ".join(
        line
        for line in lines[-12:]
        if any(k in line for k in ("connected", "pending", "closed", "service available", "exit"))
    )
    result.ok = len(latencies)
    result.errors = errors
    result.requests = result.ok + sum(errors.values())
    result.success_rate = result.ok / result.requests if result.requests else 0.0
    result.p50_ms = statistics.median(latencies) * 1000 if latencies else 0.0
    result.p99_ms = percentile(latencies, 0.99) * 1000
    result.max_ms = max(latencies, default=0.0) * 1000
    return result


def run_idle_phase(server: Server, connections: int, time_limit: float = 50.0) -> IdlePhase:
    result = IdlePhase(connections)
    process = psutil.Process(worker_pid(server))
    result.rss_before = process.memory_info().rss
    sockets: list[socket.socket] = []
    started = time.monotonic()
    try:
        for _ in range(connections):
            if time.monotonic() - started > time_limit:
                break
            try:
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=5.0)
            except OSError as exc:
                result.failed += 1
                result.first_failure = result.first_failure or f"connect: {exc!r}"
                continue
            sockets.append(sock)
            try:
                sock.sendall(REQUEST)
                status = read_response(sock)
            except OSError as exc:
                status = 0
                result.first_failure = result.first_failure or (
                    f"connection {len(sockets)}: {exc!r}"
                )
            if status != 200:
                result.failed += 1
                sockets.pop().close()
        result.opened = len(sockets)
        result.open_seconds = time.monotonic() - started
        result.rss_after = process.memory_info().rss
        delta = result.rss_after - result.rss_before
        result.bytes_per_connection = delta / result.opened if result.opened else 0.0
        sample = sockets[:: max(1, len(sockets) // 100)]
        result.sample_size = len(sample)
        for sock in sample:
            with contextlib.suppress(OSError):
                sock.sendall(REQUEST)
                if read_response(sock) == 200:
                    result.sample_reused_ok += 1
    finally:
        for sock in sockets:
            sock.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--slow", type=int, default=1000, help="slowloris connections")
    parser.add_argument("--idle", type=int, default=10_000, help="idle keep-alive connections")
    parser.add_argument(
        "--duration",
        type=float,
        default=30.0,
        help="seconds the normal client is measured under slowloris (max 45)",
    )
    parser.add_argument("--header-timeout", type=float, default=10.0)
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 45:
        parser.error("--duration must be between 1 and 45 seconds (each phase stays under 60)")
    raise_fd_limit(args.slow + args.idle + 256)
    with run_server(
        APP,
        "-w",
        "1",
        "--keep-alive",
        "120",
        "--header-timeout",
        str(args.header_timeout),
        "--backlog",
        "4096",
    ) as server:
        pid = worker_pid(server)
        slow = run_slow_phase(server, args.slow, args.duration)
        alive_after_slow = psutil.pid_exists(pid) and worker_pid(server) == pid
        idle = run_idle_phase(server, args.idle)
        alive_after_idle = psutil.pid_exists(pid) and worker_pid(server) == pid
        server_tail = [line for line in server.lines if "WARNING" in line or "ERROR" in line][-5:]
    report: dict[str, Any] = {
        "slow": asdict(slow),
        "idle": asdict(idle),
        "worker_survived": alive_after_slow and alive_after_idle,
        "server_log_tail": server_tail,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"slowloris: {slow.slow_connections} slow connections, normal client for "
            f"{slow.duration:.0f}s"
        )
        print(
            f"  requests {slow.requests}, ok {slow.ok} ({slow.success_rate:.2%}), "
            f"p50 {slow.p50_ms:.2f} ms, p99 {slow.p99_ms:.2f} ms, max {slow.max_ms:.1f} ms"
        )
        if slow.errors:
            print(f"  errors: {slow.errors}")
        print(f"  slowhttptest: {slow.slowhttptest_summary}")
        print(
            f"idle keep-alive: {idle.opened}/{idle.connections} connections open in "
            f"{idle.open_seconds:.1f}s"
        )
        print(
            f"  worker RSS {idle.rss_before / 2**20:.1f} MiB -> {idle.rss_after / 2**20:.1f} MiB"
            f" = {idle.bytes_per_connection / 1024:.2f} KiB per connection"
        )
        if idle.failed:
            print(f"  FAILED {idle.failed} connections; first: {idle.first_failure}")
        print(f"  reused {idle.sample_reused_ok}/{idle.sample_size} sampled connections")
        print(f"worker survived: {report['worker_survived']}")
    return 0 if report["worker_survived"] else 1


if __name__ == "__main__":
    sys.exit(main())
