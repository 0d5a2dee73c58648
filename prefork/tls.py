"""The server's TLS context, built once in the master from the TLS settings.

The master builds it before the first fork (and again on every reload, so a
renewed certificate is picked up by the new workers); workers inherit the
built object across fork() and never read the files themselves.  A missing
or unreadable file, a wrong password or a bad cipher string is therefore one
`ConfigError` line and exit status 2 at startup, never a worker crash loop.

TLS applies to every listener, TCP and unix sockets alike, as in gunicorn and
uvicorn: an app behind a TLS-terminating unix socket sees scheme https, and
that is then true.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefork.config import Config
from prefork.errors import ConfigError

if TYPE_CHECKING:
    import ssl


def server_context(config: Config) -> ssl.SSLContext | None:
    """The context every listener is wrapped in; None without --certfile."""
    if not config.certfile or not config.keyfile:
        return None
    import ssl  # only a TLS master pays for the module (~2 MiB)

    for flag, path in (("--certfile", config.certfile), ("--keyfile", config.keyfile)):
        _check_readable(flag, path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.certfile, config.keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"TLS: --certfile {config.certfile} and --keyfile {config.keyfile} are not a "
            f"PEM certificate and its private key ({exc})"
        ) from None
    return context


def _check_readable(flag: str, path: str) -> None:
    # load_cert_chain's errors name no file ("No such file or directory"), so
    # each file is opened here first to say which one is wrong.
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"TLS: {flag} {path}: {exc.strerror or exc}") from None
