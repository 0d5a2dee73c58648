"""The composition root: what the worker wires into its HTTP server.

The protocol layer (http/) is handed its settings, the exchange class of one
interface with that interface's state (the adapter), and its services as
protocols; the interfaces (asgi/, wsgi/) run an app without knowing how the
server was assembled.  The concrete pieces are chosen here, from the Config
and the loaded app, and nowhere else:

    Config ------------------ http_settings ---> HttpSettings --+
    LoadedApp + Config ------ interface -------> exchange class |
                                                 + adapter -----+--> ServerState
    Config ------------------ AccessLog, RequestMetrics --------+      (HttpServer)
    Config ------------------ install_websockets --> ServerState.upgrade (ASGI; the
                              WebSocket adapter is imported by the first Upgrade)

An ASGI worker never imports the WSGI modules, nor a WSGI worker the ASGI ones.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from typing import TYPE_CHECKING, Any

from prefork.http.server import HttpServer, ServerState
from prefork.http.settings import HttpSettings
from prefork.logs import LOGGER
from prefork.observe.accesslog import AccessLog

if TYPE_CHECKING:
    import asyncio
    import ssl

    from prefork.balance import AcceptGate
    from prefork.config import Config
    from prefork.http.connection import HttpConnection
    from prefork.http.exchange import Exchange
    from prefork.http.upgrade import Switch
    from prefork.loader import LoadedApp
    from prefork.observe.metrics import RequestMetrics


def http_settings(config: Config) -> HttpSettings:
    """The settings the protocol layer reads: the Config fields of the same names."""
    return HttpSettings(
        **{field.name: getattr(config, field.name) for field in dataclasses.fields(HttpSettings)}
    )


def interface(
    config: Config, loaded: LoadedApp, app_state: dict[str, Any], access_log: AccessLog
) -> tuple[type[Exchange], object]:
    """The exchange class for the app's interface, and the adapter its exchanges read."""
    secure = bool(config.certfile)
    if loaded.interface == "asgi":
        from prefork.asgi.http import ASGIExchange
        from prefork.asgi.scope import ASGIAdapter

        return ASGIExchange, ASGIAdapter(
            loaded.app, app_state, config.root_path, secure, access_log
        )
    from prefork.wsgi.environ import template
    from prefork.wsgi.exchange import WSGIAdapter

    environ = template(config.root_path, secure, multithread=config.threads > 1)
    if config.threads > 1:
        from prefork.wsgi.threaded import ThreadedWSGIExchange, start_pool

        pool = start_pool(config.threads)
        return ThreadedWSGIExchange, WSGIAdapter(loaded.app, environ, secure, access_log, pool)
    from prefork.wsgi.inline import InlineWSGIExchange

    return InlineWSGIExchange, WSGIAdapter(loaded.app, environ, secure, access_log)


def install_websockets(config: Config, state: ServerState) -> None:
    """Offer Upgrade requests to the ASGI WebSocket adapter, with the --ws-* settings.

    The adapter and `websockets` (which imports importlib.metadata, email,
    zipfile, hashlib: about 4 MiB of an idle worker's RSS, docs/profile.md)
    are imported by the first Upgrade request, so a worker that never sees
    one never carries them.  Raises ImportError now if `websockets` is not
    installed at all (the worker then says so at boot, as before).
    """
    if importlib.util.find_spec("websockets") is None:
        raise ImportError("No module named 'websockets'")

    def first_upgrade(
        conn: HttpConnection,
        method: bytes,
        target: bytes,
        version: str,
        headers: list[tuple[bytes, bytes]],
    ) -> Switch | None:
        try:
            from prefork.asgi.websocket import install
            from prefork.ws.session import Limits
        except ImportError as exc:  # installed, yet broken: serve HTTP, as --ws auto would
            LOGGER.warning("WebSockets disabled: %s; Upgrade requests are served as HTTP", exc)
            state.upgrade = None
            return None
        limits = Limits(
            max_size=config.ws_max_size or None,
            ping_interval=config.ws_ping_interval,
            ping_timeout=config.ws_ping_timeout,
            send_timeout=state.send_timeout,
        )
        install(state, limits, config.ws_per_message_deflate)  # replaces this hook
        assert state.upgrade is not None
        return state.upgrade(conn, method, target, version, headers)

    state.upgrade = first_upgrade


class WorkerServer(HttpServer):
    """The worker's HTTP server, assembled from its Config, with the services it keeps.

    `access_log` (reopened on SIGUSR1) and `metrics` (sent with each
    heartbeat) are the concrete objects the server only knows as protocols.
    """

    def __init__(
        self,
        config: Config,
        loaded: LoadedApp,
        loop: asyncio.AbstractEventLoop,
        app_state: dict[str, Any],
        stdout_fd: int = 1,
        ssl_context: ssl.SSLContext | None = None,
        gate: AcceptGate | None = None,
    ) -> None:
        # stdout_fd: where `--access-logfile -` writes (the worker's own stdout
        # is a pipe to the master; the access log bypasses it).
        self.access_log = AccessLog(
            config.access_logfile,
            config.access_logformat,
            json_lines=config.log_format == "json",
            stdout_fd=stdout_fd,
        )
        self.metrics: RequestMetrics | None = None
        if config.metrics_bind:
            from prefork.observe.metrics import RequestMetrics

            self.metrics = RequestMetrics()
        exchange_class, adapter = interface(config, loaded, app_state, self.access_log)
        state = ServerState(
            http_settings(config),
            loop,
            exchange_class,
            adapter,
            metrics=self.metrics,
            flushable=self.access_log if self.access_log.enabled else None,
        )
        super().__init__(state, ssl_context, gate)
