"""Benchmark prefork against uvicorn, granian and gunicorn; write docs/benchmarks.md.

    python benchmarks/run.py [--quick] [--duration S] [--scenarios a,b] [--servers x,y]
        [--python 3.11,3.13] [--rounds N]

Every server runs the same app (benchmarks/apps.py; benchmarks/frameworks.py
for the FastAPI and Flask scenarios) with the same worker count (2) on
127.0.0.1, one after the other, measured with the same wrk command
(`wrk -t1 -c64 --latency`, a short warm-up run first).  With several
`--python` versions every version gets its own virtualenv and the whole
comparison runs on each, interleaved.  See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
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
    bare_spec,
    compile_sources,
    ensure_venv,
    ensure_wrk,
    find_python,
    has_modules,
    hot_path,
    machine_summary,
    memory,
    package_versions,
    parse_wrk,
    post_script,
    python_version,
    requests_per_worker,
    run_wrk,
    server_specs,
    serving,
    settle,
    settled_requests,
    wrk_command,
)

DOC: Final = ROOT / "docs" / "benchmarks.md"
CHART: Final = ROOT / "docs" / "benchmarks.png"
RESULTS: Final = ROOT / "benchmarks" / "results.json"
RELOAD_BEGIN: Final = "<!-- reload-benchmark:begin -->"
RELOAD_END: Final = "<!-- reload-benchmark:end -->"
MIB: Final = 1024 * 1024
# Issue 16: an idle worker within 3 MiB of a bare uvloop process that imported the same app.
IDLE_WORKER_SLACK: Final = 3 * MIB


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    title: str
    path: str
    interfaces: tuple[str, ...] = ("wsgi", "asgi")
    connections: int = 64
    headers: tuple[str, ...] = ()
    post_bytes: int = 0
    bare: bool = False  # the bare uvloop ceiling can answer it
    app: str | None = None  # served instead of benchmarks.apps (the framework scenarios)


SCENARIOS: Final = (
    Scenario("plaintext", "Plaintext, keep-alive", "/plaintext", bare=True),
    Scenario(
        "close",
        "Plaintext, new connection per request (Connection: close)",
        "/plaintext",
        headers=("Connection: close",),
        bare=True,
    ),
    Scenario("json", "JSON response", "/json"),
    Scenario("64k", "64 KiB response", "/64k"),
    Scenario("echo", "1 MiB POST echoed back", "/echo", post_bytes=MIB),
    Scenario("stream", "Streaming response (8 chunks of 1 KiB, chunked)", "/stream"),
    Scenario(
        "sleep",
        "Async app awaiting 10 ms, 512 connections",
        "/sleep",
        interfaces=("asgi",),
        connections=512,
    ),
    Scenario(
        "fastapi",
        "FastAPI JSON endpoint",
        "/json",
        interfaces=("asgi",),
        app="benchmarks.frameworks:fastapi_app",
    ),
    Scenario(
        "flask",
        "Flask JSON endpoint",
        "/json",
        interfaces=("wsgi",),
        app="benchmarks.frameworks:flask_app",
    ),
)

APPS: Final = {
    "wsgi": "benchmarks.apps:wsgi_app",
    "asgi": "benchmarks.apps:asgi_app",
    "raw": "benchmarks.apps:wsgi_app",
}


# -- measuring ------------------------------------------------------------------


def _split(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def select_specs(
    specs: Sequence[ServerSpec], wanted: list[str] | None, python: Path
) -> tuple[list[ServerSpec], list[str]]:
    """The specs named by --servers (a key or a prefix such as `prefork`), and skip notes."""
    chosen = list(specs)
    if wanted:
        unknown = [w for w in wanted if not any(s.key.startswith(w) for s in specs)]
        if unknown:
            keys = ", ".join(s.key for s in specs)
            raise BenchError(f"unknown server {', '.join(unknown)}; choose from {keys}")
        chosen = [s for s in specs if any(s.key.startswith(w) for w in wanted)]
    notes: list[str] = []
    runnable: list[ServerSpec] = []
    for spec in chosen:
        if has_modules(python, [spec.module]):
            runnable.append(spec)
        else:
            notes.append(f"{spec.key} skipped: {spec.module} is not importable by {python}")
    return runnable, notes


def select_scenarios(wanted: list[str] | None) -> list[Scenario]:
    if not wanted:
        return list(SCENARIOS)
    known = {s.key: s for s in SCENARIOS}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise BenchError(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(known)}")
    return [s for s in SCENARIOS if s.key in wanted]


def applies(scenario: Scenario, spec: ServerSpec) -> bool:
    if spec.interface == "raw":
        return scenario.bare
    return spec.interface in scenario.interfaces


def _wrk_args(scenario: Scenario, scripts: Path) -> dict[str, Any]:
    script = post_script(scripts, scenario.post_bytes) if scenario.post_bytes else None
    return {"connections": scenario.connections, "headers": scenario.headers, "script": script}


def _app(scenario: Scenario, spec: ServerSpec) -> str:
    return scenario.app or APPS[spec.interface]


def measure_server(
    spec: ServerSpec,
    python: Path,
    scenarios: Sequence[Scenario],
    duration: float,
    warmup: float,
    workdir: Path,
) -> dict[str, Any]:
    """One server's runs: one start per app its scenarios need (benchmarks.apps first)."""
    version = python_version(python)
    record: dict[str, Any] = {
        "key": spec.key,
        "name": spec.name,
        "interface": spec.interface,
        "python": version,
        "note": spec.note,
        "command": _display_command(spec, python),
        "runs": {},
    }
    print(f"== {spec.key} (Python {version})", file=sys.stderr, flush=True)
    # Other work on the machine skews a comparison; the report shows how busy it was.
    record["loadavg_before"] = round(os.getloadavg()[0], 2)
    by_app: dict[str, list[Scenario]] = {APPS[spec.interface]: []}
    for scenario in scenarios:
        if applies(scenario, spec):
            by_app.setdefault(_app(scenario, spec), []).append(scenario)
    for app, group in by_app.items():
        if not group and app != APPS[spec.interface]:
            continue
        # Memory and startup are taken with benchmarks.apps, the app bare.py imports too.
        main_app = app == APPS[spec.interface]
        probe = group[0].path if group else "/plaintext"
        try:
            with serving(spec, python, app, workdir, probe) as running:
                if main_app:
                    record["startup_s"] = running.startup_seconds
                settle(running, probe)
                if main_app:
                    record["memory_idle"] = dataclasses.asdict(memory(running.proc.pid))
                for scenario in group:
                    record["runs"][scenario.key] = _measure_scenario(
                        running, scenario, duration, warmup, workdir
                    )
                if main_app:
                    record["memory_load"] = dataclasses.asdict(memory(running.proc.pid))
                if running.proc.poll() is not None:
                    record["error"] = f"exited with {running.proc.returncode} during the run"
        except BenchError as exc:
            record["error"] = str(exc).splitlines()[0]
            print(f"   failed: {exc}", file=sys.stderr)
    record["loadavg_after"] = round(os.getloadavg()[0], 2)
    return record


