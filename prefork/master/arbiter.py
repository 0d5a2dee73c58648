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

The arbiter keeps the loop, the worker table and what acts on single
workers (spawn, drain, kill, reap, replace); the policies that span many
workers live apart and act through those methods: rolling reloads
(reload.py), the USR2 upgrade (upgrade.py), control commands (commands.py),
what a worker's exit means (exits.py), the watchdog (health.py), and what
the master reports about itself (status.py, metrics.py).

Every policy that replaces a live worker (reload, --max-requests,
--max-memory) goes through `replace`: fork the new one first, wait for its
`ready`, then drain the old one, so a request is never cut off and capacity
never drops.  Crashes are handled by `_reconcile` simply noticing a missing
worker; each slot backs off on its own repeated boot failures and is marked
`errored` after too many (exits.py, slots.py).  When every slot is errored and no
worker serves, the master exits: 3 before the first `Ready`, 1 after.

A worker that fails to import the app (exit 4) or to boot (exit 3) during
the initial boot stops the master with the same status: a broken deploy
must fail loudly, not loop.  During a reload, the same failure aborts the
reload and the old workers keep serving (reload.py).

USR2 (and HUP with --preload) re-executes the master with the listeners
handed over; the new master, once ready, sends SIGTERM to the old one,
which drains its workers and exits (upgrade.py).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import gc
import itertools
import logging
import os
import selectors
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, NoReturn

import setproctitle

from prefork import __version__, balance, compiled, hooks, logs, systemd, tls
from prefork import config as config_mod
from prefork.channel import Channel, Drain, Message, Retire
from prefork.config import Config
from prefork.control import default_path
from prefork.control.server import ControlServer
from prefork.envfile import EnvFile
from prefork.errors import (
    EXIT_BOOT,
    EXIT_OK,
    EXIT_RUNTIME,
    ConfigError,
    ControlSocketInUse,
    PreforkError,
)
from prefork.master import faults, health, slots
from prefork.master import status as status_mod
from prefork.master.commands import Commands
from prefork.master.endpoint import Endpoint
from prefork.master.exits import Exits
from prefork.master.output import LogRing, OutputPipe, RingHandler, WorkerOutput
from prefork.master.reload import Reloads
from prefork.master.upgrade import Upgrade, old_master_from_environment
from prefork.master.workers import WorkerHandle, WorkerState
from prefork.observe.metrics import MetricsTotals
from prefork.reloader import BACKEND_PREFIX, Watcher
from prefork.sockets import Listener, close_all, open_listeners

if TYPE_CHECKING:
    import ssl

    from prefork.loader import LoadedApp

log = logs.LOGGER

# Fast stop (INT/QUIT): workers close everything at once; this is how long
# they get before SIGKILL (a WSGI app busy on the loop thread cannot react
# until its current call returns).
FAST_STOP_GRACE: Final = 5.0
# The master's SIGKILL comes this long after the worker's own graceful
# deadline, so a worker that drains in time is never killed mid-shutdown.
KILL_SLACK: Final = 1.0
MAX_LOOP_WAIT: Final = 1.0


class StopMode(enum.Enum):
    """How the master stops: TERM lets workers drain, INT/QUIT close everything now."""

    GRACEFUL = "graceful"
    FAST = "fast"


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


def run(config: Config, cli_values: dict[str, Any]) -> int:
    """Serve until stopped; returns the master's exit status."""
    return Arbiter(config, cli_values).run()


