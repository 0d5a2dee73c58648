"""Error-log setup shared by the master and the workers.

Every process writes to the same sink (stderr or --error-logfile, opened in
append mode so lines from several processes interleave whole).  The format
follows gunicorn's so existing log parsers keep working:

    [2026-11-26 01:40:00 +0000] [1234] [INFO] Listening at: http://127.0.0.1:8000
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import TYPE_CHECKING, Final, TextIO

if TYPE_CHECKING:
    from prefork.config import Config

LOGGER: Final = logging.getLogger("prefork")
FORMAT: Final = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
DATE_FORMAT: Final = "%Y-%m-%d %H:%M:%S %z"


def _open_sink(path: str) -> TextIO:
    if path == "-":
        return sys.stderr
    return open(path, "a", buffering=1, encoding="utf-8")


# The sink handler configure() installed, so a reconfigure replaces it and
# leaves other handlers (the master's ring) in place.
_handler: logging.Handler | None = None
# The same handler on the root logger (--log-format json only), so a
# reconfigure never touches handlers the application added.
_root_handler: logging.Handler | None = None
# The worker's slot number, or None in the master: shown by the JSON format.
_worker: int | None = None


def formatter(config: Config) -> logging.Formatter:
    if config.log_format == "json":
        from prefork.observe.jsonlog import JsonFormatter

        return JsonFormatter(_worker)
    return logging.Formatter(FORMAT, DATE_FORMAT)


def configure(config: Config, stream: TextIO | None = None) -> None:
    """(Re)configure the "prefork" logger; called at start and on SIGUSR1 (reopen).

    `stream` replaces the configured sink (a worker writes to its stderr,
    which the master forwards to the sink).  With `--log-format json` the same
    handler also goes on the root logger, so the application's own records
    are JSON lines too, unless the application configured the root logger.
    """
    global _handler, _root_handler
    root = logging.getLogger()
    # Handlers others added to the prefork logger (the master's ring) survive
    # a --log-config that names the logger: they are plumbing, not output.
    kept = [h for h in LOGGER.handlers if h is not _handler]
    if _root_handler is not None:
        root.removeHandler(_root_handler)
        _root_handler = None
    if _handler is not None:
        LOGGER.removeHandler(_handler)
        if isinstance(_handler, logging.StreamHandler) and _handler.stream not in (
            sys.stderr,
            sys.stdout,
        ):
            _handler.close()
    _handler = logging.StreamHandler(stream or _open_sink(config.error_logfile))
    _handler.setFormatter(formatter(config))
    LOGGER.addHandler(_handler)
    LOGGER.setLevel(config.log_level.upper())
    LOGGER.propagate = False
    if config.log_format == "json" and not root.handlers:
        _root_handler = _handler
        root.addHandler(_handler)
        root.setLevel(config.log_level.upper())
    if config.log_config:
        from prefork import logconfig

        logconfig.apply(config.log_config)
        for handler in kept:
            if handler not in LOGGER.handlers:
                LOGGER.addHandler(handler)


def sink_fd() -> int:
    """The error log's descriptor (the master forwards workers' stderr to it)."""
    if isinstance(_handler, logging.StreamHandler):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            return int(_handler.stream.fileno())
    return 2


def configure_worker(slot: int, config: Config) -> None:
    """In a new worker: log to stderr (a pipe the master forwards), naming the worker."""
    global _worker
    _worker = slot
    configure(config, sys.stderr)
