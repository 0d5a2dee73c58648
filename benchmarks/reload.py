"""Reload under load: what clients see while the master replaces its workers.

    python benchmarks/reload.py [--duration 15] [--at 3,6,9] [--servers x,y] [--no-venv]

For prefork and each peer (2 workers, plaintext app, keep-alive): run
`wrk -t1 -c64 -d15s`, send SIGHUP to the master at 3 s, 6 s and 9 s, then
report wrk's errors (connect, read, write, timeout, non-2xx) and throughput,
how many distinct worker pids were seen (proof the reload happened), and
whether the server still answers afterwards.  The table is printed and written
into docs/benchmarks.md between reload-benchmark markers (run.py keeps it).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

if __package__ in (None, ""):  # run as a script: make `benchmarks.*` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import (
    ROOT,
    WORKERS,
    BenchError,
    Running,
    ServerSpec,
    ensure_venv,
    ensure_wrk,
    has_modules,
    http_get,
    parse_wrk,
    server_specs,
    serving,
    settle,
    worker_processes,
    wrk_command,
)

DOC: Final = ROOT / "docs" / "benchmarks.md"
RESULTS: Final = ROOT / "benchmarks" / "reload-results.json"
BEGIN: Final = "<!-- reload-benchmark:begin -->"
END: Final = "<!-- reload-benchmark:end -->"
APPS: Final = {"wsgi": "benchmarks.apps:wsgi_plaintext", "asgi": "benchmarks.apps:asgi_plaintext"}
CONNECTIONS: Final = 64
# What each server does on SIGHUP, read from its source (versions in the report).
HUP_BEHAVIOUR: Final = {
    "prefork": "rolling reload: a replacement must be ready before an old worker drains",
    "uvicorn": "one worker at a time: start a replacement, wait until it is ready, "
    "terminate the old one",
    "granian": "one worker at a time: start a replacement, stop the old one "
    "--respawn-interval (3.5 s) later, not readiness-gated; a HUP during a reload is "
    "coalesced",
    "gunicorn": "start a new set of workers, then SIGTERM the old ones (graceful)",
}


def _worker_pids(pid: int) -> set[int]:
    return {p.pid for p in worker_processes(pid)}


def reload_under_load(
    running: Running, duration: float, hup_at: Sequence[float], workdir: Path
) -> dict[str, Any]:
    master = running.proc.pid
    signum = running.spec.reload_signal
    if signum is None:
        raise BenchError(f"{running.spec.key} has no reload signal")
    seen = _worker_pids(master)
    before = set(seen)
    out_path = workdir / f"wrk-{running.spec.key}.txt"
    argv = wrk_command(running.url + "/", duration, CONNECTIONS)
    sent: list[float] = []
    with open(out_path, "w") as out:
        wrk = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        began = time.monotonic()
        try:
            pending = sorted(hup_at)
            while wrk.poll() is None:
                now = time.monotonic() - began
                if pending and now >= pending[0]:
                    os.kill(master, signum)
                    sent.append(round(now, 2))
                    pending.pop(0)
                seen |= _worker_pids(master)
                # Sampling cadence for the pid census and the signal schedule, not a
                # synchronisation: wrk's exit ends the loop.
                time.sleep(0.05)
                if now > duration + 30:
                    raise BenchError(f"wrk did not finish within {duration + 30:.0f}s")
        finally:
            if wrk.poll() is None:
                wrk.kill()
            wrk.wait(10)
    result = parse_wrk(out_path.read_text())
    # Afterwards the pool must be back to full strength and answering.
    deadline = time.monotonic() + 30
    serving_after = False
    while time.monotonic() < deadline:
        after = _worker_pids(master)
        seen |= after
        if len(after) >= WORKERS and http_get(running.port, "/") == 200:
            serving_after = True
            break
        time.sleep(0.1)
    after = _worker_pids(master)
    return {
        "key": running.spec.key,
        "name": running.spec.name,
        "interface": running.spec.interface,
        "hups_sent_at_s": sent,
        "rps": result.rps,
        "requests": result.requests,
        "p99_ms": result.p99_ms,
        "connect_errors": result.connect_errors,
        "read_errors": result.read_errors,
        "write_errors": result.write_errors,
        "timeouts": result.timeouts,
        "non_2xx": result.non_2xx,
        "errors": result.errors,
        "workers_seen": len(seen),
        "original_workers_left": len(before & after),
        "master_alive": running.proc.poll() is None,
        "serving_after": serving_after,
        "wrk_output": result.raw,
    }


def measure(
    spec: ServerSpec, python: Path, duration: float, hup_at: Sequence[float], workdir: Path
) -> dict[str, Any]:
    print(f"== {spec.key}", file=sys.stderr, flush=True)
    app = APPS[spec.interface]
    load_before = round(os.getloadavg()[0], 2)
    try:
        with serving(spec, python, app, workdir, probe_path="/") as running:
            settle(running, "/")
            record = reload_under_load(running, duration, hup_at, workdir)
    except (BenchError, ValueError, subprocess.TimeoutExpired) as exc:
        print(f"   failed: {exc}", file=sys.stderr)
        return {
            "key": spec.key,
            "name": spec.name,
            "interface": spec.interface,
            "error": str(exc).splitlines()[0],
        }
    record["load"] = f"{load_before} → {round(os.getloadavg()[0], 2)}"
    print(
        f"   {record['rps']:>8.0f} req/s  errors {record['errors']}  "
        f"workers seen {record['workers_seen']}  serving after: {record['serving_after']}",
        file=sys.stderr,
        flush=True,
    )
    return record


def _errors(row: dict[str, Any]) -> str:
    parts = [
        f"{label} {row[name]}"
        for name, label in (
            ("connect_errors", "connect"),
            ("read_errors", "read"),
            ("write_errors", "write"),
            ("timeouts", "timeout"),
            ("non_2xx", "non-2xx"),
        )
        if row[name]
    ]
    return f"{row['errors']} ({', '.join(parts)})" if parts else "0"


def render(results: dict[str, Any]) -> str:
    hups = ", ".join(f"{t:g} s" for t in results["hup_at"])
    lines = [
        BEGIN,
        "## Reload under load",
        "",
        f"Generated by `{results['command']}` on {results['date']}. Each server: "
        f"{WORKERS} workers, plaintext app, `wrk -t1 -c{CONNECTIONS} "
        f"-d{results['duration']:g}s` (keep-alive), SIGHUP to the master at {hups}. "
        "*Workers seen* counts distinct worker pids sampled every 50 ms (2 means no worker "
        "was replaced); *serving after* means the pool was back to full strength and "
        "answering within 30 s of the end. *Load* is the 1-minute load average before and "
        f"after (above {os.cpu_count()}, other work was competing for the CPUs).",
        "",
        "| server | interface | req/s | requests | errors | p99 | workers seen "
        "| serving after | load | on SIGHUP |",
        "|---|---|--:|--:|---|--:|--:|---|---|---|",
    ]
    for row in results["servers"]:
        behaviour = HUP_BEHAVIOUR.get(row["key"].split("-")[0], "")
        if "error" in row:
            lines.append(
                f"| {row['name']} | {row['interface']} | failed: {row['error']} | | | | | | | |"
            )
            continue
        p99 = f"{row['p99_ms']:.1f} ms" if row["p99_ms"] is not None else "-"
        bold = "**" if row["key"].startswith("prefork") else ""
        lines.append(
            f"| {bold}{row['name']}{bold} | {row['interface']} | {row['rps']:,.0f} | "
            f"{row['requests']:,} | {_errors(row)} | {p99} | {row['workers_seen']} | "
            f"{'yes' if row['serving_after'] else '**no**'} | {row.get('load', '-')} | "
            f"{behaviour} |"
        )
    lines += ["", END]
    return "\n".join(lines)


def write_section(doc: Path, section: str) -> None:
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        start, end = text.index(BEGIN), text.index(END) + len(END)
        text = text[:start] + section + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmarks/reload.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--duration", type=float, default=15.0, help="wrk seconds (15)")
    parser.add_argument("--at", default="3,6,9", help="seconds at which to send SIGHUP")
    parser.add_argument("--servers", help="comma-separated keys or prefixes (default: all)")
    parser.add_argument("--no-venv", action="store_true", help="use this interpreter")
    parser.add_argument("--output", type=Path, default=DOC, help="markdown file to update")
    parser.add_argument("--json", type=Path, default=RESULTS, help="raw results path")
    args = parser.parse_args(argv)
    try:
        hup_at = [float(t) for t in args.at.split(",") if t.strip()]
    except ValueError:
        parser.error(f"--at: expected comma-separated seconds, got {args.at!r}")
    if args.duration < 1 or any(not 0 <= t < args.duration for t in hup_at):
        parser.error("--duration must be >= 1 and every --at time within it")
    wanted = [w.strip() for w in args.servers.split(",")] if args.servers else None
    try:
        ensure_wrk()
        python = Path(sys.executable) if args.no_venv else ensure_venv()
    except (BenchError, subprocess.CalledProcessError) as exc:
        print(f"benchmarks: error: {exc}", file=sys.stderr)
        return 2
    specs = [s for s in server_specs(python) if s.reload_signal is not None]
    if wanted:
        unknown = [w for w in wanted if not any(s.key.startswith(w) for s in specs)]
        if unknown:
            parser.error(f"unknown server {', '.join(unknown)}")
        specs = [s for s in specs if any(s.key.startswith(w) for w in wanted)]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="prefork-reload-") as tmp:
        for spec in specs:
            if not has_modules(python, [spec.module]):
                print(f"{spec.key} skipped: {spec.module} not importable", file=sys.stderr)
                continue
            rows.append(measure(spec, python, args.duration, hup_at, Path(tmp)))
    results = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(["python", "benchmarks/reload.py", *(argv or sys.argv[1:])]),
        "duration": args.duration,
        "hup_at": hup_at,
        "servers": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    section = render(results)
    print(section)
    write_section(args.output, section)
    return 1 if any("error" in r for r in rows if r["key"].startswith("prefork")) else 0


if __name__ == "__main__":
    raise SystemExit(main())
