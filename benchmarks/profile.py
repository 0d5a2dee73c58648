"""Profile one prefork worker's hot path under load with py-spy.

    python benchmarks/profile.py [--interface wsgi|asgi] [--seconds 10]

Starts `prefork benchmarks.apps:<interface>_plaintext -w 1` on a free
loopback port, drives it with `wrk -t1 -c64` (keep-alive), samples the worker
with `py-spy record --nonblocking`, and prints where the time goes: the
share of samples per line (self) and per function (inclusive).  Needs py-spy
(`pip install py-spy`) and wrk.  Only 127.0.0.1 is used; everything started
is stopped by process group.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_worker(log: Path, deadline: float) -> int:
    while time.monotonic() < deadline:
        text = log.read_text()
        if "Ready:" in text:
            match = re.search(r"Booting worker 0 \(pid: (\d+)", text)
            if match:
                return int(match[1])
        time.sleep(0.1)  # polling a log file: there is no other readiness signal to await
    raise SystemExit(f"prefork did not become ready; log:\n{log.read_text()}")


def summarize(raw: Path, top: int) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        frames = stack.split(";")
        own[frames[-1]] += samples
        for name in {frame.split(" (")[0] for frame in frames}:
            inclusive[name] += samples
    lines = [f"{total} samples", "", "| self | line |", "|--:|---|"]
    lines += [f"| {n / total:.1%} | `{k}` |" for k, n in own.most_common(top)]
    lines += ["", "| inclusive | function |", "|--:|---|"]
    engine = [(k, n) for k, n in inclusive.most_common() if "." in k or k.startswith("_")]
    lines += [f"| {n / total:.1%} | `{k}` |" for k, n in engine[:top]]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interface", choices=("wsgi", "asgi"), default="wsgi")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    for tool in ("py-spy", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed: pip install py-spy / apt-get install wrk")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "prefork.log"
        raw = Path(tmp) / "profile.txt"
        with log.open("w") as sink:
            server = subprocess.Popen(
                [sys.executable, "-m", "prefork", f"benchmarks.apps:{args.interface}_plaintext",
                 "-w", "1", "-b", f"127.0.0.1:{port}", "--control-socket", f"{tmp}/ctl.sock"],
                cwd=ROOT, stdout=sink, stderr=sink, start_new_session=True,
            )  # fmt: skip
        try:
            worker = wait_worker(log, time.monotonic() + 30)
            load = subprocess.Popen(
                ["wrk", "-t1", "-c64", f"-d{args.seconds + 2}", f"http://127.0.0.1:{port}/"],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            time.sleep(1)  # let wrk open its connections before sampling
            subprocess.run(
                ["py-spy", "record", "-p", str(worker), "-d", str(args.seconds), "-r", "250",
                 "-f", "raw", "-o", str(raw), "--nonblocking"],
                check=True, capture_output=True,
            )  # fmt: skip
            out, _ = load.communicate(timeout=args.seconds + 30)
            rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
            print(f"prefork {args.interface}, 1 worker: {rate[1] if rate else '?'} req/s under wrk")
            print(summarize(raw, args.top))
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
