"""Instructions per request through the engine, counted by callgrind: an A/B noise cannot move.

    python benchmarks/instructions.py --setting metrics_bind=127.0.0.1:0 [--setting ...]
        [--interface wsgi|asgi] [--request wrk|browser] [--requests 1000]
        [--python 3.11,3.13] [--functions 25]

wrk's rates on this shared machine drift 20-30% between runs; an instruction
count does not (valgrind counts the same total with the other core busy or
idle).  Each variant runs the real HTTP engine (HttpConnection, the WSGI or
ASGI exchange, framing) through the fake transport of tests/protocol_harness.py,
once with a few requests and once with `--requests` more, under
`valgrind --tool=callgrind`; the difference divided by the extra requests is
the cost of one request, start-up excluded.  It leaves out the kernel's side
(socket reads and writes), so the ratio it reports is an upper bound of the
end-to-end overhead.  `benchmarks/overhead.py` measures the same thing with wrk.

`--python` counts on each named Python (a version found in pyenv or on PATH,
run in its benchmark venv, as `run.py --python` does) and prints each one's
count against the first.  `--python-functions N` prints the Python functions with the most own time
under cProfile (exact calls per request; times inflated by the profiler).
`--functions N` also prints the N C functions that
cost the most instructions per request (callgrind_annotate's self cost of the
long run minus the short one, divided by the extra requests): the interpreter's
own functions say where a Python version spends more (the evaluation loop,
allocation, dict lookups, thread-local state), uvloop's and llhttp's are the
event loop and the parser.

`--request` chooses the request: `wrk` (the default) is wrk's, with two header
fields; `browser` has the thirteen fields a browser sends for a page (cookie,
accept-*, sec-fetch-*), since the per-field cost only shows with many.
"""

from __future__ import annotations

