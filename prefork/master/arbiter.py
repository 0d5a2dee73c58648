"""The master process: owns the listeners, forks and supervises the workers.

Theory of operation
-------------------
The master is one thread running one loop (`_loop`).  Signal handlers only
append the signal number to a queue; `signal.set_wakeup_fd` writes a byte to
a self-pipe so the `selectors` wait wakes up at once.  The selector also
watches each worker's channel and the control socket.  After every wake-up
the loop (1) dispatches queued signals to `handle_<name>`, (2) reaps exited
children with waitpid(WNOHANG), and (3) runs `_tick`, which applies every
time-based policy (kill deadlines, boot and heartbeat timeouts, memory
samples, reload progress) and then `_reconcile`, which forks or retires
workers until the number of serving workers equals the target.  Because no
other thread ever exists, fork() is always safe.  Each of those steps runs
behind an error boundary (`_guarded`, faults.py): the workers die with the
master, so a bug in one policy is logged and supervision goes on.
Control commands (commands.py) act through the same methods as signals.

Every policy that replaces a live worker (reload, --max-requests,
--max-memory) goes through `_replace`: fork the new one first, wait for its
`ready`, then drain the old one, so a request is never cut off and capacity
never drops.  Crashes are handled by `_reconcile` simply noticing a missing
worker; each slot backs off on its own repeated boot failures and is marked
`errored` after too many (slots.py).  When every slot is errored and no
worker serves, the master exits: 3 before the first `Ready`, 1 after.

A worker that fails to import the app (exit 4) or to boot (exit 3) during
the initial boot stops the master with the same status: a broken deploy
must fail loudly, not loop.  During a reload, the same failure aborts the
reload and the old workers keep serving (reload.py).

USR2 (and HUP with --preload) re-executes the master with the listeners
handed over (sockets.INHERIT_ENV); the new master, once ready, sends
SIGTERM to the old one, which drains its workers and exits.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
import os
import selectors
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, NoReturn

import psutil
import setproctitle

from prefork import __version__, balance, hooks, logs, preflight, systemd, tls
from prefork import config as config_mod
from prefork.channel import Channel, Message
from prefork.config import Config
from prefork.control import default_path
from prefork.control.server import ControlServer, ControlSocketInUse
from prefork.envfile import EnvFile
from prefork.errors import (
    EXIT_BOOT,
    EXIT_IMPORT,
    EXIT_OK,
    EXIT_RUNTIME,
    ConfigError,
    PreforkError,
)
from prefork.master import faults, health, slots
from prefork.master.commands import Commands
from prefork.master.endpoint import Endpoint
from prefork.master.output import LogRing, OutputPipe, RingHandler, WorkerOutput
from prefork.master.reload import ReloadRun, replacement_queue, result
from prefork.master.workers import WorkerHandle, WorkerState
from prefork.observe.metrics import MetricsTotals
from prefork.reloader import BACKEND_PREFIX, Watcher
from prefork.sockets import INHERIT_ENV, Listener, close_all, open_listeners

if TYPE_CHECKING:
    import ssl

    from prefork.loader import LoadedApp

log = logs.LOGGER

OLD_MASTER_ENV: Final = "PREFORK_OLD_MASTER"
_LOG_SETTINGS: Final = ("error_logfile", "log_level", "log_format", "log_config")
# Fast stop (INT/QUIT): workers close everything at once; this is how long
# they get before SIGKILL (a WSGI app busy on the loop thread cannot react
# until its current call returns).
FAST_STOP_GRACE: Final = 5.0
# The master's SIGKILL comes this long after the worker's own graceful
# deadline, so a worker that drains in time is never killed mid-shutdown.
KILL_SLACK: Final = 1.0
MAX_LOOP_WAIT: Final = 1.0

_HANDLED_SIGNALS: Final = (
    signal.SIGHUP,
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGCHLD,
)


def _child_failed(what: str) -> None:
    """In a forked child about to `os._exit`: log why, with the traceback, and flush.

    `os._exit` skips every flush, so without this the reason would be lost.
    (Should logging itself fail, the caller's `finally` still exits.)
    """
    log.exception("%s", what)
    for handler in log.handlers:
        handler.flush()


def run(config: Config, cli_values: dict[str, Any]) -> int:
    """Serve until stopped; returns the master's exit status."""
    return Arbiter(config, cli_values).run()


class Arbiter:
    def __init__(self, config: Config, cli_values: dict[str, Any]) -> None:
        self.config = config
        self.cli_values = cli_values
        self.argv = list(sys.argv[1:])
        self.start_cwd = os.getcwd()
        self.generation = 1
        # Generation numbers are never reused, even by a reload that failed,
        # so a number in the log or in `prefork status` names one attempt.
        self.last_generation = 1
        self.target = 1
        self.workers: dict[int, WorkerHandle] = {}  # pid -> live worker
        self.listeners: list[Listener] = []
        # Mapped before the first fork, so every worker shares it (balance.py).
        self.table = balance.ConnectionTable()
        self.loaded: LoadedApp | None = None
        self.tls: ssl.SSLContext | None = None  # built once per config (tls.py)
        self.hooks = hooks.MasterHooks(self)
        self.notifier = systemd.Notifier()
        self.selector = selectors.DefaultSelector()
        self.signals: deque[int] = deque()
        self.wake_r = self.wake_w = -1
        self.control: ControlServer | None = None
        self.watcher: Watcher | None = None  # --reload
        self.endpoint: Endpoint | None = None  # --metrics-bind
        self.metrics_totals = MetricsTotals()
        self.reload_counts = {"ok": 0, "failed": 0}
        self.ring = LogRing()  # recent lines, for `prefork logs`
        self.env_file = EnvFile()  # --env-file, applied to this process's environment
        self.output_pipes: dict[int, OutputPipe] = {}  # read fd -> worker stdout/stderr
        self.pidfile: str | None = None
        # master phase
        self.initial_ready = False
        self.stop_mode: str | None = None  # None, "graceful" or "fast"
        self.exit_status = EXIT_OK
        self.app_logged = False
        # (generation, traceback) last logged: each attempt shows it once, not per worker.
        self.last_boot_traceback: tuple[int, str] | None = None
        # policies
        self.slots = slots.SlotBook()  # restarts by reason, crash backoff, errored
        self.reload: ReloadRun | None = None
        self.reload_again = False
        self.last_reload: dict[str, Any] | None = None
        # Every reload or upgrade attempt is numbered, so a waiting
        # `prefork reload` knows which outcome answers it (commands.py).
        self.reload_attempts = 0
        self.last_reload_attempt = 0
        # A count set at runtime (scale, TTIN, TTOU) survives reloads, as in
        # PM2, until a reload brings a different `workers` setting.
        self.scaled_to: int | None = None
        self.commands = Commands(self)
        self.faults = faults.FaultBudget()
        self.upgrade_pid: int | None = None
        self.upgrade_reason = ""
        self.upgrade_started = 0.0
        self.old_master: int | None = None
        self.started_wall = time.time()

    # -- startup -------------------------------------------------------------

    def run(self) -> int:
        config = self.config
        logs.configure(config)
        logs.LOGGER.addHandler(RingHandler(self.ring, logs.formatter(config)))
        os.umask(config.umask)
        log.info("Starting prefork %s", __version__)
        for warning in config.file_warnings:
            log.warning("%s", warning)
        self.hooks("on_starting")
        old_master = os.environ.pop(OLD_MASTER_ENV, "")
        if old_master.isdigit() and int(old_master) == os.getppid():
            self.old_master = int(old_master)
        self.target, how = config.workers.resolve()
        self.env_file.load(config.env_file)  # before --preload imports the app
        self.tls = tls.server_context(config)
        if config.preload:
            from prefork.loader import load_app

            self.loaded = load_app(config)
        self.listeners = open_listeners(config)
        try:
            return self._serve(how)
        finally:
            self.hooks("on_exit")
            self._cleanup()

    def _serve(self, how: str) -> int:
        config = self.config
        for listener in self.listeners:
            origin = {
                "bound": "",
                "systemd": " (from systemd)",
                "inherited": " (inherited)",
                "fd": "",
            }[listener.origin]
            log.info("Listening at: %s%s", listener.url(self.tls is not None), origin)
        log.info("Workers: %d (%s)", self.target, how)
        log.info("Balancing: %s", balance.describe(config, self.listeners))
        if self.loaded is not None:
            self._log_application(self.loaded.declared, self.loaded.detected)
        self._write_pidfile()
        self._install_signals()
        self._open_control()
        if config.reload:
            self._start_watcher()
        if config.metrics_bind:
            self._open_endpoint(config.metrics_bind)
        name = f" [{config.name}]" if config.name else ""
        setproctitle.setproctitle(f"prefork: master{name}")
        self.hooks("when_ready")
        self._loop()
        return self.exit_status

    def _stdout_sink(self) -> int:
        """Where workers' stdout goes: the master's, or the error log (--capture-output)."""
        return logs.sink_fd() if self.config.capture_output else 1

    def _write_pidfile(self) -> None:
        path = self.config.pid
        if not path:
            return
        try:
            with open(path, "w", encoding="ascii") as fh:
                fh.write(f"{os.getpid()}\n")
        except OSError as exc:
            raise PreforkError(f"cannot write --pid file {path}: {exc.strerror}") from None
        self.pidfile = path

    def _install_signals(self) -> None:
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        self.selector.register(self.wake_r, selectors.EVENT_READ, self._drain_wakeups)
        for signum in _HANDLED_SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.signals.append(signum)  # nothing else: the loop does the work

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.wake_r, 4096):
                pass

    def _open_control(self) -> None:
        configured = self.config.control_socket
        path = configured or default_path(self.config.name)
        server = ControlServer(path, self.commands.handle, self.selector)
        try:
            server.open(private=configured is None, take_over=self.old_master is not None)
        except ControlSocketInUse as exc:
            in_use = str(exc)
        else:
            self.control = server
            log.debug("Control socket: %s", path)
            return
        # Not a security problem (same uid), and refusing would stop two
        # unnamed servers from running side by side; but never quiet.
        log.error(
            "No control socket for this master: %s; `prefork status` reaches that one. "
            "Give this master its own --name or --control-socket",
            in_use,
        )

    def _open_endpoint(self, address: str) -> None:
        from prefork.master import metrics

        try:
            self.endpoint = Endpoint.open(
                config_mod.split_host_port(address),
                self.selector,
                lambda: metrics.render(self),
                self._serving,
            )
        except OSError as exc:
            raise PreforkError(f"cannot open --metrics-bind {address}: {exc.strerror}") from None
        host, port = self.endpoint.address
        shown = f"[{host}]" if ":" in host else host
        log.info("Metrics at: http://%s:%d/metrics (and /healthz, /readyz)", shown, port)

    def _serving(self) -> bool:
        """For /readyz: a worker is ready and the master is not stopping."""
        return not self.stop_mode and any(
            w.state is WorkerState.READY for w in self.workers.values()
        )

    def _start_watcher(self) -> None:
        config = self.config
        dirs = config.reload_dirs or (config.chdir or self.start_cwd,)
        self.watcher = Watcher.start(dirs, config.reload_includes, config.reload_excludes)
        self.selector.register(self.watcher.fd, selectors.EVENT_READ, self._on_watcher)
        log.info("Watching for changes in %s (--reload: for development)", ", ".join(dirs))

    def _on_watcher(self) -> None:
        assert self.watcher is not None
        lines = self.watcher.read_lines()
        if lines is None:
            log.error("The --reload watcher exited; changes are no longer watched")
            self.selector.unregister(self.watcher.fd)
            self.watcher.stop()
            self.watcher = None
            return
        changed = []
        for line in lines:
            if line.startswith(BACKEND_PREFIX):
                log.debug("--reload watcher: %s", line.removeprefix(BACKEND_PREFIX))
            else:
                changed += line.split("\t")
        if changed:
            shown = ", ".join(self.watcher.describe(p) for p in changed[:3])
            more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
            log.info("Change detected in %s%s; reloading", shown, more)
            self.request_reload("file change")

    def _cleanup(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.endpoint is not None:
            self.endpoint.close()
        if self.control is not None:
            self.control.close()
        # A new master (USR2) inherited the listeners: their files are its now.
        close_all(self.listeners, unlink=self.upgrade_pid is None)
        self.listeners = []
        if self.pidfile:
            with contextlib.suppress(OSError):
                with open(self.pidfile, encoding="ascii") as fh:
                    mine = fh.read().strip() == str(os.getpid())
                if mine:
                    os.unlink(self.pidfile)
        if self.wake_w >= 0:
            signal.set_wakeup_fd(-1)

    # -- the loop ------------------------------------------------------------

    def _loop(self) -> None:
        self._guarded(lambda: self._reconcile(time.monotonic()))
        while not (self.stop_mode and not self.workers):
            timeout = self._next_wait()
            for key, _ in self.selector.select(timeout):
                self._guarded(key.data)
            while self.signals:
                self._guarded(functools.partial(self._dispatch, self.signals.popleft()))
            self._guarded(self._reap)
            self._guarded(lambda: self._tick(time.monotonic()))
        self.commands.stopped(self.exit_status)
        log.info("Shutting down: master (exit status %d)", self.exit_status)

    def _guarded(self, step: Callable[[], None]) -> None:
        """Run one step of the loop behind the error boundary (faults.py)."""
        try:
            step()
        except Exception:
            log.exception("Unexpected error in the master; the workers keep serving")
        else:
            return
        if self.faults.exhausted_by(time.monotonic()) and not self.stop_mode:
            log.error(
                "Stopping gracefully: %d unexpected errors within %gs",
                faults.MAX_FAULTS,
                faults.FAULT_WINDOW,
            )
            self.exit_status = EXIT_RUNTIME
            self.stop(graceful=True)

    def _next_wait(self) -> float:
        if self.signals:
            return 0.0
        now = time.monotonic()
        wait = MAX_LOOP_WAIT
        for handle in self.workers.values():
            if handle.kill_at is not None:
                wait = min(wait, handle.kill_at - now)
        respawn = self.slots.next_spawn(now)
        if respawn is not None:
            wait = min(wait, respawn - now)
        wait = min(wait, self.notifier.next_due(now))
        return max(0.0, wait)

    def _dispatch(self, signum: int) -> None:
        name = signal.Signals(signum).name
        handler: Callable[[], None] | None = getattr(self, "handle_" + name[3:].lower(), None)
        if signum != signal.SIGCHLD:
            log.info("Handling signal: %s", name[3:].lower())
        if handler is not None:
            handler()

    # -- signals -------------------------------------------------------------

    def handle_chld(self) -> None:
        pass  # reaping runs after every wake-up

    def handle_term(self) -> None:
        self.stop(graceful=True)

    def handle_int(self) -> None:
        if self.stop_mode == "fast":
            self.kill_all()
        else:
            self.stop(graceful=False)

    def handle_quit(self) -> None:
        self.stop(graceful=False)

    def handle_hup(self) -> None:
        self.request_reload("SIGHUP")

    def handle_usr1(self) -> None:
        try:
            logs.configure(self.config)
        except ConfigError as exc:  # --log-config changed on disk and broke
            log.error("Reopening logs: %s; prefork's own log setup stays in place", exc)  # noqa: TRY400 - one line, not a traceback
        for handle in self.workers.values():
            self._signal(handle, signal.SIGUSR1)

    def handle_usr2(self) -> None:
        self.upgrade("SIGUSR2")

    def handle_ttin(self) -> None:
        self.scale(self.target + 1)

    def handle_ttou(self) -> None:
        self.scale(self.target - 1)

    # -- spawning and messages -------------------------------------------------

    def _spawn(self, slot: int, generation: int) -> WorkerHandle:
        master_end, worker_end = Channel.pair()
        output = WorkerOutput.create()
        row = self.table.claim()
        if row is None:
            log.warning("Connection table full: worker %d will accept unbalanced", slot)
        # A signal sent to the new pid before the worker replaced the master's
        # handlers would run the master's handler in the child and be lost;
        # blocked, it stays pending until the worker unblocks it (worker/main.py).
        info = self.hooks.pre_fork(slot, generation)
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED_SIGNALS)
        pid = os.fork()
        if pid == 0:  # the worker; never returns
            self._in_child(worker_end, master_end, output, slot, generation, info, row)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        self.hooks.forked(info, pid)
        worker_end.close()
        output.in_master()
        source = f"worker {slot}"
        self._watch_output(
            OutputPipe(output.stdout_r, source, "stdout", self.ring, self._stdout_sink)
        )
        self._watch_output(OutputPipe(output.stderr_r, source, "stderr", self.ring, logs.sink_fd))
        handle = WorkerHandle(pid, slot, generation, master_end, row=row)
        with contextlib.suppress(psutil.Error):
            handle.process = psutil.Process(pid)
        self.workers[pid] = handle
        self.selector.register(
            master_end.sock, selectors.EVENT_READ, lambda: self._on_channel(handle)
        )
        log.info("Booting worker %d (pid: %d)", slot, pid)
        return handle

    def _watch_output(self, pipe: OutputPipe) -> None:
        self.output_pipes[pipe.fd] = pipe

        def on_readable() -> None:
            if not pipe.on_readable():  # the worker exited: its pipe is done
                self.selector.unregister(pipe.fd)
                del self.output_pipes[pipe.fd]
                pipe.close()

        self.selector.register(pipe.fd, selectors.EVENT_READ, on_readable)

    def _in_child(
        self,
        channel: Channel,
        master_end: Channel,
        output: WorkerOutput,
        slot: int,
        generation: int,
        info: hooks.WorkerInfo,
        row: int | None,
    ) -> NoReturn:
        try:
            stdout_fd = output.in_child()
            # Nothing of the master's bookkeeping may leak into a worker:
            # other workers' channel ends, the self-pipe, the control socket.
            # The epoll instance is shared with the master across fork, so it
            # is closed first and nothing is ever unregistered from it here
            # (that would remove the master's own registrations).
            self.selector.close()
            master_end.close()
            for other in self.workers.values():
                other.channel.close()
            for fd in self.output_pipes:
                os.close(fd)
            if self.endpoint is not None:
                self.endpoint.close_inherited()
            if self.watcher is not None:
                self.watcher.close_inherited()
            if self.control is not None:
                self.control.close_inherited()
            signal.set_wakeup_fd(-1)
            os.close(self.wake_r)
            os.close(self.wake_w)
            worker_hooks = self.hooks.post_fork(info)
            # Imported here, after fork: the worker's event loop, HTTP engine
            # and their dependencies never weigh on the master (RSS <= 20 MiB).
            from prefork.worker import main as worker_main

            worker_main.run(
                worker_main.WorkerSpec(
                    config=self.config,
                    listeners=self.listeners,
                    channel=channel,
                    slot=slot,
                    generation=generation,
                    master_pid=os.getppid(),
                    loaded=self.loaded,
                    stdout_fd=stdout_fd,
                    tls=self.tls,
                    hooks=worker_hooks,
                    gate=self._gate(row),
                )
            )
        except BaseException:
            _child_failed(f"Worker {slot} (pid {os.getpid()}) could not start")
        finally:
            os._exit(1)  # only reached if the worker shell itself could not start

    def _gate(self, row: int | None) -> balance.AcceptGate | None:
        if row is None or self.config.balance != "connections":
            return None
        return self.table.gate(row)

    def _on_channel(self, handle: WorkerHandle) -> None:
        messages, eof = handle.channel.receive()
        for message in messages:
            self._on_message(handle, message)
        if eof:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(handle.channel.sock)

    def _on_message(self, handle: WorkerHandle, message: Message) -> None:
        handle.last_seen = time.monotonic()
        kind = message.get("t")
        if kind == "hb":
            handle.counters = {
                k: int(message.get(k, 0))
                for k in ("requests", "inflight", "connections", "rejected", "rss", "websockets")
            }
            if "metrics" in message:
                self.metrics_totals.update(handle.pid, message["metrics"])
        elif kind == "booted":
            if not self.app_logged:
                self._log_application(
                    str(message.get("declared", message.get("interface"))),
                    bool(message.get("detected")),
                )
        elif kind == "ready":
            self._on_ready(handle)
        elif kind == "failed":
            handle.error = str(message.get("error", "unknown error"))
            handle.error_traceback = str(message.get("traceback") or "")
            status = message.get("status")
            handle.error_status = status if isinstance(status, int) else None
        elif kind == "retire" and handle.state is WorkerState.READY:
            self._on_retire(handle, message)

    def _on_retire(self, handle: WorkerHandle, message: Message) -> None:
        """The worker stopped taking new work (--max-requests, --max-memory)."""
        reason = str(message.get("reason", slots.CRASH))
        detail = str(message.get("detail", reason))
        if reason not in slots.REASONS:
            reason = slots.CRASH
        if message.get("now"):
            log.warning("%s: %s; ending it after its in-flight requests", handle.name, detail)
            self._drain(handle, graceful=True, reason=reason)
        elif handle.retire_reason is None:
            log.log(
                logging.WARNING if reason == slots.MEMORY else logging.INFO,
                "%s: %s; replacing it",
                handle.name,
                detail,
            )
            handle.retire_reason = reason

    def _log_application(self, declared: str, detected: bool) -> None:
        self.app_logged = True
        how = "detected" if detected else "configured"
        log.info("Application: %s (%s, %s)", self.config.app, declared, how)

    def _on_ready(self, handle: WorkerHandle) -> None:
        if handle.state is not WorkerState.BOOTING:
            return  # told to stop while it was booting
        handle.move(WorkerState.READY)
        log.debug("%s ready", handle.name)
        old = handle.replaces
        if old is not None:
            handle.replaces = None
            old.replaced_by = None
            if old.alive:
                log.info("%s is ready; draining worker %d (pid %d)", handle.name, old.slot, old.pid)
                self._drain(old, graceful=True, reason=old.retire_reason or slots.RELOAD)
            if self.reload is not None and handle.generation == self.reload.generation:
                self.reload.replaced += 1
        if not self.initial_ready:
            ready = sum(1 for w in self.workers.values() if w.state is WorkerState.READY)
            if ready >= self.target:
                self._announce_ready(ready)

    def _announce_ready(self, ready: int) -> None:
        self.initial_ready = True
        noun = "worker" if ready == 1 else "workers"
        log.info("Ready: %d %s serving", ready, noun)
        if self.old_master is not None:
            systemd.notify(f"MAINPID={os.getpid()}")
        systemd.notify(f"READY=1\n{systemd.status_message(f'{ready} {noun} serving')}")
        if self.old_master is not None:
            log.info("Upgrade complete: stopping the old master (pid %d)", self.old_master)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.old_master, signal.SIGTERM)
            self.old_master = None

    # -- reaping -------------------------------------------------------------

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.upgrade_pid:
                self._upgrade_exited(status)
            elif (handle := self.workers.get(pid)) is not None:
                self._worker_exited(handle, status)

    def _with_traceback(self, handle: WorkerHandle, what: str) -> str:
        """ "<worker> <what>", then the user's traceback behind it, once per generation.

        Every worker of a broken deploy fails the same way: one traceback is enough.
        """
        line = f"{handle.name} {what}"
        details = handle.error_traceback
        if not details or (handle.generation, details) == self.last_boot_traceback:
            return line
        self.last_boot_traceback = (handle.generation, details)
        return f"{line}\n{details}"

    def _worker_exited(self, handle: WorkerHandle, status: int) -> None:
        now = time.monotonic()
        messages, _ = handle.channel.receive()  # a `failed` sent just before exit
        for message in messages:
            self._on_message(handle, message)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(handle.channel.sock)
        handle.channel.close()
        del self.workers[handle.pid]
        self.metrics_totals.exited(handle.pid)
        self.hooks.child_exit(handle.pid)
        if handle.row is not None:
            self.table.release(handle.row)
        was = handle.state
        handle.move(WorkerState.EXITED)
        how = health.describe_exit(status, handle.killed_for)
        code = health.exit_code(status)
        old = handle.replaces
        if old is not None:
            old.replaced_by = None
            handle.replaces = None
            if old.alive:
                old.retiring = False

        if handle.exit_expected:
            text = "exited" if code == 0 else how
            if handle.end_reason is not None and not self.stop_mode:
                text += f" [{self._slot_summary(handle.slot)}]"
            log.info("%s %s", handle.name, text)
            return
        reason = handle.error or f"{handle.name} {how}"
        never_ready = was is WorkerState.BOOTING
        if not self.initial_ready and never_ready and code in (EXIT_BOOT, EXIT_IMPORT):
            log.error("%s", self._with_traceback(handle, f"failed to boot: {handle.error or how}"))
            log.error("Shutting down: a worker could not boot (exit status %d)", code)
            self.exit_status = code
            self.stop(graceful=False)
            return
        if never_ready:
            self.commands.worker_failed(reason)
        reload = self.reload
        if reload is not None and never_ready and handle.generation == reload.generation:
            # The new code failed, not the slot: nothing was restarted.
            log.error("%s", self._with_traceback(handle, f"failed to boot: {handle.error or how}"))
            self._reload_failed(reason)
            return
        # A worker the watchdog killed was ready; anything else unplanned is a crash.
        cause = handle.end_reason or slots.CRASH
        early = never_ready or (
            cause == slots.CRASH
            and handle.ready_at is not None
            and now - handle.ready_at < slots.EARLY_WINDOW
        )
        if old is not None and old.alive:
            # A replacement for --max-requests/--max-memory failed; the old
            # worker stays, and the replacement is tried again after a backoff.
            self.slots.boot_failed(handle.slot, now, reason)
            delay = slots.respawn_delay(self.slots[handle.slot].failures)
            old.retry_at = now + delay
            stays = f"worker {old.slot} (pid {old.pid}) stays, retried in {delay:.1f}s"
            line = f"failed to boot: {handle.error or how}; {stays}"
            log.error("%s", self._with_traceback(handle, line))
            return
        self.slots.replaced(handle.slot, cause)
        summary = self._slot_summary(handle.slot)
        if handle.error:
            log.error("%s failed to boot: %s [%s]", handle.name, handle.error, summary)
        else:
            log.error("%s %s [%s]", handle.name, how, summary)
        if not early:
            return  # served for a while: respawned at once
        delay = self.slots.boot_failed(handle.slot, now, handle.error or how)
        failures = self.slots[handle.slot].failures
        if math.isinf(delay):
            log.error(
                "Worker slot %d is errored: %d boot failures in a row (last: %s); "
                "not respawning it until a reload or a scale",
                handle.slot,
                failures,
                handle.error or how,
            )
        elif delay:
            log.warning(
                "Respawning worker %d in %.1fs (%d boot failures in a row)",
                handle.slot,
                delay,
                failures,
            )

    def _slot_summary(self, slot: int) -> str:
        return f"slot {slot}: {self.slots.summary(slot)}"

    # -- stopping ------------------------------------------------------------

    def _signal(self, handle: WorkerHandle, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(handle.pid, signum)

    def _drain(self, handle: WorkerHandle, graceful: bool, reason: str | None = None) -> None:
        """Ask one worker to stop: TERM drains, QUIT closes everything now.

        `reason` (a slots.REASONS value): why it is replaced, counted for its slot.
        """
        now = time.monotonic()
        handle.exit_expected = True
        if reason is not None and handle.end_reason is None and not self.stop_mode:
            # Counted now, as it is being replaced; the first reason is the true one.
            handle.end_reason = reason
            self.slots.replaced(handle.slot, reason)
        if handle.state in (WorkerState.BOOTING, WorkerState.READY):
            handle.move(WorkerState.DRAINING)
        if graceful:
            grace = self.config.graceful_timeout + KILL_SLACK
            # Before the signal, so it is waiting when the worker drains: open
            # WebSockets hear 1012 (reconnect, we keep serving) or 1001 (stopping).
            handle.channel.send({"t": "drain", "restart": self.stop_mode is None})
            self._signal(handle, signal.SIGTERM)
        else:
            grace = min(FAST_STOP_GRACE, self.config.graceful_timeout + KILL_SLACK)
            self._signal(handle, signal.SIGQUIT)
        if handle.kill_at is None or now + grace < handle.kill_at:
            handle.kill_at = now + grace
            handle.kill_why = f"still running {grace:g}s after being told to stop"

    def stop(self, graceful: bool) -> None:
        mode = "graceful" if graceful else "fast"
        if self.stop_mode in (mode, "fast"):
            return
        first = self.stop_mode is None
        self.stop_mode = mode
        if first:
            log.info("Stopping (%s)", mode)
            systemd.notify("STOPPING=1")
            self.reload = None
            # Stop accepting at the master's level now; workers hold their own
            # copies until they have drained.
            close_all(self.listeners, unlink=self.upgrade_pid is None)
            self.listeners = []
            if self.control is not None:
                self.control.stop_listening()
            self.commands.stopping()
        for handle in list(self.workers.values()):
            if graceful and handle.state is WorkerState.DRAINING:
                continue
            self._drain(handle, graceful)

    def kill_all(self) -> None:
        log.warning("Killing every worker now")
        for handle in self.workers.values():
            handle.exit_expected = True
            self._kill(handle, "a second SIGINT")

    def _kill(self, handle: WorkerHandle, why: str, signum: int = signal.SIGKILL) -> None:
        """Send a fatal signal, remembering why, so the exit is not blamed on the OOM killer."""
        handle.killed_for = why
        self._signal(handle, signum)

    # -- time-based policies ---------------------------------------------------

    def _tick(self, now: float) -> None:
        config = self.config
        if self.endpoint is not None:
            self.endpoint.sweep(now)
        booting = not self.initial_ready or self.reload is not None
        errored = any(record.errored for record in self.slots.records.values())
        healthy = not errored and not self.stop_mode
        self.notifier.tick(now, booting and healthy, self._snapshot)
        for handle in list(self.workers.values()):
            if handle.kill_at is not None and now >= handle.kill_at:
                log.warning("%s: %s; sending SIGKILL", handle.name, handle.kill_why)
                handle.kill_at = None
                self._kill(handle, handle.kill_why)
            elif (
                handle.state is WorkerState.BOOTING
                and not handle.exit_expected
                and handle.error is None
                and config.boot_timeout
                and now - handle.started > config.boot_timeout
            ):
                handle.error = f"not ready within --boot-timeout {config.boot_timeout:g}s"
                log.error("%s: %s; killing it", handle.name, handle.error)
                handle.end_reason = slots.TIMEOUT
                self._kill(handle, handle.error)
            elif (
                handle.state is WorkerState.READY
                and config.timeout
                and handle.aborted_at is None
                and now - handle.last_seen > config.timeout
            ):
                why = f"no heartbeat for {config.timeout:g}s"
                log.error("%s timed out (%s); sending SIGABRT", handle.name, why)
                handle.aborted_at = now
                handle.kill_at = now + health.ABORT_GRACE
                handle.kill_why = why
                handle.end_reason = slots.TIMEOUT
                self._kill(handle, why, signal.SIGABRT)
                # A stopped worker (SIGSTOP, a debugger) would only see the
                # SIGABRT, and dump its stacks, once continued.
                self._signal(handle, signal.SIGCONT)
        if self.stop_mode:
            return
        for handle in self.workers.values():
            if handle.ready_at is not None and now - handle.ready_at >= slots.EARLY_WINDOW:
                self.slots.stable(handle.slot)
        if self.reload is not None:
            self._reload_step(now)
        # A worker that stopped taking work (--max-requests, --max-memory) is
        # replaced at once, during a reload too: it serves nothing meanwhile.
        for handle in list(self.workers.values()):
            if (
                handle.retire_reason
                and handle.state is WorkerState.READY
                and not handle.retiring
                and now >= handle.retry_at
            ):
                self._replace(handle, self.generation, handle.retire_reason)
        self._reconcile(now)
        self.commands.tick()

    def _replace(self, old: WorkerHandle, generation: int, reason: str) -> WorkerHandle:
        """Fork a replacement for `old`; `old` drains once it is ready."""
        old.retiring = True
        new = self._spawn(old.slot, generation)
        new.replaces = old
        old.replaced_by = new
        log.info("Replacing %s (%s)", old.name.lower(), reason)
        return new

    def _reconcile(self, now: float) -> None:
        """Fork or retire workers until the serving count equals the target."""
        if self.stop_mode:
            return
        serving = [w for w in self.workers.values() if w.serving_capacity]
        missing = self.target - len(serving)
        if missing > 0:
            # The lowest free slots; one in backoff waits its turn, without
            # taking its place from a healthy slot.
            used = {w.slot for w in self.workers.values() if w.serving_capacity or w.retiring}
            free = (i for i in itertools.count() if i not in used)
            errored = 0
            for slot in itertools.islice(free, missing):
                if self.slots.may_spawn(slot, now):
                    self._spawn(slot, self.generation)
                elif self.slots[slot].errored:
                    errored += 1
            if errored == missing and not serving and not self.stop_mode:
                self._give_up()
        elif missing < 0:
            # Oldest generation first (during a reload that lowers the count,
            # the new code's workers stay), then booting workers before ready
            # ones, since they serve nothing yet, then oldest (gunicorn's order).
            surplus = sorted(
                serving,
                key=lambda w: (w.generation, w.state is WorkerState.READY, w.started),
            )
            for handle in surplus[:-missing]:
                log.info("Retiring %s (scaling down)", handle.name.lower())
                self._drain(handle, graceful=True, reason=slots.SCALE)

    def _give_up(self) -> None:
        """Every slot is errored and nothing serves: a crash loop no respawn will end."""
        before_ready = not self.initial_ready
        self.exit_status = EXIT_BOOT if before_ready else EXIT_RUNTIME
        when = "before any worker was ready" if before_ready else "after serving"
        log.error(
            "Shutting down: every worker slot is errored (%s; exit status %d)",
            when,
            self.exit_status,
        )
        self.stop(graceful=True)

    # -- scale, reload, upgrade -----------------------------------------------

    def scale(self, count: int) -> None:
        if count < 1:
            log.warning("Cannot scale below 1 worker")
            count = 1
        if count != self.target:
            log.info("Scaling: %d -> %d workers", self.target, count)
        old, self.target = self.target, count
        self.scaled_to = count
        if self.reload is not None:
            self.reload.old_target = count  # a failed reload must not undo it
        self.slots.clear_errors()
        self.hooks.nworkers_changed(count, old)

    def request_reload(self, reason: str) -> str:
        """Start a rolling reload (or queue one); returns what happened, for the caller."""
        if self.stop_mode:
            return "stopping; reload ignored"
        if self.reload is not None or self.upgrade_pid is not None:
            self.reload_again = True
            log.info("Reload already in progress; another one will follow it")
            return "queued after the reload in progress"
        self.reload_attempts += 1
        try:
            new_config = config_mod.load(self.cli_values)
            preflight.check(new_config, listeners=False)  # --bind changes are ignored
            configured, how = new_config.workers.resolve()
            # New workers inherit the environment at fork: apply the file now.
            self.env_file.load(new_config.env_file)
            new_tls = tls.server_context(new_config)
        except (ConfigError, OSError) as exc:
            self._record_reload(False, self.generation, f"config: {exc}", time.time())
            return f"failed: {exc}"
        if new_config.bind != self.config.bind:
            log.warning("Reload: --bind changes need a restart or an upgrade (USR2); ignored")
        if self.config.preload or new_config.preload:
            return self.upgrade(reason + ", --preload")
        target = configured
        if self.scaled_to is not None and new_config.workers == self.config.workers:
            target, how = self.scaled_to, f"set at runtime; --workers gives {configured}"
        if _log_settings_differ(new_config, self.config):
            try:
                logs.configure(new_config)
            except ConfigError as exc:
                logs.configure(self.config)
                self._record_reload(False, self.generation, f"config: {exc}", time.time())
                return f"failed: {exc}"
        systemd.notify(systemd.reloading_message("reloading"))
        self.slots.clear_errors()  # new code: errored slots may try again
        self.last_generation += 1
        generation = self.last_generation
        for handle in list(self.workers.values()):
            # Half-booted workers of the old generation (respawns, replacements
            # for --max-requests) are superseded; stop them, not replace them.
            if handle.state is WorkerState.BOOTING and handle.generation < generation:
                self._drain(handle, graceful=False)
                if handle.replaces is not None:
                    handle.replaces.retiring = False
                    handle.replaces.replaced_by = None
                    handle.replaces = None
        self.reload = ReloadRun(
            generation=generation,
            reason=reason,
            old_config=self.config,
            old_tls=self.tls,
            old_generation=self.generation,
            old_target=self.target,
            queue=replacement_queue(self.workers.values(), generation),
        )
        self.config = new_config
        self.tls = new_tls
        self.generation = generation
        old_target, self.target = self.target, target
        for warning in new_config.file_warnings:
            log.warning("%s", warning)
        self.hooks("on_reload")
        self.hooks.nworkers_changed(target, old_target)
        log.info(
            "Reloading (%s): generation %d, %d workers (%s), batch %d",
            reason,
            generation,
            target,
            how,
            new_config.reload_batch,
        )
        self._reload_step(time.monotonic())
        return "started"

    def _reload_step(self, now: float) -> None:
        run = self.reload
        assert run is not None
        booting = [
            w
            for w in self.workers.values()
            if w.replaces is not None and w.generation == run.generation
        ]
        while len(booting) < self.config.reload_batch and run.queue:
            old = run.queue.popleft()
            if old.state is not WorkerState.READY or old.retiring:
                continue  # died or retired meanwhile; _reconcile covers the count
            booting.append(
                self._replace(old, run.generation, f"reload, generation {run.generation}")
            )
        if booting or run.queue:
            return
        if any(
            w.state is WorkerState.BOOTING and w.generation == run.generation
            for w in self.workers.values()
        ):
            return  # extra workers for a larger count are still booting
        self.reload = None
        if run.old_config.workers != self.config.workers:
            self.scaled_to = None  # the configuration changed the count: it wins
        ready = sum(
            1
            for w in self.workers.values()
            if w.state is WorkerState.READY and w.generation == run.generation
        )
        detail = f"generation {run.generation}: {ready} workers ready"
        log.info("Reload complete: %s (%.1fs)", detail, now - run.started)
        self._record_reload(True, run.generation, detail, run.started_wall)
        self._after_reload()

    def _reload_failed(self, reason: str) -> None:
        run = self.reload
        assert run is not None
        self.reload = None
        for handle in list(self.workers.values()):
            if handle.generation == run.generation and handle.state is WorkerState.BOOTING:
                self._drain(handle, graceful=False)
                self._kill(handle, "the reload it belonged to failed")
                if handle.replaces is not None:
                    handle.replaces.retiring = False
                    handle.replaces.replaced_by = None
                    handle.replaces = None
        if _log_settings_differ(run.old_config, self.config):
            # Only an old --log-config file edited since can fail; the log then stays as is.
            with contextlib.suppress(ConfigError):
                logs.configure(run.old_config)
        self.config = run.old_config
        with contextlib.suppress(ConfigError):  # respawns get the old environment back
            self.env_file.load(run.old_config.env_file)
        self.tls = run.old_tls
        self.generation = run.old_generation
        self.target = run.old_target
        self._record_reload(False, run.generation, reason, run.started_wall)
        self._after_reload()

    def _record_reload(self, ok: bool, generation: int, detail: str, started: float) -> None:
        self.last_reload = result(ok, generation, detail, started)
        self.reload_counts["ok" if ok else "failed"] += 1
        self.last_reload_attempt = self.reload_attempts
        if ok:
            status = f"reloaded: {detail}"
            systemd.notify("READY=1\n" + systemd.status_message(status))
        else:
            log.error("Reload failed: %s", detail)
            status = f"reload failed: {detail}; previous generation still serving"
            systemd.notify("READY=1\n" + systemd.status_message(status))
        self.commands.reload_finished(self.reload_attempts, self.last_reload)

    def _after_reload(self) -> None:
        if self.reload_again and not self.stop_mode:
            self.reload_again = False
            self.request_reload("queued reload")

    def upgrade(self, reason: str) -> str:
        """Start a new master on the same listeners (USR2; HUP with --preload)."""
        if self.stop_mode:
            return "stopping; upgrade ignored"
        if self.upgrade_pid is not None:
            self.reload_again = True
            log.info("Upgrade already in progress; a reload will follow it")
            return "queued after the upgrade in progress"
        self.reload_attempts += 1
        fds = [listener.sock.fileno() for listener in self.listeners]
        env = dict(os.environ)
        env[INHERIT_ENV] = ",".join(map(str, fds))
        env[OLD_MASTER_ENV] = str(os.getpid())
        argv = [sys.executable, "-m", "prefork", *self.argv]
        systemd.notify(systemd.reloading_message("starting a new master"))
        pid = os.fork()
        if pid == 0:
            try:
                signal.set_wakeup_fd(-1)
                os.chdir(self.start_cwd)
                for fd in fds:
                    os.set_inheritable(fd, True)
                self.hooks("pre_exec")
                os.execve(sys.executable, argv, env)
            except BaseException:
                _child_failed(f"Upgrade: cannot start a new master ({sys.executable})")
            finally:
                os._exit(127)
        self.upgrade_pid = pid
        self.upgrade_reason = reason
        self.upgrade_started = time.time()
        log.info("Upgrading (%s): started a new master (pid %d)", reason, pid)
        return f"started new master (pid {pid})"

    def _upgrade_exited(self, status: int) -> None:
        pid = self.upgrade_pid
        self.upgrade_pid = None
        if self.stop_mode:
            return  # it took over (it told us to stop) and later exited itself
        detail = f"new master (pid {pid}) {health.describe_exit(status)}"
        self._record_reload(False, self.generation, detail, self.upgrade_started)
        self._after_reload()

    # -- control socket ---------------------------------------------------------

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        metric = self.config.memory_metric
        workers = []
        for handle in sorted(self.workers.values(), key=lambda w: (w.slot, w.started)):
            cpu = 0.0
            memory: int | None = handle.counters.get("rss", 0)
            if handle.process is not None:
                with contextlib.suppress(psutil.Error):
                    cpu = handle.process.cpu_percent()
                if metric != "rss":  # a page-table walk: only when asked
                    memory = health.memory_usage(handle.process, metric)
            workers.append(
                {
                    "slot": handle.slot,
                    "pid": handle.pid,
                    "generation": handle.generation,
                    "state": handle.state.value + (" (retiring)" if handle.retiring else ""),
                    "age": round(now - handle.started, 1),
                    "requests": handle.counters.get("requests", 0),
                    "inflight": handle.counters.get("inflight", 0),
                    "connections": self._open_connections(handle),
                    "websockets": handle.counters.get("websockets", 0),
                    "rss": handle.counters.get("rss", 0),
                    "memory": memory or 0,
                    "cpu": cpu,
                    **self.slots.status(handle.slot, now),
                }
            )
        live = {handle.slot for handle in self.workers.values()}
        # Slots with no live worker because of a crash loop still have a row.
        idle_slots = [
            {"slot": slot, **self.slots.status(slot, now)}
            for slot, record in sorted(self.slots.records.items())
            if slot not in live and (record.errored or record.not_before > now)
        ]
        return {
            "pid": os.getpid(),
            "name": self.config.name,
            "app": self.config.app,
            "version": __version__,
            "uptime": round(time.time() - self.started_wall, 1),
            "generation": self.generation,
            "target": self.target,
            "scaled": self.scaled_to is not None,
            "state": self._state_word(),
            "listeners": [listener.url(self.tls is not None) for listener in self.listeners],
            "balance": balance.mode(self.config, self.listeners),
            "reloading": self.reload is not None or self.upgrade_pid is not None,
            "last_reload": self.last_reload,
            "memory_metric": metric,
            "max_memory": self.config.max_memory,
            "workers": workers,
            "idle_slots": idle_slots,
        }

    def _snapshot(self) -> systemd.Snapshot:
        workers = self.workers.values()
        return systemd.Snapshot(
            state=self._state_word(),
            ready=sum(1 for w in workers if w.state is WorkerState.READY),
            target=self.target,
            requests=sum(w.counters.get("requests", 0) for w in workers),
            last_reload=self.last_reload,
        )

    def _open_connections(self, handle: WorkerHandle) -> int:
        """Live from the connection table while it accepts; else from its last heartbeat."""
        live = None if handle.row is None else self.table.open_connections(handle.row)
        return handle.counters.get("connections", 0) if live is None else live

    def _state_word(self) -> str:
        if self.stop_mode:
            return "stopping"
        if any(record.errored for record in self.slots.records.values()):
            return "errored"
        if self.reload is not None or self.upgrade_pid is not None:
            return "reloading"
        return "running" if self.initial_ready else "starting"


def _log_settings_differ(new: Config, old: Config) -> bool:
    """Whether going from `old` to `new` needs the log reconfigured."""
    changed = any(getattr(new, name) != getattr(old, name) for name in _LOG_SETTINGS)
    return changed or bool(new.log_config)  # the file itself may have changed
