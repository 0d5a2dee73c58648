"""Certificates made for a test with the openssl command: a CA, a server and a client.

    certs = make_certs(tmp_path)   # certs.ca, certs.server_cert, certs.client_key, ...

The server certificate is for 127.0.0.1 and localhost; the client
certificate's subject is CN=test-client,O=prefork-tests.  Everything is
signed by the one CA, valid for a day.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-out", str(path))  # fmt: skip


def _signed(directory: Path, name: str, subject: str, ext: str, ca: Path, ca_key: Path) -> Path:
    key, csr, cert = (directory / f"{name}.{suffix}" for suffix in ("key", "csr", "pem"))
    _key(key)
    _openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr))
    extfile = directory / f"{name}.ext"
    extfile.write_text(ext)
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "1", "-extfile", str(extfile),
             "-out", str(cert))  # fmt: skip
    return cert


def make_certs(directory: Path) -> Certs:
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    _key(ca_key)
    _openssl("req", "-x509", "-new", "-key", str(ca_key), "-days", "1",
             "-subj", "/CN=prefork test CA", "-out", str(ca))  # fmt: skip
    server = _signed(
        directory, "server", "/CN=localhost",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n", ca, ca_key,
    )  # fmt: skip
    client = _signed(
        directory, "client", "/O=prefork-tests/CN=test-client",
        "extendedKeyUsage=clientAuth\n", ca, ca_key,
    )  # fmt: skip
    return Certs(ca, server, directory / "server.key", client, directory / "client.key")