class Arbiter:
    """The master: owns the listeners and the worker table, runs the loop.

    Everything that happens in the master happens in `_loop`'s thread, on a
    wake-up: a signal, a message on a worker's channel, a control or metrics
    client, a deadline.  Policies that span workers are delegated (`reloads`,
    `upgrade`, `commands`) and call back into `spawn`-level methods here.
    """

    def __init__(self, config: Config, cli_values: dict[str, Any]) -> None:
        self.config = config
        self.cli_values = cli_values
        self.argv = list(sys.argv[1:])
        self.start_cwd = os.getcwd()
        self.generation = 1  # the generation new workers get
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
        self.ring = LogRing()  # recent lines, for `prefork logs`
        self.env_file = EnvFile()  # --env-file, applied to this process's environment
        self.output_pipes: dict[int, OutputPipe] = {}  # read fd -> worker stdout/stderr
        self.pidfile: str | None = None
        # master phase
        self.initial_ready = False
        self.stop_mode: StopMode | None = None
        self.exit_status = EXIT_OK
        self.app_logged = False
        # policies
        self.slots = slots.SlotBook()  # restarts by reason, crash backoff, errored
        # A count set at runtime (scale, TTIN, TTOU) survives reloads, as in
        # PM2, until a reload brings a different `workers` setting.
        self.scaled_to: int | None = None
        self.commands = Commands(self)
        self.reloads = Reloads(self)
        self.upgrade = Upgrade(self)
        self.exits = Exits(self)
        self.faults = faults.FaultBudget()
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
        self.upgrade.old_master = old_master_from_environment()
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
        log.info("Hot path: %s", compiled.MODE)
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
            server.open(private=configured is None, take_over=self.upgrade.old_master is not None)
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
            self.reloads.request("file change")

    def _cleanup(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.endpoint is not None:
            self.endpoint.close()
        if self.control is not None:
            self.control.close()
        # A new master (USR2) inherited the listeners: their files are its now.
        close_all(self.listeners, unlink=self.upgrade.pid is None)
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
        if self.stop_mode is StopMode.FAST:
            self.kill_all()
        else:
            self.stop(graceful=False)

    def handle_quit(self) -> None:
        self.stop(graceful=False)

    def handle_hup(self) -> None:
        self.reloads.request("SIGHUP")

    def handle_usr1(self) -> None:
        try:
            logs.configure(self.config)
        except ConfigError as exc:  # --log-config changed on disk and broke
            log.error("Reopening logs: %s; prefork's own log setup stays in place", exc)  # noqa: TRY400 - one line, not a traceback
        for handle in self.workers.values():
            self.send_signal(handle, signal.SIGUSR1)

    def handle_usr2(self) -> None:
        self.upgrade.start("SIGUSR2")

    def handle_ttin(self) -> None:
        self.scale(self.target + 1)

    def handle_ttou(self) -> None:
        self.scale(self.target - 1)

    # -- spawning and messages -------------------------------------------------

    def new_generation(self) -> int:
        """A generation number never used before (for a reload about to start)."""
        self.last_generation += 1
        return self.last_generation

    def _spawn(self, slot: int, generation: int) -> WorkerHandle:
        master_end, worker_end = Channel.pair()
        output = WorkerOutput.create()
        row = self.table.claim()
        if row is None:
            log.warning("Connection table full: worker %d will accept unbalanced", slot)
        # A signal sent to the new pid before the worker replaced the master's
        # handlers would run the master's handler in the child and be lost;
        # blocked, it stays pending until the worker, its handlers in place,
        # restores the mask from before the fork (worker/main.py).
        info = self.hooks.pre_fork(slot, generation)
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED_SIGNALS)
        # The worker inherits the master's objects frozen: its cyclic
        # collector never writes to their headers, so their pages stay shared
        # (0.6 MiB less USS per idle worker, docs/profile.md; the precedent is
        # the gc module's own advice for fork without exec).  The master
        # unfreezes at once: its own garbage must stay collectable.
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # the worker; never returns
            self._in_child(worker_end, master_end, output, slot, generation, info, row, old_mask)
        gc.unfreeze()
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
        signal_mask: set[int | signal.Signals],
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
                    signal_mask=frozenset(signal_mask),
                )
            )
        except BaseException:
            faults.child_failed(f"Worker {slot} (pid {os.getpid()}) could not start")
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
        if message["type"] == "heartbeat":
            handle.counters = message["counters"]
            if "metrics" in message:
                self.metrics_totals.update(handle.pid, message["metrics"])
        elif message["type"] == "booted":
            if not self.app_logged:
                self._log_application(message["declared"], message["detected"])
        elif message["type"] == "ready":
            self._on_ready(handle)
        elif message["type"] == "failed":
            handle.error = message["error"]
            handle.error_traceback = message["traceback"]
        elif message["type"] == "retire" and handle.state is WorkerState.READY:
            self._on_retire(handle, message)

    def _on_retire(self, handle: WorkerHandle, message: Retire) -> None:
        """The worker stopped taking new work (--max-requests, --max-memory)."""
        reason, detail = message["reason"], message["detail"]
        if message["now"]:
            log.warning("%s: %s; ending it after its in-flight requests", handle.name, detail)
            self.drain(handle, graceful=True, reason=reason)
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
        old = handle.detach(predecessor_serves_on=False)
        if old is not None and old.alive:
            log.info("%s is ready; draining worker %d (pid %d)", handle.name, old.slot, old.pid)
            self.drain(old, graceful=True, reason=old.retire_reason or slots.RELOAD)
        if not self.initial_ready:
            ready = sum(1 for w in self.workers.values() if w.state is WorkerState.READY)
            if ready >= self.target:
                self._announce_ready(ready)

    def _announce_ready(self, ready: int) -> None:
        self.initial_ready = True
        noun = "worker" if ready == 1 else "workers"
        log.info("Ready: %d %s serving", ready, noun)
        self.upgrade.claim_main_pid()
        systemd.notify(f"READY=1\n{systemd.status_message(f'{ready} {noun} serving')}")
        self.upgrade.take_over()

    # -- reaping -------------------------------------------------------------

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.upgrade.pid:
                self.upgrade.exited(status)
            elif (handle := self.workers.get(pid)) is not None:
                self._worker_exited(handle, status)

    def _worker_exited(self, handle: WorkerHandle, status: int) -> None:
        """Take a reaped worker out of the table; exits.py decides what its exit means."""
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
        self.exits.judge(handle, status, was)

    # -- stopping ------------------------------------------------------------

    def send_signal(self, handle: WorkerHandle, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(handle.pid, signum)

    def drain(
        self, handle: WorkerHandle, graceful: bool, reason: slots.Reason | None = None
    ) -> None:
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
            handle.channel.send(Drain(type="drain", restart=self.stop_mode is None))
            self.send_signal(handle, signal.SIGTERM)
        else:
            grace = min(FAST_STOP_GRACE, self.config.graceful_timeout + KILL_SLACK)
            self.send_signal(handle, signal.SIGQUIT)
        if handle.kill_at is None or now + grace < handle.kill_at:
            handle.kill_at = now + grace
            handle.kill_why = f"still running {grace:g}s after being told to stop"

    def stop(self, graceful: bool) -> None:
        mode = StopMode.GRACEFUL if graceful else StopMode.FAST
        if self.stop_mode in (mode, StopMode.FAST):
            return
        first = self.stop_mode is None
        self.stop_mode = mode
        if first:
            log.info("Stopping (%s)", mode.value)
            systemd.notify("STOPPING=1")
            self.reloads.run = None
            # Stop accepting at the master's level now; workers hold their own
            # copies until they have drained.
            close_all(self.listeners, unlink=self.upgrade.pid is None)
            self.listeners = []
            if self.control is not None:
                self.control.stop_listening()
            self.commands.stopping()
        for handle in list(self.workers.values()):
            if graceful and handle.state is WorkerState.DRAINING:
                continue
            self.drain(handle, graceful)

    def kill_all(self) -> None:
        log.warning("Killing every worker now")
        for handle in self.workers.values():
            handle.exit_expected = True
            self.kill(handle, "a second SIGINT")

    def kill(self, handle: WorkerHandle, why: str, signum: int = signal.SIGKILL) -> None:
        """Send a fatal signal, remembering why, so the exit is not blamed on the OOM killer."""
        handle.killed_for = why
        self.send_signal(handle, signum)

    # -- time-based policies ---------------------------------------------------

    def _tick(self, now: float) -> None:
        if self.endpoint is not None:
            self.endpoint.sweep(now)
        booting = not self.initial_ready or self.reloads.run is not None
        errored = any(record.errored for record in self.slots.records.values())
        healthy = not errored and not self.stop_mode
        self.notifier.tick(now, booting and healthy, lambda: status_mod.snapshot(self))
        health.watch(self, now)
        if self.stop_mode:
            return
        for handle in self.workers.values():
            if handle.ready_at is not None and now - handle.ready_at >= slots.EARLY_WINDOW:
                self.slots.stable(handle.slot)
        if self.reloads.run is not None:
            self.reloads.step(now)
        # A worker that stopped taking work (--max-requests, --max-memory) is
        # replaced at once, during a reload too: it serves nothing meanwhile.
        for handle in list(self.workers.values()):
            if (
                handle.retire_reason
                and handle.state is WorkerState.READY
                and not handle.retiring
                and now >= handle.retry_at
            ):
                self.replace(handle, self.generation, handle.retire_reason)
        self._reconcile(now)
        self.commands.tick()

    def replace(self, old: WorkerHandle, generation: int, reason: str) -> WorkerHandle:
        """Fork a replacement for `old`; `old` drains once it is ready."""
        new = self._spawn(old.slot, generation)
        old.attach(new)
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
                self.drain(handle, graceful=True, reason=slots.SCALE)

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

    # -- scale ---------------------------------------------------------------------

    def scale(self, count: int) -> None:
        if count < 1:
            log.warning("Cannot scale below 1 worker")
            count = 1
        if count != self.target:
            log.info("Scaling: %d -> %d workers", self.target, count)
        old, self.target = self.target, count
        self.scaled_to = count
        if self.reloads.run is not None:
            self.reloads.run.old_target = count  # a failed reload must not undo it
        self.slots.clear_errors()
        self.hooks.nworkers_changed(count, old)
