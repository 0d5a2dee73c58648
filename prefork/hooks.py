"""Server hooks: gunicorn's names and call signatures, from a Python config file.

    hook                         runs in          when
    on_starting(server)          master           before the listeners are opened
    when_ready(server)           master           listeners open, before the first fork
    on_reload(server)            master           a reload (HUP) starts, new config read
    pre_fork(server, worker)     master           just before a worker is forked
    post_fork(server, worker)    worker           just after the fork
    post_worker_init(worker)     worker           the app is imported (worker.wsgi set)
    pre_request(worker, req)     worker           WSGI: before the app is called
    post_request(worker, req, environ, resp)      WSGI: once the response is sent
    worker_int(worker)           worker           SIGINT or SIGQUIT (fast stop)
    worker_abort(worker)         worker           SIGABRT (--timeout: the worker hung)
    worker_exit(server, worker)  worker           the worker is about to exit
    child_exit(server, worker)   master           a worker exited (reaped)
    nworkers_changed(server, new_value, old_value)  master   the target count changed
    on_exit(server)              master           the master is about to exit
    pre_exec(server)             new master       USR2 upgrade: just before it is exec'd
    ssl_context(config, default_ssl_context_factory)  master  the TLS context is built (tls.py)

`server` and `worker` are `ServerInfo` and `WorkerInfo` below: the attributes
gunicorn's hooks commonly use (pid, cfg, log, num_workers, age, ppid, ...),
documented in docs/migrating.md.  `cfg` is prefork's Config, so settings
have prefork's names (docs/settings.md).

Every hook runs through `call`: one that raises is logged with its traceback
and the caller carries on, so a broken hook never takes the master down.
ssl_context is the exception (tls.py): without the context it was asked
for, prefork does not serve.
A hook runs in the master's only thread: it must not start threads there
(fork is only safe in a single-threaded process) nor block for long.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, Protocol

from prefork import logs

if TYPE_CHECKING:
    import logging

    from prefork.config import Config
    from prefork.loader import LoadedApp

HOOK_NAMES: Final = frozenset(
    {
        "on_starting",
        "when_ready",
        "on_reload",
        "pre_fork",
        "post_fork",
        "post_worker_init",
        "pre_request",
        "post_request",
        "worker_int",
        "worker_abort",
        "worker_exit",
        "child_exit",
        "nworkers_changed",
        "on_exit",
        "pre_exec",
        "ssl_context",
    }
)

log = logs.LOGGER


def call(config: Config, name: str, *args: Any) -> None:
    """Run hook `name` if the config has it; log (never raise) what it raises."""
    hook = config.hooks.get(name)
    if hook is None:
        return
    try:
        hook(*args)
    except Exception:
        log.exception("Server hook %s raised; carrying on", name)


class MasterView(Protocol):
    """What ServerInfo reads from the master (the Arbiter)."""

    config: Config
    target: int


class ServerInfo:
    """The master, as a hook sees it (gunicorn passes its Arbiter)."""

    def __init__(self, master: MasterView, workers: dict[int, WorkerInfo]) -> None:
        self._master = master
        self.pid = os.getpid()
        self.log: logging.Logger = log
        self.workers = workers  # pid -> WorkerInfo of every live worker (gunicorn's WORKERS)

    @property
    def cfg(self) -> Config:
        return self._master.config

    @property
    def num_workers(self) -> int:
        return self._master.target

    @property
    def proc_name(self) -> str:
        return self._master.config.name or "prefork"


@dataclass(eq=False)
class WorkerInfo:
    """One worker, as a hook sees it (gunicorn passes its Worker)."""

    age: int  # spawn order, from 1 (gunicorn's worker.age)
    slot: int  # prefork's worker number (as in `prefork status`)
    generation: int  # the reload generation it serves
    cfg: Config
    ppid: int  # the master
    pid: int | None = None  # None in pre_fork: the process does not exist yet
    wsgi: Any = None  # the application, from post_worker_init on
    booted: bool = False
    alive: bool = True
    log: logging.Logger = field(default=log, repr=False)


class MasterHooks:
    """The master's side: keeps a WorkerInfo per live worker for the hooks."""

    def __init__(self, master: MasterView) -> None:
        self.master = master
        self.workers: dict[int, WorkerInfo] = {}
        self.server = ServerInfo(master, self.workers)
        self.spawned = 0

    def __call__(self, name: str, *args: Any) -> None:
        call(self.master.config, name, self.server, *args)

    def pre_fork(self, slot: int, generation: int) -> WorkerInfo:
        self.spawned += 1
        config = self.master.config
        info = WorkerInfo(self.spawned, slot, generation, config, os.getpid())
        call(config, "pre_fork", self.server, info)
        return info

    def forked(self, info: WorkerInfo, pid: int) -> None:
        info.pid = pid
        self.workers[pid] = info

    def post_fork(self, info: WorkerInfo) -> WorkerHooks:
        """In the new worker: run post_fork, and hand over the worker's side."""
        info.pid = os.getpid()
        call(info.cfg, "post_fork", self.server, info)
        return WorkerHooks(self.server, info)

    def child_exit(self, pid: int) -> None:
        info = self.workers.pop(pid, None)
        if info is not None:
            info.alive = False
            call(self.master.config, "child_exit", self.server, info)

    def nworkers_changed(self, new: int, old: int) -> None:
        if new != old:
            call(self.master.config, "nworkers_changed", self.server, new, old)


