"""Error-log setup shared by the master and the workers.

Every process writes to the same sink (stderr or --error-logfile, opened in
append mode so lines from several processes interleave whole).  The format
follows gunicorn's so existing log parsers keep working:

    [2026-11-26 01:40:00 +0000] [1234] [INFO] Listening at: http://127.0.0.1:8000
"""

from __future__ import annotations

import logging
import sys
from typing import Final, TextIO

from prefork.config import Config

LOGGER: Final = logging.getLogger("prefork")
FORMAT: Final = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
DATE_FORMAT: Final = "%Y-%m-%d %H:%M:%S %z"


def _open_sink(path: str) -> TextIO:
    if path == "-":
        return sys.stderr
    return open(path, "a", buffering=1, encoding="utf-8")


# The handler prefork put on the root logger (--log-format json only), so a
# reconfigure replaces it and never touches handlers the application added.
_root_handler: logging.Handler | None = None
# The worker's slot number, or None in the master: shown by the JSON format.
_worker: int | None = None


def _formatter(config: Config) -> logging.Formatter:
    if config.log_format == "json":
        from prefork.observe.jsonlog import JsonFormatter

        return JsonFormatter(_worker)
    return logging.Formatter(FORMAT, DATE_FORMAT)


def configure(config: Config) -> None:
    """(Re)configure the "prefork" logger; called at start and on SIGUSR1 (reopen).

    With `--log-format json` the same sink and format also go on the root
    logger, so the application's own records are JSON lines too, unless the
    application configured the root logger itself.
    """
    global _root_handler
    root = logging.getLogger()
    if _root_handler is not None:
        root.removeHandler(_root_handler)
        _root_handler = None
    for handler in list(LOGGER.handlers):
        LOGGER.removeHandler(handler)
        if isinstance(handler, logging.StreamHandler) and handler.stream not in (
            sys.stderr,
            sys.stdout,
        ):
            handler.close()
    handler = logging.StreamHandler(_open_sink(config.error_logfile))
    handler.setFormatter(_formatter(config))
    LOGGER.addHandler(handler)
    LOGGER.setLevel(config.log_level.upper())
    LOGGER.propagate = False
    if config.log_format == "json" and not root.handlers:
        _root_handler = handler
        root.addHandler(handler)
        root.setLevel(config.log_level.upper())


def set_worker(slot: int, config: Config) -> None:
    """Called once in a new worker, so its JSON lines name their worker."""
    global _worker
    _worker = slot
    if config.log_format == "json":
        for handler in LOGGER.handlers:
            handler.setFormatter(_formatter(config))