def _measure_scenario(
    running: Running, scenario: Scenario, duration: float, warmup: float, workdir: Path
) -> dict[str, Any]:
    url = running.url + scenario.path
    args = _wrk_args(scenario, workdir)
    try:
        if warmup > 0:
            run_wrk(url, warmup, **args)
        before = settled_requests(running)
        result = run_wrk(url, duration, **args)
    except (BenchError, ValueError, subprocess.TimeoutExpired) as exc:
        print(f"   {scenario.key}: failed: {exc}", file=sys.stderr)
        return {"error": str(exc).splitlines()[0]}
    run = dataclasses.asdict(result)
    run["wrk_output"] = run.pop("raw")
    if before:
        run["per_worker"] = requests_per_worker(running, before, result.requests)
    print(
        f"   {scenario.key:<10} {result.rps:>10.0f} req/s  p50 {_ms(result.p50_ms)}"
        f"  p99 {_ms(result.p99_ms)}  errors {result.errors}"
        f"  per worker {_shares(run)}",
        file=sys.stderr,
        flush=True,
    )
    return run


def merge_rounds(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One record per server: each scenario's fastest round, the quickest startup.

    Interference from other processes only ever slows a run down, so the best
    of several interleaved rounds is the figure least distorted by it.  Memory
    comes from the last round that completed.
    """
    merged = dict(records[-1])
    complete = [r for r in records if "error" not in r]
    if complete:
        merged = dict(complete[-1])
        if all("startup_s" in r for r in complete):
            merged["startup_s"] = min(r["startup_s"] for r in complete)
        merged["loadavg_before"] = max(r["loadavg_before"] for r in complete)
        merged["loadavg_after"] = max(r["loadavg_after"] for r in complete)
    runs: dict[str, Any] = {}
    for record in records:
        for key, run in record["runs"].items():
            best = runs.get(key)
            if best is None or "error" in best or ("error" not in run and run["rps"] > best["rps"]):
                runs[key] = run
    merged["runs"] = runs
    return merged


# -- reporting --------------------------------------------------------------------

_SENTINEL_PORT: Final = 54321


def _display_command(spec: ServerSpec, python: Path) -> str:
    argv = spec.argv(python, _SENTINEL_PORT, APPS[spec.interface])
    text = shlex.join(argv).replace(str(_SENTINEL_PORT), "PORT")
    return text.replace(str(ROOT) + "/", "")


def _display_wrk(scenario: Scenario, duration: float) -> str:
    script = Path(f"post-{scenario.post_bytes}.lua") if scenario.post_bytes else None
    argv = wrk_command(
        "http://127.0.0.1:PORT" + scenario.path,
        duration,
        scenario.connections,
        scenario.headers,
        script,
    )
    return shlex.join(["wrk", *argv[1:]])


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} µs" if value < 1 else f"{value:.2f} ms"


def _mib(value: int) -> str:
    return f"{value / MIB:.1f}"


def _ratio(numerator: float | None, denominator: float | None) -> str:
    if not numerator or not denominator:
        return "-"
    return f"{numerator / denominator:.2f}x"


def _shares(run: dict[str, Any]) -> str:
    """Each worker's part of the requests, busiest first: `52% / 48%` ("-" if unknown)."""
    counts: list[int] = run.get("per_worker") or []
    total = sum(counts)
    if not total:
        return "-"
    return " / ".join(f"{100 * n / total:.0f}%" for n in counts)


def _errors(run: dict[str, Any]) -> str:
    total = (
        run["connect_errors"]
        + run["read_errors"]
        + run["write_errors"]
        + run["timeouts"]
        + run["non_2xx"]
    )
    if not total:
        return "0"
    parts = [
        f"{label} {run[name]}"
        for name, label in (
            ("connect_errors", "connect"),
            ("read_errors", "read"),
            ("write_errors", "write"),
            ("timeouts", "timeout"),
            ("non_2xx", "non-2xx"),
        )
        if run[name]
    ]
    return f"{total} ({', '.join(parts)})"


def _run(servers: Sequence[dict[str, Any]], key: str, scenario: str) -> dict[str, Any] | None:
    for server in servers:
        if server["key"] == key:
            run: dict[str, Any] | None = server["runs"].get(scenario)
            return run if run and "error" not in run else None
    return None


def _rps(servers: Sequence[dict[str, Any]], key: str, scenario: str) -> float | None:
    run = _run(servers, key, scenario)
    return float(run["rps"]) if run else None


def _best(
    servers: Sequence[dict[str, Any]], keys: Sequence[str], scenario: str
) -> tuple[str, float | None]:
    """The fastest of the servers `keys` in `scenario`: (its name, its req/s)."""
    measured = [
        (rps, s["name"])
        for s in servers
        if s["key"] in keys and (rps := _rps(servers, s["key"], scenario))
    ]
    if not measured:
        return "-", None
    rps, name = max(measured)
    return name, rps


def _peers(servers: Sequence[dict[str, Any]], interface: str) -> list[str]:
    return [
        s["key"]
        for s in servers
        if s["interface"] == interface and not s["key"].startswith("prefork")
    ]


def pythons(results: dict[str, Any]) -> list[str]:
    """The measured Python versions (`3.11`), the first one the reference."""
    return list(results["pythons"])


def on_python(results: dict[str, Any], version: str) -> list[dict[str, Any]]:
    return [s for s in results["servers"] if s["python"] == version]


def normalize(results: dict[str, Any]) -> None:
    """Give results written before the multi-Python runs their Python version."""
    if "pythons" not in results:
        full = results["machine"]["python"]
        short = ".".join(full.split(".")[:2])
        results["pythons"] = {short: full}
        results.setdefault("versions_by_python", {short: results.get("versions", {})})
        for server in results["servers"]:
            server.setdefault("python", short)


def _table_rows(
    results: dict[str, Any], scenario: Scenario, interface: str
) -> list[dict[str, Any]]:
    """The servers that ran `scenario`, each server's Pythons next to each other."""
    rows = [
        s
        for s in results["servers"]
        if s["interface"] in (interface, "raw") and scenario.key in s["runs"]
    ]
    order = {key: index for index, key in enumerate(dict.fromkeys(s["key"] for s in rows))}
    versions = pythons(results)
    return sorted(rows, key=lambda s: (order[s["key"]], versions.index(s["python"])))


def scenario_tables(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for scenario in SCENARIOS:
        if scenario.key not in results["scenarios"]:
            continue
        for interface in scenario.interfaces:
            rows = _table_rows(results, scenario, interface)
            if not rows:
                continue
            wrk = _display_wrk(scenario, results["duration"])
            app = f"; app `{scenario.app}`" if scenario.app else ""
            lines += [
                f"### {scenario.title} — {interface.upper()}",
                "",
                f"`{wrk}`{app}",
                "",
                "| server | Python | req/s | p50 | p99 | errors | per worker | prefork ÷ server |",
                "|---|---|--:|--:|--:|---|--:|--:|",
            ]
            for server in rows:
                run = server["runs"][scenario.key]
                name = server["name"] if server["interface"] != "raw" else "bare uvloop (ceiling)"
                version = server["python"]
                if "error" in run:
                    lines.append(f"| {name} | {version} | failed: {run['error']} | | | | | |")
                    continue
                prefork_rps = _rps(
                    on_python(results, version), f"prefork-{interface}", scenario.key
                )
                bold = "**" if server["key"].startswith("prefork") else ""
                lines.append(
                    f"| {bold}{name}{bold} | {version} | {run['rps']:,.0f} | "
                    f"{_ms(run['p50_ms'])} | {_ms(run['p99_ms'])} | {_errors(run)} | "
                    f"{_shares(run)} | {_ratio(prefork_rps, run['rps'])} |"
                )
            lines.append("")
    return lines


def python_tables(results: dict[str, Any]) -> list[str]:
    """Each Python's prefork-to-best-peer ratio, and each server's speed across Pythons."""
    versions = pythons(results)
    if len(versions) < 2:
        return []
    base = versions[0]
    lines = [
        f"## Python {' vs '.join(versions)}",
        "",
        "Each Python's prefork against the fastest peer on the same Python "
        "(the peers that apply: see each scenario's table):",
        "",
        "| scenario | " + " | ".join(f"prefork ÷ best peer, {v}" for v in versions) + " |",
        "|---|" + "--:|" * len(versions),
    ]
    pairs = [
        (scenario, interface)
        for scenario in SCENARIOS
        if scenario.key in results["scenarios"]
        for interface in scenario.interfaces
    ]
    for scenario, interface in pairs:
        cells = []
        for version in versions:
            servers = on_python(results, version)
            name, best = _best(servers, _peers(servers, interface), scenario.key)
            mine = _rps(servers, f"prefork-{interface}", scenario.key)
            cells.append(f"{_ratio(mine, best)} ({name})" if mine and best else "-")
        lines.append(f"| {scenario.key} {interface.upper()} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Each server's own speed on every Python, against Python {base} (same run, interleaved):",
        "",
        "| scenario | server | "
        + " | ".join(f"req/s {v}" for v in versions)
        + " | "
        + " | ".join(f"{v} ÷ {base}" for v in versions[1:])
        + " |",
        "|---|---|" + "--:|" * (2 * len(versions) - 1),
    ]
    for scenario, interface in pairs:
        keys = dict.fromkeys(
            s["key"]
            for s in results["servers"]
            if s["interface"] == interface and scenario.key in s["runs"]
        )
        for key in keys:
            rates = [_rps(on_python(results, v), key, scenario.key) for v in versions]
            name = next(s["name"] for s in results["servers"] if s["key"] == key)
            bold = "**" if key.startswith("prefork") else ""
            lines.append(
                f"| {scenario.key} {interface.upper()} | {bold}{name}{bold} | "
                + " | ".join(f"{r:,.0f}" if r else "-" for r in rates)
                + " | "
                + " | ".join(_ratio(r, rates[0]) for r in rates[1:])
                + " |"
            )
    return [*lines, ""]


def memory_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "## Memory (RSS, MiB)",
        "",
        "Sampled with psutil over the server's process tree, serving benchmarks.apps: *idle* "
        "after boot and a few dozen requests on fresh connections, *after load* at the end of "
        "its scenarios.  A forked worker's RSS counts the pages it shares with its master and "
        "siblings; its USS (the pages only it maps) is what one more worker costs.",
        "",
        "| server | interface | Python | master idle | workers idle | workers idle, USS "
        "| master after load | workers after load | whole tree after load |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for server in results["servers"]:
        idle, load = server.get("memory_idle"), server.get("memory_load")
        if not idle or not load:
            continue
        lines.append(
            f"| {server['name']} | {server['interface']} | {server['python']} | "
            f"{_mib(idle['master_rss'])} | "
            f"{' / '.join(_mib(r) for r in idle['worker_rss'])} | "
            f"{' / '.join(_mib(r) for r in idle.get('worker_uss', ())) or '-'} | "
            f"{_mib(load['master_rss'])} | "
            f"{' / '.join(_mib(r) for r in load['worker_rss'])} | {_mib(load['tree_rss'])} |"
        )
    return [*lines, ""]


def startup_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "## Startup",
        "",
        "From launching the command to the first `200` on a fresh connection (polled every "
        "5 ms); one worker may still be booting at that moment.",
        "",
        "| server | interface | Python | launch → first response |",
        "|---|---|---|--:|",
    ]
    lines += [
        f"| {s['name']} | {s['interface']} | {s['python']} | {s['startup_s'] * 1000:.0f} ms |"
        for s in results["servers"]
        if "startup_s" in s
    ]
    return [*lines, ""]


def _verdict(ok: bool | None) -> str:
    return {True: "**met**", False: "**not met**", None: "not measured"}[ok]


def _bar(goal: str, mine: float | None, theirs: float | None, target: float, peer: str) -> str:
    ok = None if not mine or not theirs else mine / theirs >= target
    return f"- {goal}: prefork ≥ {target}x {peer} — {_ratio(mine, theirs)} — {_verdict(ok)}"


def throughput_bars(servers: Sequence[dict[str, Any]]) -> list[str]:
    """Issue 16's throughput goals, each against the peers of the same Python."""
    lines: list[str] = []
    for interface in ("wsgi", "asgi"):
        label = interface.upper()
        prefork = _rps(servers, f"prefork-{interface}", "plaintext")
        # uvicorn's WSGI path is a thread-pool shim; its ASGI number is its best, and
        # the stricter comparison, so the WSGI bar uses whichever uvicorn is faster.
        uvicorn_keys = (
            ("uvicorn-wsgi", "uvicorn-asgi") if interface == "wsgi" else ("uvicorn-asgi",)
        )
        _, uvicorn = _best(servers, uvicorn_keys, "plaintext")
        granian = _rps(servers, f"granian-{interface}", "plaintext")
        bare = _rps(servers, "bare", "plaintext")
        goal = f"Plaintext keep-alive, {label}"
        lines += [
            _bar(goal, prefork, uvicorn, 2.0, "uvicorn"),
            _bar(goal, prefork, granian, 1.5, "granian"),
            _bar(goal, prefork, bare, 0.6, "the bare uvloop ceiling"),
        ]
    for interface in ("wsgi", "asgi"):
        name, best = _best(servers, _peers(servers, interface), "close")
        mine = _rps(servers, f"prefork-{interface}", "close")
        lines.append(
            _bar(
                f"Connection: close, {interface.upper()}",
                mine,
                best,
                1.3,
                f"the best peer ({name})",
            )
        )
    name, best = _best(servers, ("uvicorn-asgi", "gunicorn-uvicorn", "granian-asgi"), "fastapi")
    lines.append(
        _bar(
            "FastAPI JSON",
            _rps(servers, "prefork-asgi", "fastapi"),
            best,
            1.2,
            f"the best of uvicorn and granian ({name})",
        )
    )
    name, best = _best(servers, ("granian-wsgi", "gunicorn-gthread"), "flask")
    lines.append(
        _bar(
            "Flask JSON",
            _rps(servers, "prefork-wsgi", "flask"),
            best,
            1.5,
            f"the best of granian and gunicorn gthread ({name})",
        )
    )
    return lines


def latency_bar(servers: Sequence[dict[str, Any]], scenarios: Sequence[str]) -> str:
    worse: list[str] = []
    checked = 0
    for scenario in scenarios:
        for interface in ("wsgi", "asgi"):
            mine = _run(servers, f"prefork-{interface}", scenario)
            peers = [
                run
                for key in _peers(servers, interface)
                if (run := _run(servers, key, scenario)) and run["p99_ms"] is not None
            ]
            if not mine or mine["p99_ms"] is None or not peers:
                continue
            checked += 1
            best = min(run["p99_ms"] for run in peers)
            if mine["p99_ms"] > best:
                worse.append(
                    f"{scenario} {interface.upper()} ({_ms(mine['p99_ms'])} vs {_ms(best)})"
                )
    ok = None if not checked else not worse
    detail = f"worse in: {'; '.join(worse)}" if worse else f"{checked} comparisons"
    return f"- p99 latency no worse than the best peer, every scenario — {detail} — {_verdict(ok)}"


def memory_bars(servers: Sequence[dict[str, Any]]) -> list[str]:
    by_key = {s["key"]: s for s in servers}
    masters = [
        max(s[m]["master_rss"] for m in ("memory_idle", "memory_load"))
        for s in servers
        if s["key"].startswith("prefork") and s.get("memory_load")
    ]
    master_ok = None if not masters else max(masters) <= 20 * MIB
    lines = [
        f"- prefork master RSS ≤ 20 MiB — "
        f"{_mib(max(masters)) + ' MiB' if masters else '-'} — {_verdict(master_ok)}"
    ]
    bare = by_key.get("bare", {}).get("memory_idle")
    for interface in ("wsgi", "asgi"):
        idle = by_key.get(f"prefork-{interface}", {}).get("memory_idle")
        ok = None
        detail = "-"
        if bare and idle and idle["worker_rss"] and bare["worker_rss"]:
            delta = max(idle["worker_rss"]) - max(bare["worker_rss"])
            ok = delta <= IDLE_WORKER_SLACK
            detail = (
                f"{_mib(max(idle['worker_rss']))} vs {_mib(max(bare['worker_rss']))} MiB "
                f"(+{_mib(delta)})"
            )
            if idle.get("worker_uss") and bare.get("worker_uss"):
                detail += (
                    f"; USS {_mib(max(idle['worker_uss']))} vs {_mib(max(bare['worker_uss']))} MiB"
                )
        lines.append(
            f"- Idle {interface.upper()} worker within {IDLE_WORKER_SLACK // MIB} MiB of a bare "
            f"uvloop process that imported the same app — {detail} — {_verdict(ok)}"
        )
    return lines


def version_bars(results: dict[str, Any]) -> list[str]:
    """prefork on each later Python against the first, every scenario measured on both."""
    versions = pythons(results)
    base = on_python(results, versions[0])
    lines: list[str] = []
    for version in versions[1:]:
        servers = on_python(results, version)
        for interface in ("wsgi", "asgi"):
            key = f"prefork-{interface}"
            ratios = [
                (scenario, mine / theirs)
                for scenario in results["scenarios"]
                if (mine := _rps(servers, key, scenario)) and (theirs := _rps(base, key, scenario))
            ]
            if not ratios:
                continue
            ok = all(ratio >= 1.0 for _, ratio in ratios)
            detail = ", ".join(f"{scenario} {ratio:.2f}x" for scenario, ratio in ratios)
            lines.append(
                f"- prefork {interface.upper()} on Python {version} no slower than on "
                f"{versions[0]} — {detail} — {_verdict(ok)}"
            )
    return lines


def bars(results: dict[str, Any]) -> list[str]:
    """Issue 16's goals, each line saying whether this run meets it, per Python."""
    lines: list[str] = []
    for version in pythons(results):
        servers = on_python(results, version)
        lines += [f"## The bar — Python {version}", ""]
        lines += throughput_bars(servers)
        lines.append(latency_bar(servers, results["scenarios"]))
        lines += memory_bars(servers)
        lines.append("")
    across = version_bars(results)
    if across:
        lines += ["## The bar — across Python versions", "", *across, ""]
    return lines


def _rounds(results: dict[str, Any]) -> str:
    rounds = results.get("rounds", 1)
    return f", best of {rounds} interleaved rounds" if rounds > 1 else ""


def render(results: dict[str, Any], previous: str) -> str:
    meta = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `benchmarks/run.py` (see benchmarks/README.md); do not edit by hand.",
        "",
        f"- Date: {results['date']}",
        f"- Machine: {meta['nproc']} CPUs ({meta['usable_cpus']} usable), {meta['cpu']}, "
        f"{meta['memory']}, Linux {meta['kernel']}; {meta['wrk']}",
    ]
    for version, full in results["pythons"].items():
        packages = results["versions_by_python"].get(version, {})
        listed = ", ".join(f"{k} {v}" for k, v in packages.items())
        lines.append(f"- Python {full}: {listed}")
    lines += [
        f"- Command: `{results['command']}`",
        f"- Each scenario: a {results['warmup']:g} s warm-up, then {results['duration']:g} s "
        f"measured{_rounds(results)}; {results['workers']} workers per server; wrk with one "
        "thread on the same machine (so the client competes with the servers for the same "
        "CPUs: compare rows, not absolute numbers across machines).",
        "",
    ]
    lines += bars(results)
    lines += ["![requests per second](benchmarks.png)", ""] if results.get("chart") else []
    lines += python_tables(results)
    lines += ["## Requests per second", ""]
    lines += scenario_tables(results)
    lines += memory_table(results)
    lines += startup_table(results)
    lines += [
        "## Servers",
        "",
        "*Load* is the 1-minute load average before and after the server's scenarios: above "
        f"{meta['usable_cpus']} (the CPU count), something else was competing for the CPUs "
        "and that server's figures are low.",
        "",
        "| server | interface | Python | command | load | note |",
        "|---|---|---|---|---|---|",
    ]
    for server in results["servers"]:
        load = (
            f"{server['loadavg_before']} → {server['loadavg_after']}"
            if "loadavg_after" in server
            else "-"
        )
        failed = "failed: " + server["error"] if "error" in server else ""
        lines.append(
            f"| {server['name']} | {server['interface']} | {server['python']} | "
            f"`{server['command']}` | {load} | "
            f"{'; '.join(n for n in (server['note'], failed) if n)} |"
        )
    lines.append("")
    for note in results["notes"]:
        lines.append(f"- {note}")
    if results["notes"]:
        lines.append("")
    text = "\n".join(lines)
    if RELOAD_BEGIN in previous and RELOAD_END in previous:
        start = previous.index(RELOAD_BEGIN)
        end = previous.index(RELOAD_END) + len(RELOAD_END)
        text += "\n" + previous[start:end] + "\n"
    return text


