"""Run the Autobahn testsuite's fuzzing client against prefork; print the summary.

    python scripts/autobahn.py --wstest PATH/TO/wstest [--cases '*'] [--keep DIR]
                               [--deflate both|on|off]

Autobahn's `wstest` (PyPI `autobahntestsuite`) runs on Python 2.7 only.  To
get it:

    virtualenv -p python2.7 /tmp/ab27     # a virtualenv < 20.22 still creates 2.7
    /tmp/ab27/bin/pip install autobahntestsuite

The script serves benchmarks.apps:asgi_websocket (an echo app) twice on a
free loopback port: with permessage-deflate (every case, 12.* and 13.*
included) and without it (--no-ws-per-message-deflate; the compression cases
are left out, since they would only report UNIMPLEMENTED).  It prints a
table of outcomes per case group for each run and exits 1 if any case ended
other than OK, NON-STRICT or INFORMATIONAL.  CI does not run it: it needs
Python 2.7, and every case in both configurations takes the better part of
an hour on a busy 2-CPU machine (cases 1-10 take about five minutes each
way; `--cases 12.1.*` runs one compression group in about a minute).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
APP: Final = "benchmarks.apps:asgi_websocket"
PASSING: Final = frozenset({"OK", "NON-STRICT", "INFORMATIONAL"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve(port: int, deflate: bool, log: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "prefork", APP, "-b", f"127.0.0.1:{port}", "-w", "1"]
    args += ["--ws-max-size", "32M", "--control-socket", str(log.with_suffix(".sock"))]
    if not deflate:
        args.append("--no-ws-per-message-deflate")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "Ready:" in log.read_text(errors="replace"):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    stop(proc)
    raise SystemExit(f"prefork did not start; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def run_suite(
    wstest: str, deflate: bool, cases: list[str], workdir: Path
) -> dict[str, dict[str, Any]]:
    """Autobahn's per-case results for one server configuration."""
    agent = "prefork-deflate" if deflate else "prefork"
    port = free_port()
    proc = serve(port, deflate, workdir / f"{agent}.log")
    try:
        spec = {
            "outdir": str(workdir / "reports"),
            "servers": [{"agent": agent, "url": f"ws://127.0.0.1:{port}"}],
            "cases": cases,
            "exclude-cases": [] if deflate else ["12.*", "13.*"],
            "exclude-agent-cases": {},
        }
        spec_path = workdir / f"{agent}.json"
        spec_path.write_text(json.dumps(spec))
        subprocess.run(
            [wstest, "-m", "fuzzingclient", "-s", str(spec_path)],
            cwd=workdir,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    finally:
        stop(proc)
    index = json.loads((workdir / "reports" / "index.json").read_text())
    results: dict[str, dict[str, Any]] = index[agent]
    return results


def summary(results: dict[str, dict[str, Any]]) -> tuple[str, list[str]]:
    """A markdown table (outcomes per case group) and the cases that failed."""
    groups: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    failed = []
    for case, outcome in results.items():
        behavior = outcome["behavior"]
        groups[case.split(".")[0]][behavior] += 1
        if behavior not in PASSING or outcome.get("behaviorClose") not in PASSING:
            failed.append(f"{case}: {behavior} / close {outcome.get('behaviorClose')}")
    outcomes = sorted({b for counter in groups.values() for b in counter})
    lines = ["| cases | " + " | ".join(outcomes) + " |", "|---" * (len(outcomes) + 1) + "|"]
    for group in sorted(groups, key=int):
        counts = [str(groups[group].get(o, 0)) for o in outcomes]
        lines.append(f"| {group}.* | " + " | ".join(counts) + " |")
    total = [str(sum(groups[g].get(o, 0) for g in groups)) for o in outcomes]
    lines.append("| all | " + " | ".join(total) + " |")
    return "\n".join(lines), failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wstest", required=True, help="the wstest command of autobahntestsuite")
    parser.add_argument("--cases", default="*", help="comma-separated case patterns")
    parser.add_argument("--keep", help="write the HTML reports and logs to this directory")
    parser.add_argument(
        "--deflate", choices=("both", "on", "off"), default="both", help="which runs to make"
    )
    args = parser.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep or tmp)
        runs = {"both": (True, False), "on": (True,), "off": (False,)}[args.deflate]
        for deflate in runs:
            workdir = base / ("with-deflate" if deflate else "without-deflate")
            workdir.mkdir(parents=True, exist_ok=True)
            table, failed = summary(run_suite(args.wstest, deflate, cases, workdir))
            title = "with" if deflate else "without"
            print(f"\nprefork {title} permessage-deflate:\n\n{table}")
            failures += failed
    for line in failures:
        print("FAILED", line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
