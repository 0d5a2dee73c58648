"""Idle memory of every process: prefork's master and workers, and the bare uvloop workers.

    python benchmarks/idle_memory.py [--python PATH] [--servers prefork-wsgi,prefork-asgi,bare]

No load generator, so it can run on a busy machine: each server starts with
run.py's worker count on benchmarks.apps (bare.py imports the same module), answers the few dozen
requests of `settle` on fresh connections, rests a moment, and then every
process of its tree is read with psutil:

- RSS, what benchmarks/run.py's table and the issue's goal use: every page
  mapped and resident, shared or not (a worker counts the pages it shares
  with the master and its siblings);
- USS, the pages only this process maps: what ending it frees, so what one
  more worker costs;
- PSS, each shared page split among the processes that map it: the sum over
  a tree is its share of the machine's memory.

Memory is not noisy (the same figures to 0.1 MiB run after run); the numbers
are in docs/profile.md, "Idle memory".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

import psutil

if __package__ in (None, ""):  # run as a script: make `benchmarks.*` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import (
    WORKERS,
    bare_spec,
    compile_sources,
    python_version,
    server_specs,
    serving,
    settle,
    worker_processes,
)

APPS: Final = {
    "prefork-wsgi": "benchmarks.apps:wsgi_app",
    "prefork-asgi": "benchmarks.apps:asgi_app",
    "bare": "benchmarks.apps:wsgi_app",  # bare.py imports the module, and calls nothing
}
# Heartbeats, the first sweep, the access log's first flush: what happens
# right after boot is over by then.
REST_SECONDS: Final = 1.5
MIB: Final = 2**20


def _row(server: str, role: str, proc: psutil.Process) -> str:
    info = proc.memory_full_info()
    figures = " | ".join(f"{value / MIB:.1f}" for value in (info.rss, info.uss, info.pss))
    return f"| {server} | {role} | {figures} |"


def sample(key: str, python: Path, workdir: Path) -> list[str]:
    spec = {spec.key: spec for spec in [*server_specs(python), bare_spec()]}[key]
    with serving(spec, python, APPS[key], workdir) as running:
        settle(running)
        time.sleep(REST_SECONDS)
        workers = sorted(worker_processes(running.proc.pid), key=lambda proc: proc.pid)
        rows = [_row(key, "master", psutil.Process(running.proc.pid))]
        rows += [_row(key, f"worker {index}", proc) for index, proc in enumerate(workers)]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", type=Path, default=Path(sys.executable))
    parser.add_argument("--servers", default=",".join(APPS))
    args = parser.parse_args(argv)
    compile_sources(args.python)
    print(f"Python {python_version(args.python)}, {WORKERS} workers, benchmarks.apps")
    print()
    print("| server | process | RSS MiB | USS MiB | PSS MiB |")
    print("|---|---|--:|--:|--:|")
    with tempfile.TemporaryDirectory(prefix="idle-memory-") as workdir:
        for key in args.servers.split(","):
            for row in sample(key, args.python, Path(workdir)):
                print(row, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