def write_chart(python: Path, results_path: Path, chart: Path) -> bool:
    """Draw the chart with the venv's matplotlib, in its own process."""
    if not has_modules(python, ["matplotlib"]):
        print(f"chart skipped: matplotlib is not importable by {python}", file=sys.stderr)
        return False
    done = subprocess.run(
        [str(python), str(ROOT / "benchmarks" / "chart.py"), str(results_path), str(chart)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        print(f"chart failed: {done.stderr.strip()}", file=sys.stderr)
        return False
    return True


# -- main -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s per scenario, 1 s warm-up")
    parser.add_argument("--duration", type=float, help="seconds per scenario (default 10)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds (default 2; --quick 1)")
    parser.add_argument(
        "--scenarios", help="comma-separated: " + ",".join(s.key for s in SCENARIOS)
    )
    parser.add_argument(
        "--servers",
        help="comma-separated keys or prefixes, e.g. prefork,uvicorn-asgi,bare (default: all)",
    )
    parser.add_argument(
        "--python",
        help="comma-separated Python versions (3.13, found in pyenv or on PATH) or interpreter "
        "paths: the whole comparison runs on each, interleaved, each in its own venv "
        "(benchmarks/.venv-X.Y); the first is the reference (default: this interpreter)",
    )
    parser.add_argument(
        "--no-venv",
        action="store_true",
        help="run servers with this interpreter instead of benchmarks/.venv (servers it "
        "cannot import are skipped)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every server N times, interleaved, and keep each scenario's best run "
        "(evens out interference from other work on the machine)",
    )
    parser.add_argument("--output", type=Path, default=DOC, help="markdown report path")
    parser.add_argument("--json", type=Path, default=RESULTS, help="raw results path")
    parser.add_argument("--chart", type=Path, default=CHART, help="PNG chart path")
    parser.add_argument("--no-chart", action="store_true", help="do not draw the chart")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="measure nothing: rewrite the report and chart from the --json results",
    )
    return parser


def reparse(results: dict[str, Any]) -> None:
    """Recompute every run's figures from the wrk output kept in the results."""
    for server in results["servers"]:
        for key, run in server["runs"].items():
            if "wrk_output" in run:
                fresh = dataclasses.asdict(parse_wrk(run["wrk_output"]))
                fresh["wrk_output"] = fresh.pop("raw")
                server["runs"][key] = fresh


def publish(results: dict[str, Any], args: argparse.Namespace, python: Path) -> None:
    """Write the raw results, the chart and the markdown report."""
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    results["chart"] = not args.no_chart and write_chart(python, args.json, args.chart)
    previous = args.output.read_text() if args.output.exists() else ""
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(results, previous))
    print(f"wrote {args.output}", file=sys.stderr)


