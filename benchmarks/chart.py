"""Draw docs/benchmarks.png from benchmarks/results.json.

    benchmarks/.venv/bin/python benchmarks/chart.py RESULTS.json OUT.png

Run by run.py with the benchmark virtualenv's python: matplotlib lives there,
never in the project's test environment.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any, Final

# One colour per server across both panels; the ceiling is grey and hatched.
COLOURS: Final = {
    "prefork": "#d62728",
    "uvicorn": "#1f77b4",
    "granian": "#ff7f0e",
    "gunicorn sync": "#2ca02c",
    "gunicorn gthread": "#8c564b",
    "gunicorn+uvicorn": "#9467bd",
    "bare uvloop": "#7f7f7f",
}


def _ok(run: dict[str, Any] | None) -> bool:
    return bool(run) and "error" not in (run or {})


def draw(results: dict[str, Any], out: Path) -> None:
    matplotlib = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    plt = importlib.import_module("matplotlib.pyplot")
    # One Python's comparison (the first measured); the report tabulates the others.
    first = next(iter(results.get("pythons") or {}), None)
    servers = [s for s in results["servers"] if s.get("python") == first]
    panels = [i for i in ("wsgi", "asgi") if any(s["interface"] == i for s in servers)]
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 4.2 * len(panels)), squeeze=False)
    for ax, interface in zip((row[0] for row in axes), panels, strict=True):
        rows = [
            s
            for s in servers
            if s["interface"] in (interface, "raw") and any(_ok(r) for r in s["runs"].values())
        ]
        scenarios = [
            key
            for key in results["scenarios"]
            if any(key in s["runs"] for s in rows if s["interface"] == interface)
        ]
        width = 0.8 / max(len(rows), 1)
        for index, server in enumerate(rows):
            xs: list[float] = []
            ys: list[float] = []
            for position, key in enumerate(scenarios):
                run = server["runs"].get(key)
                if run and _ok(run):
                    xs.append(position + (index - (len(rows) - 1) / 2) * width)
                    ys.append(run["rps"])
            label = "bare uvloop (ceiling)" if server["interface"] == "raw" else server["name"]
            ax.bar(
                xs,
                ys,
                width,
                label=label,
                color=COLOURS.get(server["name"], "#17becf"),
                hatch="//" if server["interface"] == "raw" else None,
                edgecolor="black" if server["key"].startswith("prefork") else None,
            )
        ax.set_yscale("log")
        ax.set_xticks(range(len(scenarios)), scenarios)
        ax.set_ylabel("requests/s (log scale)")
        workers = results["workers"]
        ax.set_title(f"{interface.upper()}: {workers} workers, wrk -t1 -c64 (sleep: -c512)")
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize="small", ncols=3)
    on = f", Python {first}" if first else ""
    fig.suptitle(f"prefork vs the field{on}, {results['date']}")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: chart.py RESULTS.json OUT.png", file=sys.stderr)
        return 2
    draw(json.loads(Path(argv[0]).read_text()), Path(argv[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
