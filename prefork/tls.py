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

    files = [("--certfile", config.certfile), ("--keyfile", config.keyfile)]
    if config.ca_certs:
        files.append(("--ca-certs", config.ca_certs))
    for flag, path in files:
        _check_readable(flag, path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if config.tls_min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    # Only HTTP/1.1 is spoken: a client offering h2 must learn that in the
    # handshake rather than send an HTTP/2 preface.
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(config.certfile, config.keyfile, config.keyfile_password)
    except (OSError, ssl.SSLError) as exc:
        hint = " or wrong --keyfile-password" if "bad decrypt" in str(exc) else ""
        raise ConfigError(
            f"TLS: --certfile {config.certfile} and --keyfile {config.keyfile} are not a "
            f"PEM certificate and its private key{hint} ({exc})"
        ) from None
    if config.ciphers:
        try:
            context.set_ciphers(config.ciphers)
        except ssl.SSLError:
            raise ConfigError(f"TLS: --ciphers {config.ciphers!r} selects no cipher") from None
    if config.ca_certs:
        try:
            context.load_verify_locations(cafile=config.ca_certs)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"TLS: --ca-certs {config.ca_certs}: no PEM certificate ({exc})"
            ) from None
    context.verify_mode = {
        "none": ssl.CERT_NONE,
        "optional": ssl.CERT_OPTIONAL,
        "required": ssl.CERT_REQUIRED,
    }[config.cert_reqs]
    return context


def _check_readable(flag: str, path: str) -> None:
    # load_cert_chain's errors name no file ("No such file or directory"), so
    # each file is opened here first to say which one is wrong.
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"TLS: {flag} {path}: {exc.strerror or exc}") from None