import argparse
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks.*` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import BenchError, ensure_venv, find_python, python_version

ROOT = Path(__file__).resolve().parent.parent
WARM = 100  # requests in the short run: imports, caches and first-call costs are in both

# The request of each `--request` kind; DRIVER imports it from here.
REQUESTS = {
    "wrk": b"GET /plaintext HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\n\r\n",
    "browser": (
        b"GET /plaintext?page=2 HTTP/1.1\r\n"
        b"Host: bench.example.com\r\n"
        b"Connection: keep-alive\r\n"
        b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
        b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
        b"Accept-Language: en-GB,en;q=0.5\r\n"
        b"Accept-Encoding: gzip, deflate, br\r\n"
        b"Referer: https://bench.example.com/plaintext?page=1\r\n"
        b"Cookie: session=5f2b9c1e8a7d4e6f; theme=dark\r\n"
        b"Upgrade-Insecure-Requests: 1\r\n"
        b"Sec-Fetch-Dest: document\r\n"
        b"Sec-Fetch-Mode: navigate\r\n"
        b"Sec-Fetch-Site: same-origin\r\n"
        b"Sec-Fetch-User: ?1\r\n"
        b"\r\n"
    ),
}

DRIVER = """
import sys
from tests import protocol_harness
from tests.protocol_harness import run_exchange
from benchmarks import apps
from benchmarks.instructions import REQUESTS

# uvloop.run's teardown formats the main task, result included (restoring a
# signal handler builds a ValueError whose message holds its repr): the repr
# of every byte written would count as the engine's cost per request.
protocol_harness.Outcome.__repr__ = lambda self: "Outcome(...)"

app = apps.wsgi_plaintext if sys.argv[1] == "wsgi" else apps.asgi_plaintext
count = int(sys.argv[2])
request = REQUESTS[sys.argv[3]]
settings = dict(arg.split("=", 1) for arg in sys.argv[4:])
profile = settings.pop("cprofile", None)
if profile:
    import cProfile
    profiler = cProfile.Profile()
    outcome = profiler.runcall(run_exchange, app, [request] * count, max_rounds=20, **settings)
    profiler.dump_stats(profile)
else:
    outcome = run_exchange(app, [request] * count, max_rounds=20, **settings)
# Counting status lines, not parsing responses: the suite's response parser is
# Python too, and its cost per request would be counted as the engine's.
assert outcome.raw.count(b"HTTP/1.1 200 ") == count, outcome.raw[-300:]
"""

# callgrind_annotate's function lines: "1,234 ( 5.67%)  file:function [object]".
_FUNCTION_LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*?)\s*$")


def instructions(
    python: Path,
    interface: str,
    count: int,
    settings: Sequence[str],
    out: Path | None = None,
    request: str = "wrk",
) -> int:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    argv = [
        valgrind,
        "--tool=callgrind",
        f"--callgrind-out-file={out or '/dev/null'}",
        str(python),
        "-c",
        DRIVER,
        interface,
        str(count),
        request,
        *settings,
    ]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    match = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"callgrind run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(match[1])


def function_costs(out: Path) -> Counter[str]:
    """Self instructions per C function of one callgrind run."""
    text = subprocess.run(
        ["callgrind_annotate", "--threshold=100", str(out)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_annotate(text)


def parse_annotate(text: str) -> Counter[str]:
    """`callgrind_annotate`'s per-function self costs, keyed by function name."""
    costs: Counter[str] = Counter()
    for line in text.splitlines():
        match = _FUNCTION_LINE.match(line)
        if match and "PROGRAM TOTALS" not in match[2]:
            costs[_short(match[2])] += int(match[1].replace(",", ""))
    return costs


def _short(function: str) -> str:
    """`_Py_dict_lookup`: the function's name alone.

    callgrind_annotate lists the parts of a function inlined from headers
    (object.h, pycore_frame.h) as rows of their own, some without the binary;
    keyed by name they add up to one row, so the eval loop's cost compares.
    """
    location = function.partition(" [")[0]
    return location.rpartition(":")[2].split("'")[0]  # callgrind marks recursion as name'2


def per_request(
    python: Path,
    interface: str,
    requests: int,
    settings: Sequence[str],
    functions: int = 0,
    request: str = "wrk",
) -> tuple[float, list[tuple[str, float]]]:
    """Instructions per request and, if asked, the top `functions` C functions' shares."""
    if not functions:
        short = instructions(python, interface, WARM, settings, request=request)
        long = instructions(python, interface, WARM + requests, settings, request=request)
        return (long - short) / requests, []
    with tempfile.TemporaryDirectory(prefix="prefork-callgrind-") as tmp:
        short_out, long_out = Path(tmp) / "short.out", Path(tmp) / "long.out"
        short = instructions(python, interface, WARM, settings, short_out, request)
        long = instructions(python, interface, WARM + requests, settings, long_out, request)
        costs = function_costs(long_out)
        costs.subtract(function_costs(short_out))
    top = [(name, n / requests) for name, n in costs.most_common(functions)]
    return (long - short) / requests, top


def python_functions(
    python: Path, interface: str, requests: int, top: int, request: str = "wrk"
) -> list[str]:
    """cProfile's view of the same run: Python functions by own time, calls per request.

    Times are inflated by the profiler's per-call cost (more so where calls are
    many and short), so read them as shares; the call counts are exact.
    """
    with tempfile.TemporaryDirectory(prefix="prefork-cprofile-") as tmp:
        stats_path = Path(tmp) / "stats"
        argv = [
            *(str(python), "-c", DRIVER, interface, str(requests), request),
            f"cprofile={stats_path}",
        ]
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"cProfile run failed ({done.returncode}):\n{done.stderr[-2000:]}")
        stats = pstats.Stats(str(stats_path))
    rows = stats.stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in rows.values())
    ranked = sorted(rows.items(), key=lambda item: -item[1][2])[:top]
    lines = []
    for (filename, line, name), (_, calls, own, _, _) in ranked:
        where = f"{Path(filename).name}:{line}" if line else filename
        lines.append(f"  {100 * own / total:5.1f}%  {calls / requests:5.2f}/req  {name} ({where})")
    return lines


def _pythons(wanted: str | None) -> list[Path]:
    if not wanted:
        return [Path(sys.executable)]
    try:
        return [ensure_venv(find_python(w.strip())) for w in wanted.split(",") if w.strip()]
    except BenchError as exc:
        raise SystemExit(f"instructions: error: {exc}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/instructions.py", description=__doc__)
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a Config field for the variant (several: one variant with all of them)",
    )
    parser.add_argument("--interface", choices=("wsgi", "asgi"), default="wsgi")
    parser.add_argument(
        "--request",
        choices=tuple(REQUESTS),
        default="wrk",
        help="wrk's two header fields, or a browser's thirteen (default: wrk)",
    )
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument(
        "--python",
        help="comma-separated versions (3.13) or interpreter paths, each in its benchmark "
        "venv; the first is the reference (default: this interpreter)",
    )
    parser.add_argument(
        "--functions",
        type=int,
        default=0,
        metavar="N",
        help="also print the N C functions costing the most instructions per request",
    )
    parser.add_argument(
        "--python-functions",
        type=int,
        default=0,
        metavar="N",
        help="also print the N Python functions with the most own time under cProfile",
    )
    args = parser.parse_args(argv)
    if args.requests < 1 or args.functions < 0 or args.python_functions < 0:
        parser.error("--requests must be >= 1, --functions and --python-functions >= 0")
    reference: float | None = None
    for python in _pythons(args.python):
        version = python_version(python)
        base, top = per_request(
            python, args.interface, args.requests, [], args.functions, args.request
        )
        against = f", {base / reference:.3f}x the first Python" if reference else ""
        reference = reference or base
        print(
            f"Python {version} baseline: {base:,.0f} instructions per request "
            f"({args.interface}, {args.request} request){against}"
        )
        for name, cost in top:
            print(f"  {cost:>9,.0f}  {100 * cost / base:5.1f}%  {name}")
        if args.python_functions:
            print(f"Python {version}, cProfile, own time:")
            print(
                "\n".join(
                    python_functions(
                        python, args.interface, args.requests, args.python_functions, args.request
                    )
                )
            )
        if args.setting:
            variant, _ = per_request(
                python, args.interface, args.requests, args.setting, request=args.request
            )
            shown = " ".join(args.setting)
            print(f"{shown}: {variant:,.0f} instructions per request, {variant / base:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