@dataclass(frozen=True, slots=True)
class Interpreter:
    """One Python the comparison runs on: its venv's python and the servers it can run."""

    version: str  # "3.13"
    python: Path
    specs: list[ServerSpec]


def interpreters(args: argparse.Namespace) -> tuple[list[Interpreter], list[str]]:
    """The Pythons of --python (each with its venv, created on first use), and skip notes."""
    if args.no_venv:
        pythons = [Path(sys.executable)]
    else:
        wanted = _split(args.python) or [sys.executable]
        pythons = [ensure_venv(find_python(w)) for w in wanted]
    chosen: list[Interpreter] = []
    notes: list[str] = []
    for python in pythons:
        version = python_version(python)
        compile_sources(python)
        if any(i.version == version for i in chosen):
            raise BenchError(f"Python {version} is named twice in --python")
        specs, skipped = select_specs(
            [*server_specs(python), bare_spec()], _split(args.servers), python
        )
        chosen.append(Interpreter(version, python, specs))
        notes += skipped
    return chosen, notes


PACKAGES: Final = (
    "prefork",
    "uvicorn",
    "granian",
    "gunicorn",
    "uvloop",
    "httptools",
    "fastapi",
    "starlette",
    "pydantic",
    "flask",
    "werkzeug",
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    duration = args.duration if args.duration is not None else (3.0 if args.quick else 10.0)
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    if duration < 1 or warmup < 0 or args.rounds < 1:
        parser.error("--duration must be >= 1, --warmup >= 0 and --rounds >= 1")
    if args.no_venv and args.python:
        parser.error("--python runs each version in its own venv; it excludes --no-venv")
    if args.render_only:
        previous_results: dict[str, Any] = json.loads(args.json.read_text())
        previous_results.pop("chart", None)
        normalize(previous_results)
        reparse(previous_results)
        publish(previous_results, args, Path(sys.executable) if args.no_venv else ensure_venv())
        return 0
    try:
        ensure_wrk()
        scenarios = select_scenarios(_split(args.scenarios))
        chosen, notes = interpreters(args)
    except (BenchError, subprocess.CalledProcessError) as exc:
        print(f"benchmarks: error: {exc}", file=sys.stderr)
        return 2
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="prefork-bench-") as tmp:
        workdir = Path(tmp)
        # Every round runs every server on every Python, so drift in the machine's
        # load spreads over all of them instead of favouring whoever ran first.
        rounds = [
            [
                measure_server(spec, i.python, scenarios, duration, warmup, workdir)
                for i in chosen
                for spec in i.specs
            ]
            for _ in range(args.rounds)
        ]
    servers = [merge_rounds(list(records)) for records in zip(*rounds, strict=True)]
    reference = chosen[0].python
    by_python = {i.version: package_versions(i.python, PACKAGES) for i in chosen}
    for i in chosen:  # which prefork was measured: "0.1.0, hot path compiled (mypyc)"
        by_python[i.version]["prefork"] += f", hot path {hot_path(i.python)}"
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(["python", "benchmarks/run.py", *(argv or sys.argv[1:])]),
        "machine": machine_summary(reference),
        "pythons": {i.version: machine_summary(i.python)["python"] for i in chosen},
        "versions_by_python": {
            version: {k: v for k, v in packages.items() if v != "-"}
            for version, packages in by_python.items()
        },
        "duration": duration,
        "warmup": warmup,
        "workers": WORKERS,
        "scenarios": [s.key for s in scenarios],
        "servers": servers,
        "notes": notes,
        "rounds": args.rounds,
        "elapsed_s": round(time.monotonic() - began, 1),
    }
    publish(results, args, reference)
    failed = [f"{s['key']} ({s['python']})" for s in servers if "error" in s]
    if failed:
        print(f"benchmarks: servers that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if any(s["key"].startswith("prefork") for s in servers if "error" in s) else 0


if __name__ == "__main__":
    raise SystemExit(main())
