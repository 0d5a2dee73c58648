"""The worker process shell: everything a worker does around the HTTP engine.

Theory of operation
-------------------
`run()` is called in the child right after `fork()` and never returns: it
ends with `os._exit`, so the master's atexit handlers and buffered state are
never run twice.  In order it:

1. resets the signals the master handles (so a signal arriving before the
   event loop is up has a sane effect: TERM/INT/QUIT end the worker, the
   job-control and USR signals are ignored), sets the process title, and
   arranges to be SIGKILLed if the master dies (PR_SET_PDEATHSIG; the master
   is single-threaded, so "the thread that forked us" is the master itself);
2. with --reuse-port, opens its own SO_REUSEPORT listeners, then drops
   privileges (--user/--group);
3. imports the app (unless the master preloaded it) and reports `booted`;
   an import error is reported as `failed` and the worker exits 4;
4. runs ASGI lifespan startup (BootError: `failed`, exit 3), starts the HTTP
   server on the inherited listeners and reports `ready`;
5. sends a heartbeat with its counters every second (a blocked event loop
   stops the heartbeat, which is what the master's --timeout detects); at
   its --max-requests-th request, or over --max-memory (worker/memory.py),
   it stops taking new work and asks the master to replace it (`retire`);
6. on SIGTERM drains (stop accepting, at once even while an inline app
   holds the loop; finish in-flight requests within --graceful-timeout,
   lifespan shutdown) and exits 0; on SIGQUIT/SIGINT
   closes everything at once and exits 0; on EOF from the master's channel
   (the master vanished) drains briefly and exits.
"""

from __future__ import annotations

import asyncio
import ctypes
import faulthandler
import gc
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any, Final, NoReturn

import setproctitle

from prefork import logs
from prefork.channel import (
    Booted,
    Channel,
    Counters,
    Failed,
    Heartbeat,
    Ready,
    Retire,
    RetireReason,
)
from prefork.config import Config
from prefork.errors import EXIT_BOOT, EXIT_IMPORT, EXIT_OK, EXIT_RUNTIME, AppImportError, BootError
from prefork.preflight import group_id, user_entry
from prefork.procfs import ProcFile, resident_bytes
from prefork.sockets import Listener, worker_sockets
from prefork.worker.memory import CHECK_INTERVAL, HARD_FACTOR, MemoryGuard

if TYPE_CHECKING:
    import ssl

    from prefork.balance import AcceptGate
    from prefork.hooks import WorkerHooks
    from prefork.http.server import HttpServer
    from prefork.loader import LoadedApp
    from prefork.worker.compose import WorkerServer

log = logs.LOGGER

HEARTBEAT_INTERVAL: Final = 1.0
# An orphaned worker (master gone without telling it) finishes what it can
# in this long; PDEATHSIG normally kills it first anyway.
ORPHAN_DRAIN: Final = 5.0
PR_SET_PDEATHSIG: Final = 1

# Signals the master reacts to; in a worker they must not keep the master's
# Python-level handlers (which would queue into the master's data structures).
_ENDING: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
_IGNORED: Final = (
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGWINCH,
)


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    config: Config
    listeners: Sequence[Listener]
    channel: Channel
    slot: int
    generation: int
    master_pid: int
    loaded: LoadedApp | None = None  # set with --preload
    # The original stdout, for `--access-logfile -`: fds 1 and 2 are pipes to
    # the master (prefork/master/output.py).
    stdout_fd: int = 1
    tls: ssl.SSLContext | None = None  # built by the master (tls.py)
    hooks: WorkerHooks | None = None  # server hooks (hooks.py)
    gate: AcceptGate | None = None  # this worker's row of the connection table (balance.py)
    # The master's signal mask from before it blocked its signals around fork().
    signal_mask: frozenset[int] = frozenset()


def run(spec: WorkerSpec) -> NoReturn:
    status = EXIT_RUNTIME
    try:
        status = _run(spec)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else EXIT_RUNTIME
    except BaseException:
        log.exception("Worker %d crashed", spec.slot)
    finally:
        if spec.hooks is not None:
            spec.hooks.worker_exit()
        for handler in log.handlers:
            handler.flush()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(status)