@dataclass(slots=True)
class WorkerHooks:
    """A worker's side of the hooks (created in the worker, after the fork)."""

    server: ServerInfo
    worker: WorkerInfo

    def post_worker_init(self, loaded: LoadedApp) -> LoadedApp:
        """Run post_worker_init; the app, wrapped when pre/post_request are set."""
        worker = self.worker
        worker.wsgi = loaded.app
        worker.booted = True
        if "worker_abort" in worker.cfg.hooks:
            signal.signal(signal.SIGABRT, self._abort)
        call(worker.cfg, "post_worker_init", worker)
        hooks = worker.cfg.hooks
        if loaded.interface == "wsgi" and ("pre_request" in hooks or "post_request" in hooks):
            return replace(loaded, app=_RequestHooks(loaded.app, worker))
        return loaded

    def worker_int(self) -> None:
        call(self.worker.cfg, "worker_int", self.worker)

    def worker_exit(self) -> None:
        self.worker.alive = False
        call(self.worker.cfg, "worker_exit", self.server, self.worker)

    def _abort(self, signum: int, frame: object) -> None:
        # Replaces faulthandler's SIGABRT dump only when a worker_abort hook
        # exists; the stacks are still dumped, then the worker exits as
        # gunicorn's does.
        call(self.worker.cfg, "worker_abort", self.worker)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        self.worker_exit()
        os._exit(1)


# -- pre_request / post_request (WSGI) ----------------------------------------------


class RequestInfo:
    """The request, as pre_request/post_request see it (gunicorn passes its Request)."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.method: str = environ["REQUEST_METHOD"]
        self.path: str = environ.get("SCRIPT_NAME", "") + environ["PATH_INFO"]
        self.query: str = environ["QUERY_STRING"]
        self.uri = self.path + ("?" + self.query if self.query else "")
        protocol = environ["SERVER_PROTOCOL"]
        self.version = (int(protocol[5]), int(protocol[7]))
        self.headers = [
            (key[5:].replace("_", "-"), value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        ]


class ResponseInfo:
    """The response, as post_request sees it: status, status_code, headers."""

    def __init__(self) -> None:
        self.status: str | None = None
        self.status_code: int | None = None
        self.headers: list[tuple[str, str]] = []


class _RequestHooks:
    """WSGI middleware calling pre_request before the app, post_request after the body."""

    def __init__(self, app: Callable[..., Iterable[bytes]], worker: WorkerInfo) -> None:
        self.app = app
        self.worker = worker

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        worker = self.worker
        request = RequestInfo(environ)
        call(worker.cfg, "pre_request", worker, request)
        response = ResponseInfo()

        def capture(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            response.status, response.headers = status, headers
            response.status_code = int(status[:3]) if status[:3].isdigit() else None
            return start_response(status, headers, *exc_info)

        try:
            result = self.app(environ, capture)
        except BaseException:
            call(worker.cfg, "post_request", worker, request, environ, response)
            raise
        return _AfterBody(result, lambda: call(
            worker.cfg, "post_request", worker, request, environ, response
        ))  # fmt: skip


class _AfterBody:
    """An app's response iterable that runs `after` once it is closed (PEP 3333)."""

    def __init__(self, result: Iterable[bytes], after: Callable[[], None]) -> None:
        self.result = result
        self.after = after

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.result)

    def close(self) -> None:
        try:
            close = getattr(self.result, "close", None)
            if close is not None:
                close()
        finally:
            self.after()
