"""What an option costs: prefork's plaintext rate with and without it, in interleaved rounds.

    python benchmarks/overhead.py --option "--metrics-bind 127.0.0.1:0" [--option ...]
        [--interface wsgi|asgi] [--rounds 3] [--duration 5] [--workers 1]

Each round runs the baseline (no option) and then every variant, one after
the other, with the same wrk command (`wrk -t1 -c64`); the report gives each
variant's median rate over the rounds and its ratio to the baseline's
median.  Interleaving keeps a noisy, shared machine's drift out of the
ratio, which is the number to read (absolute rates move 20-30% here).  One
worker by default, so the accept balance between workers cannot swing it.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks.*` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import HOST, ServerSpec, ensure_wrk, run_wrk, serving, settle

APPS = {"wsgi": "benchmarks.apps:wsgi_plaintext", "asgi": "benchmarks.apps:asgi_plaintext"}


def variant(label: str, extra: Sequence[str], workers: int) -> ServerSpec:
    return ServerSpec(
        label,
        label,
        "wsgi",
        "prefork",
        lambda py, port, app: [
            str(py),
            "-m",
            "prefork",
            app,
            "-w",
            str(workers),
            "-b",
            f"{HOST}:{port}",
            *extra,
        ],
        is_prefork=True,
    )


def measure(args: argparse.Namespace) -> dict[str, list[float]]:
    ensure_wrk()
    specs = [variant("baseline", [], args.workers)]
    specs += [variant(option, shlex.split(option), args.workers) for option in args.option]
    rates: dict[str, list[float]] = {spec.key: [] for spec in specs}
    python = Path(sys.executable)
    with tempfile.TemporaryDirectory() as logs:
        for round_number in range(args.rounds):
            for spec in specs:
                with serving(spec, python, APPS[args.interface], Path(logs)) as running:
                    settle(running)
                    url = f"http://{HOST}:{running.port}/plaintext"
                    run_wrk(url, 1)  # warm-up
                    result = run_wrk(url, args.duration)
                rates[spec.key].append(result.rps)
                print(
                    f"round {round_number + 1}: {spec.key:<40} {result.rps:>10,.0f} req/s",
                    flush=True,
                )
    return rates


def report(rates: dict[str, list[float]]) -> str:
    base = statistics.median(rates["baseline"])
    lines = ["| variant | median req/s | rounds | ratio to baseline |", "|---|--:|---|--:|"]
    for key, values in rates.items():
        median = statistics.median(values)
        shown = ", ".join(f"{v:,.0f}" for v in values)
        lines.append(f"| `{key}` | {median:,.0f} | {shown} | {median / base:.3f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/overhead.py", description=__doc__)
    parser.add_argument("--option", action="append", default=[], help="prefork flags to weigh")
    parser.add_argument("--interface", choices=sorted(APPS), default="wsgi")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.option:
        parser.error("give at least one --option to compare with the baseline")
    print(report(measure(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
