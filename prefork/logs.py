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


def configure(config: Config) -> None:
    """(Re)configure the "prefork" logger; called at start and on SIGUSR1 (reopen)."""
    for handler in list(LOGGER.handlers):
        LOGGER.removeHandler(handler)
        if isinstance(handler, logging.StreamHandler) and handler.stream not in (
            sys.stderr,
            sys.stdout,
        ):
            handler.close()
    handler = logging.StreamHandler(_open_sink(config.error_logfile))
    handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
    LOGGER.addHandler(handler)
    LOGGER.setLevel(config.log_level.upper())
    LOGGER.propagate = False
