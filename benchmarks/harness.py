"""Machinery shared by run.py and reload.py: tools, servers, wrk, memory.

Theory of operation
-------------------
Every server under test is started the same way: a fresh free port on
127.0.0.1, its own session (so the whole process tree is one process group),
cwd at the repository root with PYTHONPATH pointing there, so that
`benchmarks.apps` imports identically for everyone.  Readiness is a TCP
connect plus an HTTP GET answered 200, polled with a bound; the time from
launch to that first answer is the startup time.  Stopping sends SIGTERM to
the process we launched, waits (bounded), then SIGKILLs its process group:
only what we started is ever signalled.

Peers (uvicorn, granian, gunicorn), the frameworks (FastAPI, Flask) and
matplotlib live in their own virtualenv, benchmarks/.venv (benchmarks/.venv-X.Y
for another Python, `run.py --python X.Y`), with prefork installed there
editable, so the test environment is never touched and every server runs on
the same interpreter, uvloop and httptools.  Packages that constraints.txt
pins (FastAPI, Flask, uvloop, httptools, ...) get the same pins as the tests.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import psutil

from prefork import compiled

ROOT: Final = Path(__file__).resolve().parent.parent
BENCH_DIR: Final = ROOT / "benchmarks"
VENV_DIR: Final = BENCH_DIR / ".venv"
HOST: Final = "127.0.0.1"
THIS_PYTHON: Final = f"{sys.version_info.major}.{sys.version_info.minor}"
WORKERS: Final = 2
# gunicorn's gthread worker: its documentation suggests 2-4 threads per core.
GTHREAD_THREADS: Final = 4
PEER_PACKAGES: Final = (
    "uvicorn[standard]",
    "granian",
    "gunicorn",
    "matplotlib",
    "fastapi",
    "flask",
)
CONSTRAINTS: Final = ROOT / "constraints.txt"
# What every server, framework and the chart needs, by import name.
VENV_MODULES: Final = (
    "uvicorn",
    "granian",
    "gunicorn",
    "matplotlib",
    "fastapi",
    "flask",
    "uvloop",
    "httptools",
    "prefork",
)
# Processes some servers start next to their workers; they serve nothing.
HELPER_MARKERS: Final = ("resource_tracker", "semaphore_tracker", "forkserver")


class BenchError(Exception):
    """A one-line reason the benchmark cannot go on (missing tool, server that never answered)."""


# -- tools --------------------------------------------------------------------


def ensure_command(command: str, packages: Sequence[str]) -> str:
    """The path of `command`, installing the Debian `packages` that provide it when we are root."""
    path = shutil.which(command)
    if path:
        return path
    names = " ".join(packages)
    if os.geteuid() != 0:
        raise BenchError(f"{command} is not installed; install it (e.g. `apt-get install {names}`)")
    print(f"{command} is missing: apt-get install -y {names}", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=False, env=env)
    subprocess.run(["apt-get", "install", "-y", *packages], check=False, env=env)
    path = shutil.which(command)
    if not path:
        raise BenchError(f"could not install {command} with apt-get; install it and retry")
    return path


def ensure_wrk() -> str:
    return ensure_command("wrk", ["wrk"])


def venv_python(venv: Path = VENV_DIR) -> Path:
    return venv / "bin" / "python"


def has_modules(python: Path, modules: Sequence[str]) -> bool:
    if not python.exists():
        return False
    probe = "; ".join(f"import {m}" for m in modules)
    result = subprocess.run(
        [str(python), "-W", "ignore", "-c", probe], capture_output=True, check=False
    )
    return result.returncode == 0


def compile_sources(python: Path) -> None:
    """Cache the bytecode of prefork and the apps for `python`, as an installed package has it.

    With PYTHONDONTWRITEBYTECODE in the environment and no cached bytecode,
    every server process compiles what it imports from this tree, and that
    leaves it 0.8-1.7 MiB larger (docs/profile.md, "Idle memory"): the
    memory figures would depend on who ran what before.
    """
    trees = ["prefork", "benchmarks", "examples"]
    excluded = r"\.venv"  # the peers' virtualenvs under benchmarks/: pip compiled those
    subprocess.run(
        [str(python), "-m", "compileall", "-q", "-x", excluded, *trees],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        check=True,
        capture_output=True,
    )


def python_version(python: Path) -> str:
    """`3.13` for an interpreter (major.minor)."""
    done = subprocess.run(
        [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def find_python(wanted: str) -> Path:
    """An interpreter from `--python`: a path, or a version found on PATH or in pyenv."""
    if "/" in wanted:
        path = Path(wanted)
        if not path.exists():
            raise BenchError(f"no interpreter at {wanted}")
        return path
    if not re.fullmatch(r"3\.\d+", wanted):
        raise BenchError(f"--python takes a version such as 3.13 or a path, not {wanted!r}")
    if wanted == THIS_PYTHON:
        return Path(sys.executable)
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(pyenv.glob(f"{wanted}.*/bin/python{wanted}"))
    if candidates:
        return candidates[-1]
    found = shutil.which(f"python{wanted}")
    # A pyenv shim exists for every installed version but runs only the selected ones.
    if found and "/shims/" not in found:
        return Path(found)
    raise BenchError(f"no Python {wanted} in {pyenv} or on PATH")


def venv_dir(interpreter: Path) -> Path:
    """benchmarks/.venv for the running interpreter's version, .venv-X.Y for any other."""
    version = python_version(interpreter)
    return VENV_DIR if version == THIS_PYTHON else BENCH_DIR / f".venv-{version}"


