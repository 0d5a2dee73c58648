"""Rolling reloads: start one (or queue it), advance it on every tick, end it, record it.

A reload is a run over the old workers, oldest first, keeping at most
--reload-batch replacements booting at once.  For each old worker the
arbiter forks a replacement of the new generation; only when that one says
`ready` is the old one told to drain, so serving capacity never drops below
the target.  The first replacement that fails (exits, or is not ready
within --boot-timeout) ends the run: booting replacements are killed, the
old workers not yet replaced keep serving, and the previous config and
generation are restored.  Replacements already ready stay (they passed).

Reload requests that arrive while a run (or an upgrade, upgrade.py) is in
progress are coalesced into a single follow-up run, started when the
current one ends: whatever the number of HUPs, the last edit on disk is
always picked up, and at most two runs ever exist.

With --preload the app lives in the master, so new code needs a new master:
a reload becomes an upgrade.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from prefork import config as config_mod
from prefork import logs, preflight, systemd, tls
from prefork.config import Config
from prefork.control.protocol import ReloadResult
from prefork.errors import ConfigError
from prefork.master.workers import WorkerHandle, WorkerState

if TYPE_CHECKING:
    import ssl

    from prefork.master.arbiter import Arbiter

log = logs.LOGGER

# Settings that need the log reconfigured when they change.
_LOG_SETTINGS: Final = ("error_logfile", "log_level", "log_format", "log_config")


@dataclass(slots=True)
class ReloadRun:
    """One reload in progress, and what to restore if it fails."""

    generation: int
    reason: str  # what asked for it: "SIGHUP", "control socket"
    old_config: Config
    old_tls: ssl.SSLContext | None
    old_generation: int
    old_target: int
    queue: deque[WorkerHandle]  # old workers still to replace, oldest first
    started: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)


def replacement_queue(workers: Iterable[WorkerHandle], generation: int) -> deque[WorkerHandle]:
    """Ready workers older than `generation`, oldest first (gunicorn's order)."""
    old = [
        w
        for w in workers
        if w.state is WorkerState.READY and w.generation < generation and not w.retiring
    ]
    return deque(sorted(old, key=lambda w: w.started))


def result(ok: bool, generation: int, detail: str, started: float) -> ReloadResult:
    """What `prefork status` shows as the last reload's outcome."""
    return ReloadResult(
        ok=ok, generation=generation, detail=detail, started=started, finished=time.time()
    )


def log_settings_differ(new: Config, old: Config) -> bool:
    """Whether going from `old` to `new` needs the log reconfigured."""
    changed = any(getattr(new, name) != getattr(old, name) for name in _LOG_SETTINGS)
    return changed or bool(new.log_config)  # the file itself may have changed


class Reloads:
    """The master's reloads and upgrades as numbered attempts, with their outcomes.

    Owns the reload in progress (`run`), the coalesced follow-up (`again`)
    and the record `prefork status`, /metrics and waiting `prefork reload`
    clients read.  Acts on the workers through the arbiter's own methods.
    """

    def __init__(self, arbiter: Arbiter) -> None:
        self.arbiter = arbiter
        self.run: ReloadRun | None = None
        self.again = False  # a reload was asked for during this one: run it next
        self.last: ReloadResult | None = None
        self.counts: dict[Literal["ok", "failed"], int] = {"ok": 0, "failed": 0}
        # Every reload or upgrade attempt is numbered, so a waiting
        # `prefork reload` knows which outcome answers it (commands.py).
        self.attempts = 0
        self.last_recorded = 0  # the attempt `last` is the outcome of

    @property
    def in_progress(self) -> bool:
        """A reload run or an upgrade is under way."""
        return self.run is not None or self.arbiter.upgrade.pid is not None

    def request(self, reason: str) -> str:
        """Start a rolling reload (or queue one); returns what happened, for the caller."""
        arbiter = self.arbiter
        if arbiter.stop_mode:
            return "stopping; reload ignored"
        if self.in_progress:
            self.again = True
            log.info("Reload already in progress; another one will follow it")
            return "queued after the reload in progress"
        self.attempts += 1
        try:
            new_config = config_mod.load(arbiter.cli_values)
            preflight.check(new_config, listeners=False)  # --bind changes are ignored
            configured, how = new_config.workers.resolve()
            # New workers inherit the environment at fork: apply the file now.
            arbiter.env_file.load(new_config.env_file)
            new_tls = tls.server_context(new_config)
        except (ConfigError, OSError) as exc:
            self.record(False, arbiter.generation, f"config: {exc}", time.time())
            return f"failed: {exc}"
        if new_config.bind != arbiter.config.bind:
            log.warning("Reload: --bind changes need a restart or an upgrade (USR2); ignored")
        if arbiter.config.preload or new_config.preload:
            return arbiter.upgrade.start(reason + ", --preload")
        target = configured
        if arbiter.scaled_to is not None and new_config.workers == arbiter.config.workers:
            target, how = arbiter.scaled_to, f"set at runtime; --workers gives {configured}"
        if log_settings_differ(new_config, arbiter.config):
            try:
                logs.configure(new_config)
            except ConfigError as exc:
                logs.configure(arbiter.config)
                self.record(False, arbiter.generation, f"config: {exc}", time.time())
                return f"failed: {exc}"
        systemd.notify(systemd.reloading_message("reloading"))
        arbiter.slots.clear_errors()  # new code: errored slots may try again
        generation = arbiter.new_generation()
        for handle in list(arbiter.workers.values()):
            # Half-booted workers of the old generation (respawns, replacements
            # for --max-requests) are superseded; stop them, not replace them.
            if handle.state is WorkerState.BOOTING and handle.generation < generation:
                arbiter.drain(handle, graceful=False)
                handle.detach(predecessor_serves_on=True)
        self.run = ReloadRun(
            generation=generation,
            reason=reason,
            old_config=arbiter.config,
            old_tls=arbiter.tls,
            old_generation=arbiter.generation,
            old_target=arbiter.target,
            queue=replacement_queue(arbiter.workers.values(), generation),
        )
        arbiter.config = new_config
        arbiter.tls = new_tls
        arbiter.generation = generation
        old_target, arbiter.target = arbiter.target, target
        for warning in new_config.file_warnings:
            log.warning("%s", warning)
        arbiter.hooks("on_reload")
        arbiter.hooks.nworkers_changed(target, old_target)
        log.info(
            "Reloading (%s): generation %d, %d workers (%s), batch %d",
            reason,
            generation,
            target,
            how,
            new_config.reload_batch,
        )
        self.step(time.monotonic())
        return "started"

    def step(self, now: float) -> None:
        """Fork the next replacements, up to the batch; end the run once all are ready."""
        run = self.run
        assert run is not None
        arbiter = self.arbiter
        booting = [
            w
            for w in arbiter.workers.values()
            if w.replaces is not None and w.generation == run.generation
        ]
        while len(booting) < arbiter.config.reload_batch and run.queue:
            old = run.queue.popleft()
            if old.state is not WorkerState.READY or old.retiring:
                continue  # died or retired meanwhile; _reconcile covers the count
            booting.append(
                arbiter.replace(old, run.generation, f"reload, generation {run.generation}")
            )
        if booting or run.queue:
            return
        if any(
            w.state is WorkerState.BOOTING and w.generation == run.generation
            for w in arbiter.workers.values()
        ):
            return  # extra workers for a larger count are still booting
        self.run = None
        if run.old_config.workers != arbiter.config.workers:
            arbiter.scaled_to = None  # the configuration changed the count: it wins
        ready = sum(
            1
            for w in arbiter.workers.values()
            if w.state is WorkerState.READY and w.generation == run.generation
        )
        detail = f"generation {run.generation}: {ready} workers ready"
        log.info("Reload complete: %s (%.1fs)", detail, now - run.started)
        self.record(True, run.generation, detail, run.started_wall)
        self.follow_up()

    def failed(self, reason: str) -> None:
        """A replacement failed: kill the booting ones, give the old config back."""
        run = self.run
        assert run is not None
        arbiter = self.arbiter
        self.run = None
        for handle in list(arbiter.workers.values()):
            if handle.generation == run.generation and handle.state is WorkerState.BOOTING:
                arbiter.drain(handle, graceful=False)
                arbiter.kill(handle, "the reload it belonged to failed")
                handle.detach(predecessor_serves_on=True)
        if log_settings_differ(run.old_config, arbiter.config):
            # Only an old --log-config file edited since can fail; the log then stays as is.
            with contextlib.suppress(ConfigError):
                logs.configure(run.old_config)
        arbiter.config = run.old_config
        with contextlib.suppress(ConfigError):  # respawns get the old environment back
            arbiter.env_file.load(run.old_config.env_file)
        arbiter.tls = run.old_tls
        arbiter.generation = run.old_generation
        arbiter.target = run.old_target
        self.record(False, run.generation, reason, run.started_wall)
        self.follow_up()

    def record(self, ok: bool, generation: int, detail: str, started: float) -> None:
        """The outcome of the latest attempt: status, /metrics, systemd, waiting clients."""
        self.last = result(ok, generation, detail, started)
        self.counts["ok" if ok else "failed"] += 1
        self.last_recorded = self.attempts
        if ok:
            status = f"reloaded: {detail}"
        else:
            log.error("Reload failed: %s", detail)
            status = f"reload failed: {detail}; previous generation still serving"
        systemd.notify("READY=1\n" + systemd.status_message(status))
        self.arbiter.commands.reload_finished(self.attempts, self.last)

    def follow_up(self) -> None:
        """Start the reload queued during the one that just ended, if any."""
        if self.again and not self.arbiter.stop_mode:
            self.again = False
            self.request("queued reload")
