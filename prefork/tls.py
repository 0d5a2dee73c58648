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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from prefork.errors import ConfigError

if TYPE_CHECKING:
    import ssl

    from prefork.config import Config


def server_context(config: Config) -> ssl.SSLContext | None:
    """The context every listener is wrapped in; None without --certfile.

    gunicorn's `ssl_context(config, default_ssl_context_factory)` hook, when
    the config file has one, builds it instead.  Unlike other hooks, one that
    raises or returns something else stops prefork (exit status 2): serving
    with a TLS configuration other than the one asked for is not an option.
    """
    if not config.certfile or not config.keyfile:
        return None
    import ssl  # only a TLS master pays for the module (~2 MiB)

    hook = config.hooks.get("ssl_context")
    if hook is None:
        return _default_context(config)
    try:
        context = hook(config, lambda: _default_context(config))
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"TLS: the ssl_context hook raised {type(exc).__name__}: {exc}") from None
    if not isinstance(context, ssl.SSLContext):
        raise ConfigError("TLS: the ssl_context hook must return an ssl.SSLContext")
    return context


def _default_context(config: Config) -> ssl.SSLContext:
    import ssl

    assert config.certfile and config.keyfile  # checked by server_context
    files = [("--certfile", config.certfile), ("--keyfile", config.keyfile)]
    if config.ca_certs:
        files.append(("--ca-certs", config.ca_certs))
    contents = {flag: _read(flag, path) for flag, path in files}
    # An encrypted key without a password would make OpenSSL prompt on the terminal.
    encrypted = b"ENCRYPTED" in contents["--keyfile"]
    if encrypted and not config.keyfile_password:
        raise ConfigError(f"TLS: --keyfile {config.keyfile} is encrypted: give --keyfile-password")
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
        if encrypted:
            raise ConfigError(
                f"TLS: --keyfile {config.keyfile}: wrong --keyfile-password"
            ) from None
        raise ConfigError(
            f"TLS: --certfile {config.certfile} and --keyfile {config.keyfile} are not a "
            f"PEM certificate and its private key ({exc})"
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


def _read(flag: str, path: str) -> bytes:
    # load_cert_chain's errors name no file ("No such file or directory"), so
    # each file is read here first to say which one is wrong.
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise ConfigError(f"TLS: {flag} {path}: {exc.strerror or exc}") from None


# -- what the application learns about a TLS connection --------------------------------

# RFC 4514 short names for the attribute types Python's getpeercert() spells out.
_SHORT_NAMES: Final = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}
_VERSIONS: Final = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
_cipher_ids: dict[str, int] = {}


@dataclass(frozen=True, slots=True)
class PeerTLS:
    """One TLS connection, as the ASGI `tls` extension and WSGI's SSL_* keys describe it."""

    version: str  # "TLSv1.3"
    cipher: str  # OpenSSL's name, e.g. "TLS_AES_256_GCM_SHA384"
    cipher_id: int | None  # the IANA number (ASGI's cipher_suite)
    client_cert: str | None  # PEM, when the client sent a (verified) certificate
    client_subject: str | None  # RFC 4514: "CN=alice,O=Example"
    client_issuer: str | None
    client_serial: str | None  # hex, as mod_ssl's SSL_CLIENT_M_SERIAL


def _rfc4514(name: Any) -> str:
    # getpeercert() lists RDNs from the root down; RFC 4514 writes them leaf first.
    parts = []
    for rdn in reversed(name):
        attrs = [f"{_SHORT_NAMES.get(key, key)}={_escape_dn(value)}" for key, value in rdn]
        parts.append("+".join(attrs))
    return ",".join(parts)


def _escape_dn(value: str) -> str:
    escaped = "".join("\\" + ch if ch in ',+"\\<>;=' else ch for ch in value)
    if escaped[:1] in (" ", "#"):
        escaped = "\\" + escaped
    if escaped.endswith(" ") and not escaped.endswith("\\ "):
        escaped = escaped[:-1] + "\\ "
    return escaped


def peer_details(transport: Any) -> PeerTLS | None:
    """The TLS details of an accepted connection; None for plain TCP or a unix socket."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    import ssl

    name, _, _ = ssl_object.cipher() or ("", "", 0)
    if not _cipher_ids:
        # IANA numbers are the low 16 bits of OpenSSL's cipher ids.
        _cipher_ids.update({c["name"]: c["id"] & 0xFFFF for c in ssl_object.context.get_ciphers()})
    der = ssl_object.getpeercert(binary_form=True)
    cert = ssl_object.getpeercert() if der else None
    return PeerTLS(
        version=ssl_object.version() or "",
        cipher=name,
        cipher_id=_cipher_ids.get(name),
        client_cert=ssl.DER_cert_to_PEM_cert(der) if der else None,
        client_subject=_rfc4514(cert["subject"]) if cert else None,
        client_issuer=_rfc4514(cert["issuer"]) if cert else None,
        client_serial=cert.get("serialNumber") if cert else None,
    )


def asgi_extension(peer: PeerTLS) -> dict[str, Any]:
    """The ASGI `tls` extension (asgiref's TLS extension spec)."""
    return {
        "server_cert": None,  # not kept by the worker; the spec allows None
        "client_cert_chain": [peer.client_cert] if peer.client_cert else [],
        "client_cert_name": peer.client_subject,
        "client_cert_error": None,  # a failed verification fails the handshake itself
        "tls_version": _VERSIONS.get(peer.version),
        "cipher_suite": peer.cipher_id,
    }


def wsgi_environ(peer: PeerTLS) -> dict[str, str]:
    """mod_ssl's environ keys, which Django, Flask and WSGI middleware already read."""
    environ = {
        "HTTPS": "on",
        "SSL_PROTOCOL": peer.version,
        "SSL_CIPHER": peer.cipher,
        "SSL_CLIENT_VERIFY": "SUCCESS" if peer.client_cert else "NONE",
    }
    if peer.client_cert:
        environ["SSL_CLIENT_CERT"] = peer.client_cert
        environ["SSL_CLIENT_S_DN"] = peer.client_subject or ""
        environ["SSL_CLIENT_I_DN"] = peer.client_issuer or ""
        environ["SSL_CLIENT_M_SERIAL"] = peer.client_serial or ""
    return environ