def ensure_venv(interpreter: Path | None = None) -> Path:
    """Create (or complete) the peers' virtualenv for `interpreter`; return its python."""
    interpreter = interpreter or Path(sys.executable)
    venv = venv_dir(interpreter)
    python = venv_python(venv)
    if (
        has_modules(python, VENV_MODULES)
        and gunicorn_uvicorn_worker(python)
        and (hot_path(python) == compiled.COMPILED or compiled.PURE_PYTHON_VARIABLE in os.environ)
    ):
        return python
    if not python.exists():
        print(f"creating {venv.relative_to(ROOT)}", file=sys.stderr)
        subprocess.run([str(interpreter), "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "-c", str(CONSTRAINTS)]
    subprocess.run([*pip, *PEER_PACKAGES], check=True)
    subprocess.run([*pip, "-e", str(ROOT)], check=True)
    if not gunicorn_uvicorn_worker(python):
        # uvicorn dropped uvicorn.workers in favour of the uvicorn-worker package.
        subprocess.run([*pip, "uvicorn-worker"], check=True)
    if not has_modules(python, VENV_MODULES):
        raise BenchError(f"{venv} is incomplete after pip install; remove it and retry")
    return python


def hot_path(python: Path) -> str:
    """The hot path prefork runs on `python` (prefork.compiled.MODE), or why none is known.

    An editable install built for older sources runs them as Python (or, made
    before setup.py compiled anything, cannot import the build): ensure_venv
    installs again then, so the benchmark measures what the README installs.
    """
    result = subprocess.run(
        [str(python), "-c", "from prefork import compiled; print(compiled.MODE)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "prefork is not importable"


def gunicorn_uvicorn_worker(python: Path) -> str | None:
    """The importable gunicorn worker class that runs uvicorn, if any."""
    for module, dotted in (
        ("uvicorn.workers", "uvicorn.workers.UvicornWorker"),
        ("uvicorn_worker", "uvicorn_worker.UvicornWorker"),
    ):
        if has_modules(python, [module]):
            return dotted
    return None


def package_versions(python: Path, names: Sequence[str]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, sys\n"
        "for n in sys.argv[1:]:\n"
        "    try: print(n, m.version(n))\n"
        "    except m.PackageNotFoundError: print(n, '-')\n"
    )
    out = subprocess.run(
        [str(python), "-c", code, *names], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# -- servers ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """How to launch one server; `argv(python, port, app)` builds its command line."""

    key: str  # unique, used by --servers: "prefork-wsgi", "gunicorn-sync", "bare"
    name: str
    interface: str  # "wsgi" or "asgi"; the bare ceiling says "raw"
    module: str  # must import in the server's python for the server to run
    argv: Callable[[Path, int, str], list[str]]
    note: str = ""
    is_prefork: bool = False
    reload_signal: int | None = signal.SIGHUP


def _bin(python: Path, tool: str) -> str:
    return str(python.parent / tool)


def server_specs(python: Path) -> list[ServerSpec]:
    """Every server of the comparison, prefork first within each interface."""
    worker_class = gunicorn_uvicorn_worker(python) or "uvicorn.workers.UvicornWorker"
    w = str(WORKERS)
    uvicorn_flags = ["--http", "httptools", "--loop", "uvloop", "--no-access-log"]
    return [
        ServerSpec(
            "prefork-wsgi",
            "prefork",
            "wsgi",
            "prefork",
            lambda py, port, app: [str(py), "-m", "prefork", app, "-w", w, "-b", f"{HOST}:{port}"],
            is_prefork=True,
        ),
        ServerSpec(
            "granian-wsgi",
            "granian",
            "wsgi",
            "granian",
            lambda py, port, app: [
                _bin(py, "granian"),
                "--interface",
                "wsgi",
                "--workers",
                w,
                "--host",
                HOST,
                "--port",
                str(port),
                "--log-level",
                "warning",
                app,
            ],
        ),
        ServerSpec(
            "gunicorn-sync",
            "gunicorn sync",
            "wsgi",
            "gunicorn",
            lambda py, port, app: [
                _bin(py, "gunicorn"),
                "-w",
                w,
                "-b",
                f"{HOST}:{port}",
                "--log-level",
                "warning",
                app,
            ],
            note="the sync worker closes every connection (no keep-alive by design)",
        ),
        ServerSpec(
            "gunicorn-gthread",
            "gunicorn gthread",
            "wsgi",
            "gunicorn",
            lambda py, port, app: [
                _bin(py, "gunicorn"),
                "-w",
                w,
                "-k",
                "gthread",
                "--threads",
                str(GTHREAD_THREADS),
                "-b",
                f"{HOST}:{port}",
                "--log-level",
                "warning",
                app,
            ],
            note=f"threaded worker, {GTHREAD_THREADS} threads each, keeps connections alive",
        ),
        ServerSpec(
            "uvicorn-wsgi",
            "uvicorn",
            "wsgi",
            "uvicorn",
            lambda py, port, app: [
                _bin(py, "uvicorn"),
                "--interface",
                "wsgi",
                "--workers",
                w,
                *uvicorn_flags,
                "--log-level",
                "warning",
                "--host",
                HOST,
                "--port",
                str(port),
                app,
            ],
            note="uvicorn runs WSGI through its thread-pool shim",
        ),
        ServerSpec(
            "prefork-asgi",
            "prefork",
            "asgi",
            "prefork",
            lambda py, port, app: [str(py), "-m", "prefork", app, "-w", w, "-b", f"{HOST}:{port}"],
            is_prefork=True,
        ),
        ServerSpec(
            "uvicorn-asgi",
            "uvicorn",
            "asgi",
            "uvicorn",
            lambda py, port, app: [
                _bin(py, "uvicorn"),
                "--workers",
                w,
                *uvicorn_flags,
                "--log-level",
                "warning",
                "--host",
                HOST,
                "--port",
                str(port),
                app,
            ],
        ),
        ServerSpec(
            "granian-asgi",
            "granian",
            "asgi",
            "granian",
            lambda py, port, app: [
                _bin(py, "granian"),
                "--interface",
                "asgi",
                "--loop",
                "uvloop",
                "--workers",
                w,
                "--host",
                HOST,
                "--port",
                str(port),
                "--log-level",
                "warning",
                app,
            ],
        ),
        ServerSpec(
            "gunicorn-uvicorn",
            "gunicorn+uvicorn",
            "asgi",
            "gunicorn",
            lambda py, port, app: [
                _bin(py, "gunicorn"),
                "-w",
                w,
                "-k",
                worker_class,
                "-b",
                f"{HOST}:{port}",
                "--log-level",
                "warning",
                app,
            ],
            note=f"worker class {worker_class}",
        ),
    ]


def bare_spec() -> ServerSpec:
    return ServerSpec(
        "bare",
        "bare uvloop",
        "raw",
        "uvloop",
        lambda py, port, app: [
            str(py),
            str(BENCH_DIR / "bare.py"),
            "--port",
            str(port),
            "--workers",
            str(WORKERS),
            "--import",
            app.partition(":")[0],
        ],
        note="benchmarks/bare.py: fixed response, no HTTP parsing, no app call",
        reload_signal=None,
    )


@dataclass
class Running:
    spec: ServerSpec
    proc: subprocess.Popen[bytes]
    port: int
    startup_seconds: float
    log_path: Path
    control: Path | None = None  # prefork's control socket

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def last_log_line(self) -> str:
        """The server's last non-blank output line: usually the reason it failed."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no output)"
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[-1] if lines else "(no output)"


def http_get(port: int, path: str, timeout: float = 2.0) -> int | None:
    """Status code of one GET on a fresh connection, or None if nothing answered."""
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n"
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(request.encode())
            head = b""
            while b"\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    return None
                head += chunk
    except OSError:
        return None
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return int(match[1]) if match else None


def start(
    spec: ServerSpec,
    python: Path,
    app: str,
    log_dir: Path,
    probe_path: str = "/plaintext",
    timeout: float = 60.0,
) -> Running:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env.pop("WEB_CONCURRENCY", None)  # every server must use the -w we pass
    log_path = log_dir / f"{spec.key}.log"
    control = None
    if spec.is_prefork:
        # Its own control socket, not the per-user default another master may hold.
        control = log_dir / f"{spec.key}.ctl"
        env["PREFORK_CONTROL_SOCKET"] = str(control)
    with open(log_path, "wb") as log:
        began = time.monotonic()
        proc = subprocess.Popen(
            spec.argv(python, port, app),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Running(spec, proc, port, 0.0, log_path, control)
    deadline = began + timeout
    try:
        while True:
            if http_get(port, probe_path, timeout=1.0) == 200:
                running.startup_seconds = time.monotonic() - began
                return running
            if proc.poll() is not None:
                raise BenchError(
                    f"{spec.key} exited with {proc.returncode} before answering: "
                    f"{running.last_log_line()}"
                )
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{spec.key} did not answer within {timeout:.0f}s: {running.last_log_line()}"
                )
            time.sleep(0.005)  # polling a port: the server offers no readiness signal we share
    except BaseException:
        stop(running)
        raise


def settle(running: Running, path: str = "/plaintext", requests: int = 32) -> None:
    """Open fresh connections until each worker has most likely booted and answered.

    A multi-worker server answers its first request as soon as one worker is up;
    the others may still be importing.  Requests on fresh connections are spread
    by the kernel, so after a few dozen every worker has been through accept.
    """
    for _ in range(requests):
        http_get(running.port, path)
    deadline = time.monotonic() + 10.0
    while len(worker_processes(running.proc.pid)) < WORKERS and time.monotonic() < deadline:
        time.sleep(0.05)


def worker_requests(running: Running) -> dict[int, int]:
    """Requests served so far by each prefork worker (pid -> count); {} for the peers.

    The counts come from the workers' heartbeats, so they lag by up to a second.
    """
    if running.control is None:
        return {}
    from prefork.control.client import request
    from prefork.errors import ControlError

    try:
        status = request(str(running.control), {"cmd": "status"})
    except ControlError:
        return {}
    return {w["pid"]: w["requests"] for w in status.get("workers", [])}


def settled_requests(running: Running, quiet: float = 1.2, timeout: float = 5.0) -> dict[int, int]:
    """`worker_requests` once no count changed for `quiet` s: every heartbeat caught up.

    Taken after a warm-up, so that the requests of its last second are not
    counted in the measured run.
    """
    counts = worker_requests(running)
    changed = time.monotonic()
    deadline = changed + timeout
    while counts and time.monotonic() < deadline:
        time.sleep(0.2)  # heartbeats come once a second; nothing signals them
        latest = worker_requests(running)
        if latest != counts:
            counts, changed = latest, time.monotonic()
        elif time.monotonic() - changed >= quiet:
            break
    return counts


def requests_per_worker(running: Running, before: dict[int, int], served: int) -> list[int]:
    """Each worker's requests since `before`, once they account for the `served` ones.

    Workers count a request when its head arrives, so together they count at
    least what wrk saw answered; waiting for that absorbs the heartbeats' lag.
    """
    deadline = time.monotonic() + 5.0
    while True:
        after = worker_requests(running)
        counts = sorted((n - before.get(pid, 0) for pid, n in after.items()), reverse=True)
        if sum(counts) >= served or time.monotonic() > deadline:
            return counts
        time.sleep(0.1)  # the next heartbeat is at most a second away


def stop(running: Running, timeout: float = 15.0) -> None:
    """SIGTERM our master, then SIGKILL its process group; never anything else."""
    proc = running.proc
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


@contextlib.contextmanager
def serving(
    spec: ServerSpec, python: Path, app: str, log_dir: Path, probe_path: str = "/plaintext"
) -> Iterator[Running]:
    running = start(spec, python, app, log_dir, probe_path)
    try:
        yield running
    finally:
        stop(running)


# -- memory -------------------------------------------------------------------


def _is_helper(proc: psutil.Process) -> bool:
    try:
        cmdline = " ".join(proc.cmdline())
    except psutil.Error:
        return True
    return any(marker in cmdline for marker in HELPER_MARKERS)


def worker_processes(pid: int) -> list[psutil.Process]:
    """Descendants of `pid` that serve requests (helpers such as resource_tracker excluded)."""
    try:
        descendants = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in descendants if not _is_helper(p)]


@dataclass(frozen=True, slots=True)
class Memory:
    master_rss: int
    worker_rss: tuple[int, ...]
    tree_rss: int  # master, workers and helpers
    # Pages only that worker maps: what one more worker costs.  RSS also counts
    # the pages a forked worker shares with its master and siblings.
    worker_uss: tuple[int, ...] = ()

    @property
    def worker_max(self) -> int:
        return max(self.worker_rss, default=0)


def memory(pid: int) -> Memory:
    try:
        master = psutil.Process(pid)
        master_rss = master.memory_info().rss
        descendants = master.children(recursive=True)
    except psutil.NoSuchProcess:
        return Memory(0, (), 0)
    workers: list[int] = []
    uss: list[int] = []
    total = master_rss
    for proc in descendants:
        try:
            rss = proc.memory_info().rss
            unique = proc.memory_full_info().uss if not _is_helper(proc) else 0
        except psutil.NoSuchProcess:
            continue
        total += rss
        if not _is_helper(proc):
            workers.append(rss)
            uss.append(unique)
    return Memory(master_rss, tuple(sorted(workers)), total, tuple(sorted(uss)))


# -- wrk ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    connect_errors: int = 0
    read_errors: int = 0
    write_errors: int = 0
    timeouts: int = 0
    non_2xx: int = 0
    raw: str = field(default="", repr=False)

    @property
    def socket_errors(self) -> int:
        return self.connect_errors + self.read_errors + self.write_errors + self.timeouts

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non_2xx


_UNITS_MS: Final = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _UNITS_MS[match[2]]


def parse_wrk(text: str) -> WrkResult:
    """Parse `wrk --latency` output; raises ValueError if the summary is missing."""
    summary = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not summary or not rps:
        raise ValueError("wrk printed no summary:\n" + text.strip())
    # wrk pads units to two characters ("1.24s "), hence the trailing \s*.
    percentiles = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)\s*$", text, re.MULTILINE))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    connect, read, write, timeout = (int(g) for g in errors.groups()) if errors else (0,) * 4
    return WrkResult(
        requests=int(summary[1]),
        seconds=_duration_ms(summary[2] + summary[3]) / 1000.0,
        rps=float(rps[1]),
        p50_ms=_duration_ms(percentiles["50"]) if "50" in percentiles else None,
        p99_ms=_duration_ms(percentiles["99"]) if "99" in percentiles else None,
        connect_errors=connect,
        read_errors=read,
        write_errors=write,
        timeouts=timeout,
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        raw=text,
    )


def wrk_command(
    url: str,
    duration: float,
    connections: int = 64,
    headers: Sequence[str] = (),
    script: Path | None = None,
) -> list[str]:
    argv = [
        shutil.which("wrk") or "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--latency",
    ]
    for header in headers:
        argv += ["-H", header]
    if script is not None:
        argv += ["-s", str(script)]
    return [*argv, url]


def run_wrk(
    url: str,
    duration: float,
    connections: int = 64,
    headers: Sequence[str] = (),
    script: Path | None = None,
) -> WrkResult:
    argv = wrk_command(url, duration, connections, headers, script)
    # wrk stops itself after -d; the bound only catches a wedged wrk.
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30, check=False)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    return parse_wrk(done.stdout)


def post_script(directory: Path, size: int) -> Path:
    """A wrk Lua script POSTing `size` bytes (wrk adds Content-Length itself)."""
    path = directory / f"post-{size}.lua"
    path.write_text(
        'wrk.method = "POST"\n'
        f'wrk.body = string.rep("x", {size})\n'
        'wrk.headers["Content-Type"] = "application/octet-stream"\n'
    )
    return path


def machine_summary(python: Path) -> dict[str, str]:
    version = subprocess.run(
        [str(python), "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wrk_version = subprocess.run(
        [shutil.which("wrk") or "wrk", "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    return {
        "nproc": str(os.cpu_count()),
        "usable_cpus": str(len(os.sched_getaffinity(0))),
        "cpu": cpu or "unknown",
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "kernel": os.uname().release,
        "python": version,
        "wrk": " ".join(wrk_version[0].split()[:2]) if wrk_version else "wrk",
    }