def _fail(spec: WorkerSpec, status: int, error: str, details: str = "") -> int:
    """Report a boot failure: `error` is one line, `details` a traceback (logged after it)."""
    message = Failed(type="failed", status=status, error=error, traceback=details)
    if not spec.channel.send(message):
        # The master cannot tell: say it here.
        log.error(
            "Worker %d failed to boot: %s%s", spec.slot, error, "\n" + details if details else ""
        )
    return status


def _set_pdeathsig(master_pid: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The master may have died between fork() and prctl(): then nobody will
    # ever send the signal, so check by hand.
    if os.getppid() != master_pid:
        os._exit(EXIT_RUNTIME)


def _drop_privileges(config: Config) -> None:
    if os.geteuid() != 0:
        return  # preflight allows --user/--group without root only when they name us
    if config.group:
        os.setgid(group_id(config.group))
    if config.user:
        entry = user_entry(config.user)
        gid = os.getgid() if config.group else entry.pw_gid
        os.initgroups(entry.pw_name, gid)
        os.setgid(gid)
        os.setuid(entry.pw_uid)


def _exit_now(signum: int, frame: object) -> None:
    # Until the event loop installs its handlers, being told to stop while
    # booting means exiting cleanly (SIGQUIT's default would dump core).
    os._exit(EXIT_OK)


def _prepare_process(spec: WorkerSpec) -> None:
    signal.set_wakeup_fd(-1)
    for signum in _ENDING:
        signal.signal(signum, _exit_now)
    for signum in _IGNORED:
        signal.signal(signum, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # The master blocked its signals around fork() (Arbiter._spawn); restoring
    # its mask from before delivers one that arrived meanwhile, to the
    # handlers above, whatever the master's list holds.
    signal.pthread_sigmask(signal.SIG_SETMASK, spec.signal_mask)
    name = f" [{spec.config.name}]" if spec.config.name else ""
    setproctitle.setproctitle(f"prefork: worker {spec.slot}{name}")
    logs.configure_worker(spec.slot, spec.config)
    _set_pdeathsig(spec.master_pid)
    # SIGABRT (heartbeat timeout) and crashes dump every thread's stack to stderr.
    faulthandler.enable(file=sys.stderr, all_threads=True)


def _run(spec: WorkerSpec) -> int:
    _prepare_process(spec)
    config = spec.config
    try:  # before dropping privileges: the port may be below 1024
        sockets = worker_sockets(spec.listeners, config.backlog)
    except OSError as exc:
        return _fail(spec, EXIT_BOOT, f"cannot open --reuse-port listener: {exc.strerror}")
    try:
        _drop_privileges(config)
    except (OSError, KeyError) as exc:
        return _fail(spec, EXIT_BOOT, f"cannot switch to --user/--group: {exc}")
    loaded = spec.loaded
    if loaded is None:
        from prefork.loader import load_app

        try:
            loaded = load_app(config)
        except AppImportError as exc:
            return _fail(spec, EXIT_IMPORT, str(exc), exc.details)
    if spec.hooks is not None:
        loaded = spec.hooks.post_worker_init(loaded)
    spec.channel.send(Booted(type="booted", declared=loaded.declared, detected=loaded.detected))
    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(_serve(spec, loaded, sockets, loop))
    finally:
        loop.close()


class _Worker:
    """The running worker: its server, lifespan and how it was asked to stop."""

    def __init__(self, spec: WorkerSpec, loop: asyncio.AbstractEventLoop) -> None:
        self.spec = spec
        self.loop = loop
        self.stop: asyncio.Future[str] = loop.create_future()
        self.server: WorkerServer | None = None
        limit = spec.config.max_requests
        if limit:
            # Each worker draws its own limit, so replacements are spread out.
            import random  # only here: 0.1 MiB a worker without --max-requests never needs

            limit += random.randint(0, spec.config.max_requests_jitter)
        self.max_requests = limit
        self.retiring = False
        self.statm = ProcFile("/proc/self/statm")
        self.memory: MemoryGuard | None = None
        # From the master's "drain" message: replaced (True) or stopped for good.
        self.restart = False

    def request_stop(self, how: str) -> None:
        if not self.stop.done():
            self.stop.set_result(how)
        elif how == "now" and self.server is not None:
            self.server.abort()  # a second, harder request while draining

    def fast_stop(self) -> None:  # SIGINT, SIGQUIT
        if self.spec.hooks is not None:
            self.spec.hooks.worker_int()
        self.request_stop("now")

    def on_channel(self) -> None:
        messages, eof = self.spec.channel.receive()
        for message in messages:
            if message["type"] == "drain":
                self.restart = message["restart"]
        if eof:
            self.loop.remove_reader(self.spec.channel.fileno())
            self.request_stop("orphan")

    def reopen_logs(self) -> None:
        # The error log is the master's to reopen: this worker writes to a pipe.
        if self.server is not None:
            self.server.access_log.reopen()

    def start_policies(self, server: WorkerServer) -> None:
        """Heartbeat, --max-requests and --max-memory, once the server accepts."""
        self.server = server
        config = self.spec.config
        if self.max_requests:
            server.state.request_limit = self.max_requests
            server.state.on_request_limit = self.request_limit_reached
        if config.max_memory:
            metric = config.memory_metric
            try:
                self.memory = MemoryGuard(config.max_memory, metric, self.over_memory)
            except OSError as exc:  # no smaps_rollup before Linux 4.14
                log.warning(
                    "Worker %d: cannot measure %s (%s); using rss", self.spec.slot, metric, exc
                )
                self.memory = MemoryGuard(config.max_memory, "rss", self.over_memory)
            self.check_memory()
        self.heartbeat()

    def retire(self, reason: RetireReason, detail: str, now: bool = False) -> None:
        """Stop taking new work and ask the master to replace this worker.

        Accepting stops and every keep-alive connection is answered with
        `Connection: close` from now on, so the siblings take the traffic
        while the replacement boots.  `now`: drain at once as well, without
        waiting for the replacement (the master is told, so it expects the exit).
        """
        server = self.server
        if server is None or self.stop.done():
            return
        if not self.retiring:
            self.retiring = True
            server.begin_drain()
        self.spec.channel.send(Retire(type="retire", reason=reason, detail=detail, now=now))
        if now:
            self.request_stop("drain")

    def request_limit_reached(self) -> None:
        self.retire("max-requests", f"served {self.max_requests} requests")

    def over_memory(self, metric: str, used: int, hard: bool) -> None:
        limit = self.spec.config.max_memory
        if hard:
            detail = f"{metric} {used / 2**20:.1f} MiB > {HARD_FACTOR:g} x --max-memory"
        else:
            detail = f"{metric} {used / 2**20:.1f} MiB > --max-memory {limit / 2**20:.1f} MiB"
        self.retire("memory", detail, now=hard)

    def check_memory(self) -> None:
        guard = self.memory
        if guard is None or self.stop.done():
            return
        guard.check(self.loop.time())
        self.loop.call_later(CHECK_INTERVAL, self.check_memory)

    def send_counters(self, server: WorkerServer) -> None:
        """One heartbeat message: the counters, and the metrics with --metrics-bind."""
        counters = server.counters
        message = Heartbeat(
            type="heartbeat",
            counters=Counters(
                requests=counters.requests,
                inflight=counters.inflight,
                connections=counters.connections,
                websockets=len(server.state.sessions),
                rss=resident_bytes(self.statm),
            ),
        )
        metrics = server.metrics
        if metrics is not None:
            message["metrics"] = metrics.snapshot()
        self.spec.channel.send(message)

    def heartbeat(self) -> None:
        server = self.server
        if server is None or self.stop.done():
            return
        self.send_counters(server)
        self.loop.call_later(HEARTBEAT_INTERVAL, self.heartbeat)


def _stop_accepting_at_once(signum: int, server: HttpServer) -> None:
    """On `signum`, close the listeners at once, even while an app blocks the loop.

    The loop's own handler (add_signal_handler) runs only once the loop gets
    control back, and an inline WSGI app may hold it for the whole graceful
    timeout: meanwhile new connections would wait in this worker's accept
    queue (its own, with --reuse-port) instead of going to another worker or
    being refused.  A Python-level handler runs at the next bytecode of
    whatever the main thread is doing, so it is chained in front of the
    loop's (which still schedules the drain).

    Closing a listener from there is what a callback may do at any time,
    except in the middle of the accept loop itself; if that is what the
    signal interrupted, the loop is not blocked and the drain closes the
    listeners a moment later.
    """
    from prefork.http import accept

    chained = signal.getsignal(signum)

    def handler(number: int, frame: FrameType | None) -> None:
        if not _inside(frame, accept.__file__):
            server.stop_accepting()
        if callable(chained):
            chained(number, frame)

    signal.signal(signum, handler)


def _inside(frame: FrameType | None, filename: str) -> bool:
    while frame is not None:
        if frame.f_code.co_filename == filename:
            return True
        frame = frame.f_back
    return False


def _install_websockets(config: Config, server: HttpServer) -> str | None:
    """Serve WebSockets on this ASGI worker; why not, if --ws cannot be honoured."""
    from prefork.worker.compose import install_websockets

    try:
        install_websockets(config, server.state)
    except ImportError as exc:  # websockets is a dependency, but may have been left out
        if config.ws != "auto":
            return f"--ws {config.ws}: cannot import it: {exc}"
        log.warning("WebSockets disabled: %s; Upgrade requests are served as HTTP", exc)
    return None


async def _serve(
    spec: WorkerSpec,
    loaded: LoadedApp,
    sockets: Sequence[Any],
    loop: asyncio.AbstractEventLoop,
) -> int:
    from prefork.worker.compose import WorkerServer

    config = spec.config
    worker = _Worker(spec, loop)
    loop.add_signal_handler(signal.SIGTERM, worker.request_stop, "drain")
    loop.add_signal_handler(signal.SIGQUIT, worker.fast_stop)
    loop.add_signal_handler(signal.SIGINT, worker.fast_stop)
    loop.add_signal_handler(signal.SIGUSR1, worker.reopen_logs)
    loop.add_reader(spec.channel.fileno(), worker.on_channel)

    lifespan = None
    state: dict[str, Any] = {}
    if loaded.interface == "asgi":
        from prefork.asgi.lifespan import Lifespan

        lifespan = Lifespan(loaded.app, config.lifespan, loop)
        try:
            await lifespan.startup()
        except BootError as exc:
            return _fail(spec, EXIT_BOOT, str(exc))
        state = lifespan.state
    if worker.stop.done():  # told to stop while booting
        if lifespan is not None:
            await lifespan.shutdown()
        return EXIT_OK

    try:  # opens the access log as --user: the master's checks cannot see everything
        server = WorkerServer(
            config,
            loaded,
            loop,
            state,
            stdout_fd=spec.stdout_fd,
            ssl_context=spec.tls,
            gate=spec.gate,
        )
        if loaded.interface == "asgi" and config.ws != "none":
            failure = _install_websockets(config, server)
            if failure:
                return _fail(spec, EXIT_BOOT, failure)
        await server.start(
            sockets, shared={lsn.sock for lsn in spec.listeners if not lsn.reserved_only}
        )
    except OSError as exc:
        return _fail(spec, EXIT_BOOT, f"cannot start serving: {exc}")
    for signum in _ENDING:
        _stop_accepting_at_once(signum, server)
    # Everything imported and built so far lives as long as the worker: keep
    # it out of the cyclic collector's way (fewer, cheaper full collections,
    # and pages shared with the master stay shared). Instagram's precedent.
    gc.freeze()
    spec.channel.send(Ready(type="ready"))
    worker.start_policies(server)

    how = await worker.stop
    if how == "now":
        server.abort()
    else:
        grace = (
            config.graceful_timeout
            if how == "drain"
            else min(ORPHAN_DRAIN, config.graceful_timeout)
        )
        deadline = loop.time() + grace
        server.begin_drain()
        # HTTP requests finish within the whole grace; WebSockets, which may
        # never end on their own, get --ws-shutdown-grace, then a close frame.
        drained = await server.wait_drained(min(config.ws_shutdown_grace, grace))
        if not drained:
            worker.on_channel()  # read the master's "drain" message, sent before the TERM
            server.close_sessions(worker.restart)
            drained = await server.wait_drained(max(deadline - loop.time(), 0.0))
        if not drained:
            log.warning("Worker %d: graceful timeout; closing remaining connections", spec.slot)
            server.abort()
    # The master folds this last count into its totals (metrics count every
    # request a worker served, not just those up to its last heartbeat).
    worker.send_counters(server)
    if lifespan is not None and how != "now":
        try:
            await asyncio.wait_for(lifespan.shutdown(), max(config.graceful_timeout, 1.0))
        except TimeoutError:
            log.warning("Worker %d: lifespan shutdown timed out", spec.slot)
    return EXIT_OK
