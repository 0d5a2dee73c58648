"""WebSocket benchmark: prefork against uvicorn and granian, in interleaved rounds.

    python benchmarks/websocket.py [--rounds 3] [--seconds 5] [--connections 100]
                                   [--idle 1000] [--servers prefork,uvicorn,granian]
                                   [--client c|python|c,python] [--no-pin]

Each round starts every server in turn (same app, benchmarks.apps:asgi_websocket,
2 workers, the peers' default WebSocket implementation) and measures:

- echo: `--connections` connections each send a 64-byte text message and
  wait for it to come back, for `--seconds`: round trips per second and the
  round-trip latency (p50, p99);
- broadcast: `--connections` members of /broadcast, 4 of them publishers
  that send their next message when their previous one came back; every
  member receives every message of its worker's room: deliveries per second;
- memory per idle WebSocket: the workers' RSS with `--idle` open, idle
  connections minus their RSS before, divided by `--idle`.

Rounds interleave the servers so that load from other processes on the
machine spreads over all of them; the report gives per-round numbers and
the median of each ratio to prefork.  No client offers an extension, so
nobody compresses, and every server gets the same client and messages.

The echo and broadcast load comes from wsload (benchmarks/wsload.c, built
with gcc on first use, see benchmarks/wsload.py): one C process on epoll
that checks every echo byte for byte and every delivery against the
publishers' messages, and fails the run on any error.  `--client python`
uses the asyncio client in this process instead (precomputed frames, the
same checks), which costs more CPU per message; `--client c,python`
measures each server with both, in the same rounds.  The idle connections
are always this process's asyncio client's: they only hold.

The client and the server must not share CPUs: a client costs several µs of
CPU per message (wsload's is almost all its send and receive system calls),
so on a machine the two saturate together the rate is (client + server
CPU) per message, and any server's advantage shows diluted by the client's
fixed share.  With two CPUs or more the server (its workers inherit it)
runs on all CPUs but the last, and the client on the last one (`--no-pin`
leaves scheduling to the kernel).  The client's CPU per message is in the
results, to show it stays below the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import json
import os
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

if __package__ in (None, ""):  # run as a script: make `benchmarks.*` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
import uvloop

from benchmarks.harness import (
    HOST,
    ROOT,
    BenchError,
    ServerSpec,
    ensure_venv,
    memory,
    server_specs,
    serving,
    settle,
    worker_processes,
)
from benchmarks.wsload import LoadReport, ensure_wsload, run_wsload

APP: Final = "benchmarks.apps:asgi_websocket"
RESULTS: Final = ROOT / "benchmarks" / "websocket-results.json"
MESSAGE: Final = b"x" * 64
PUBLISHERS: Final = 4
CLIENTS: Final = {"c": "wsload (C)", "python": "the asyncio client (Python)"}
_KEY: Final = base64.b64encode(b"prefork-bench-16").decode()


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked, final frame (payloads under 126 bytes); the all-zero mask keeps it as is."""
    assert len(payload) < 126
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + b"\0\0\0\0" + payload


