"""Instructions per request through the engine, counted by callgrind: an A/B noise cannot move.

    python benchmarks/instructions.py --setting metrics_bind=127.0.0.1:0 [--setting ...]
        [--interface wsgi|asgi] [--requests 1000]

wrk's rates on this shared machine drift 20-30% between runs; an instruction
count does not (valgrind counts the same total with the other core busy or
idle).  Each variant runs the real HTTP engine (HttpConnection, the WSGI or
ASGI exchange, framing) through the fake transport of tests/protocol_harness.py,
once with a few requests and once with `--requests` more, under
`valgrind --tool=callgrind`; the difference divided by the extra requests is
the cost of one request, start-up excluded.  It leaves out the kernel's side
(socket reads and writes), so the ratio it reports is an upper bound of the
end-to-end overhead.  `benchmarks/overhead.py` measures the same thing with wrk.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARM = 100  # requests in the short run: imports, caches and first-call costs are in both

DRIVER = """
import sys
from tests.protocol_harness import run_exchange
from benchmarks import apps

app = apps.wsgi_plaintext if sys.argv[1] == "wsgi" else apps.asgi_plaintext
count = int(sys.argv[2])
settings = dict(arg.split("=", 1) for arg in sys.argv[3:])
request = b"GET /plaintext HTTP/1.1\\r\\nHost: bench\\r\\nUser-Agent: wrk\\r\\n\\r\\n"
outcome = run_exchange(app, [request] * count, max_rounds=20, **settings)
assert len(outcome.responses) == count, len(outcome.responses)
"""


def instructions(interface: str, count: int, settings: Sequence[str]) -> int:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    argv = [
        valgrind,
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-c",
        DRIVER,
        interface,
        str(count),
        *settings,
    ]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    match = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"callgrind run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(match[1])


def per_request(interface: str, requests: int, settings: Sequence[str]) -> float:
    short = instructions(interface, WARM, settings)
    long = instructions(interface, WARM + requests, settings)
    return (long - short) / requests


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
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args(argv)
    base = per_request(args.interface, args.requests, [])
    print(f"baseline: {base:,.0f} instructions per request ({args.interface})")
    if args.setting:
        variant = per_request(args.interface, args.requests, args.setting)
        shown = " ".join(args.setting)
        print(f"{shown}: {variant:,.0f} instructions per request, {variant / base:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