class BenchClient(asyncio.Protocol):
    """One connection: the handshake, then whole server frames reported to `on_frame`."""

    def __init__(self, path: str, on_frame: Callable[[BenchClient, bytes], None]) -> None:
        self.path = path
        self.on_frame = on_frame
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(  # type: ignore[attr-defined]
            f"GET {self.path} HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {_KEY}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        if not self.upgraded.done():
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.upgraded.set_exception(BenchError(f"handshake refused: {buffer[:40]!r}"))
                return
            self.upgraded.set_result(None)
            buffer = buffer[end + 4 :]
        while len(buffer) >= 2:
            size = buffer[1] & 0x7F
            start = 2
            if size == 126:
                if len(buffer) < 4:
                    break
                (size,) = struct.unpack_from("!H", buffer, 2)
                start = 4
            if len(buffer) < start + size:
                break
            opcode = buffer[0] & 0x0F
            payload = buffer[start : start + size]
            buffer = buffer[start + size :]
            if opcode == 0x9:  # a server ping: answer it as any client would
                self.write(client_frame(payload, 0xA))
            elif opcode in (0x1, 0x2):
                self.on_frame(self, payload)
        self.buffer = buffer

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def open_clients(
    port: int, path: str, count: int, on_frame: Callable[[BenchClient, bytes], None]
) -> list[BenchClient]:
    loop = asyncio.get_running_loop()
    clients: list[BenchClient] = []
    for start in range(0, count, 100):  # in batches: below any accept backlog
        batch = [
            loop.create_connection(lambda: BenchClient(path, on_frame), HOST, port)
            for _ in range(start, min(count, start + 100))
        ]
        for _, client in await asyncio.gather(*batch):
            clients.append(client)
    await asyncio.wait_for(asyncio.gather(*(c.upgraded for c in clients)), 60)
    return clients


def server_cpu(pid: int) -> float:
    """CPU seconds used so far by the server's workers (user + system)."""
    total = 0.0
    for proc in worker_processes(pid):
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


async def echo(port: int, connections: int, seconds: float) -> LoadReport:
    """Round trips, their rate and latency; client CPU left at 0 for the caller."""
    frame = client_frame(MESSAGE)
    samples: list[float] = []
    errors = 0
    running = True

    def on_frame(client: BenchClient, payload: bytes) -> None:
        nonlocal errors
        if payload != MESSAGE:
            errors += 1
            return
        now = time.perf_counter()
        samples.append(now - client.sent_at)
        if running:
            client.sent_at = now
            client.write(frame)

    clients = await open_clients(port, "/echo", connections, on_frame)
    began = time.perf_counter()
    for client in clients:
        client.sent_at = began
        client.write(frame)
    await asyncio.sleep(seconds)
    running = False
    elapsed = time.perf_counter() - began
    count = len(samples)
    for client in clients:
        client.close()
    if not count:
        raise BenchError("echo: not one round trip")
    samples.sort()
    p50, p99 = samples[count // 2] * 1000, samples[int(count * 0.99)] * 1000
    return LoadReport("echo", connections, elapsed, count, count / elapsed, p50, p99, 0.0, errors)


async def broadcast(port: int, connections: int, seconds: float) -> LoadReport:
    """Messages delivered over all members and their rate; client CPU left at 0."""
    delivered = errors = 0
    running = True
    messages = {b"p%d:" % i + MESSAGE for i in range(PUBLISHERS)}
    frames = {i: client_frame(b"p%d:" % i + MESSAGE) for i in range(PUBLISHERS)}
    publisher_of: dict[int, int] = {}

    def on_frame(client: BenchClient, payload: bytes) -> None:
        nonlocal delivered, errors
        if payload not in messages:
            errors += 1
            return
        delivered += 1
        index = publisher_of.get(id(client))
        if running and index is not None and payload.startswith(b"p%d:" % index):
            client.write(frames[index])

    clients = await open_clients(port, "/broadcast", connections, on_frame)
    await asyncio.sleep(0.5)  # every member has joined its room
    began = time.perf_counter()
    for index, client in enumerate(clients[:PUBLISHERS]):
        publisher_of[id(client)] = index
        client.write(frames[index])
    await asyncio.sleep(seconds)
    running = False
    elapsed = time.perf_counter() - began
    for client in clients:
        client.close()
    return LoadReport(
        "broadcast", connections, elapsed, delivered, delivered / elapsed, 0.0, 0.0, 0.0, errors
    )


async def idle_bytes(port: int, pid: int, count: int) -> float:
    """Worker RSS per idle WebSocket."""
    before = sum(memory(pid).worker_rss)
    answered = 0

    def on_frame(client: BenchClient, payload: bytes) -> None:
        nonlocal answered
        answered += 1

    clients = await open_clients(port, "/echo", count, on_frame)
    for client in clients:  # one message each: every session has run its app once
        client.write(client_frame(MESSAGE))
    deadline = time.monotonic() + 30
    while answered < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    after = sum(memory(pid).worker_rss)
    for client in clients:
        client.close()
    return (after - before) / count


@dataclass(frozen=True, slots=True)
class Sample:
    server: str
    round: int
    client: str  # "c" (wsload) or "python" (the asyncio client)
    echo_rps: float
    echo_p50_ms: float
    echo_p99_ms: float
    echo_cpu_us: float  # server CPU per round trip: steadier than rates on a busy machine
    broadcast_rate: float
    broadcast_cpu_us: float  # server CPU per delivered message
    idle_bytes: float
    echo_client_cpu_us: float  # the client's CPU per round trip
    broadcast_client_cpu_us: float


def client_cpu() -> float:
    """CPU seconds used so far by this process, the Python client."""
    times = os.times()
    return times.user + times.system


def cpu_split() -> tuple[set[int], set[int]] | None:
    """(the server's CPUs, the client's CPU), or None with fewer than two CPUs."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return set(cpus[:-1]), {cpus[-1]}


def load(args: argparse.Namespace, scenario: str, port: int) -> LoadReport:
    """One scenario's load from the chosen client; BenchError on any error or no message."""
    if args.client == "c":
        return run_wsload(args.wsload, scenario, port, args.connections, args.seconds)
    own = client_cpu()
    run = echo if scenario == "echo" else broadcast
    report = uvloop.run(run(port, args.connections, args.seconds))
    if report.errors or not report.messages:
        raise BenchError(f"{scenario}: {report.errors} wrong messages, {report.messages} right")
    return dataclasses.replace(report, client_cpu_s=client_cpu() - own)


def measure(spec: ServerSpec, python: Path, log_dir: Path, args: argparse.Namespace) -> Sample:
    everywhere = os.sched_getaffinity(0)
    split = cpu_split() if args.pin else None
    if split is not None:
        os.sched_setaffinity(0, split[0])  # inherited by the server we start now
    try:
        with serving(spec, python, APP, log_dir) as running:
            if split is not None:
                os.sched_setaffinity(0, split[1])
            settle(running)
            pid = running.proc.pid

            cpu = server_cpu(pid)
            echoed = load(args, "echo", running.port)
            echo_cpu = (server_cpu(pid) - cpu) / echoed.messages * 1e6
            cpu = server_cpu(pid)
            cast = load(args, "broadcast", running.port)
            cast_cpu = (server_cpu(pid) - cpu) / cast.messages * 1e6
            idle = uvloop.run(idle_bytes(running.port, pid, args.idle))
            return Sample(
                spec.name,
                args.round,
                args.client,
                echoed.rate,
                echoed.p50_ms,
                echoed.p99_ms,
                echo_cpu,
                cast.rate,
                cast_cpu,
                idle,
                echoed.client_cpu_s / echoed.messages * 1e6,
                cast.client_cpu_s / cast.messages * 1e6,
            )
    finally:
        os.sched_setaffinity(0, everywhere)


def busy(rate: float, cpu_us: float) -> str:
    """The workers' CPU time over the window, in % of one CPU: below the CPUs they were
    given, the rate was held back by something else (the client, or other processes)."""
    return f"{rate * cpu_us / 1e4:.0f}%"


def report(samples: list[Sample], names: list[str]) -> str:
    lines = [
        "| round | server | client | echo round trips/s | p50 ms | p99 ms | CPU per round trip, "
        "server / client | broadcast deliveries/s | CPU per delivery, server / client "
        "| server busy, echo / broadcast | RSS per idle WebSocket |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {s.round} | {s.server} | {s.client} | {s.echo_rps:,.0f} | {s.echo_p50_ms:.2f} | "
        f"{s.echo_p99_ms:.2f} | {s.echo_cpu_us:.1f} / {s.echo_client_cpu_us:.1f} µs | "
        f"{s.broadcast_rate:,.0f} | {s.broadcast_cpu_us:.1f} / {s.broadcast_client_cpu_us:.1f} µs "
        f"| {busy(s.echo_rps, s.echo_cpu_us)} / {busy(s.broadcast_rate, s.broadcast_cpu_us)} "
        f"| {s.idle_bytes / 1024:.1f} KiB |"
        for s in samples
    ]
    prefork = {(s.round, s.client): s for s in samples if s.server == "prefork"}
    lines += [
        "",
        "prefork / peer, median of the rounds' ratios under the same client (rates: higher is "
        "better; CPU and memory: lower is better):",
        "",
        "| peer | client | echo rate | echo CPU per trip | broadcast rate "
        "| broadcast CPU per delivery | idle memory |",
        "|---|---|---|---|---|---|---|",
    ]
    clients = sorted({s.client for s in samples})
    for name, client in ((n, c) for n in names if n != "prefork" for c in clients):
        peer = [
            s
            for s in samples
            if s.server == name and s.client == client and (s.round, client) in prefork
        ]
        if not peer:
            continue

        def ratio(field: str, peer: list[Sample] = peer) -> str:
            ratios = [getattr(prefork[s.round, s.client], field) / getattr(s, field) for s in peer]
            value = statistics.median(ratios)
            return f"{value:.2f}x"

        lines.append(
            f"| {name} | {client} | {ratio('echo_rps')} | {ratio('echo_cpu_us')} "
            f"| {ratio('broadcast_rate')} | {ratio('broadcast_cpu_us')} | {ratio('idle_bytes')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--servers", default="prefork,uvicorn,granian")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the client on the last CPU and the server on the others (default)",
    )
    parser.add_argument(
        "--client",
        default="c",
        help="the echo and broadcast load: c (wsload, the default), python (the asyncio "
        "client), or c,python (each server with both, in the same rounds)",
    )
    args = parser.parse_args(argv)
    clients = [c.strip() for c in args.client.split(",") if c.strip()]
    if not clients or not set(clients) <= set(CLIENTS):
        parser.error(f"--client takes {', '.join(CLIENTS)} or both, comma-separated")
    try:
        if "c" in clients:
            args.wsload = ensure_wsload()
        python = ensure_venv()
        wanted = [w.strip() for w in args.servers.split(",") if w.strip()]
        specs = [s for s in server_specs(python) if s.interface == "asgi" and s.name in wanted]
        names = [s.name for s in specs]
        samples: list[Sample] = []
        with tempfile.TemporaryDirectory() as tmp:
            for round_number in range(1, args.rounds + 1):
                args.round = round_number
                for spec, client in ((s, c) for s in specs for c in clients):
                    args.client = client
                    sample = measure(spec, python, Path(tmp), args)
                    print(sample, file=sys.stderr)
                    samples.append(sample)
    except BenchError as exc:
        print(f"websocket benchmark: {exc}", file=sys.stderr)
        return 1
    RESULTS.write_text(json.dumps([asdict(s) for s in samples], indent=2) + "\n")
    print(report(samples, names))
    used = " and ".join(CLIENTS[c] for c in clients)
    print(f"\n{os.cpu_count()} CPUs; load from {used}; results in {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
