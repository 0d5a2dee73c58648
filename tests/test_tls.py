"""TLS: the context is built once in the master; bad files are one line and exit 2;
unix sockets are served with TLS too, and say so."""

from __future__ import annotations

import json
import re
import shutil
import ssl
from pathlib import Path

import httpx
import pytest

from tests.server import ROOT, run_server
from tests.test_cli import run
from tests.tls_certs import Certs, make_certs

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

WSGI = "tests.apps.tls_app:wsgi"
ASGI = "tests.apps.tls_app:asgi"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.mark.parametrize("mode", ["serve", "--check-config"])
@pytest.mark.parametrize(
    ("cert", "key", "message"),
    [
        ("missing.pem", "server.key", r"TLS: --certfile \S+missing.pem: No such file"),
        ("server.pem", "missing.key", r"TLS: --keyfile \S+missing.key: No such file"),
        (".", "server.key", r"TLS: --certfile \S+: Is a directory"),
        ("ca.srl", "server.key", r"not a PEM certificate and its private key"),
        ("server.pem", "client.key", r"not a PEM certificate and its private key"),
    ],
)
def test_bad_certificate_or_key_is_one_line_and_exit_2(
    certs: Certs, mode: str, cert: str, key: str, message: str
) -> None:
    directory = certs.ca.parent
    args = [WSGI, "-b", "127.0.0.1:0", "--certfile", str(directory / cert)]
    args += ["--keyfile", str(directory / key)]
    if mode != "serve":
        args.append(mode)
    result = run(*args, cwd=ROOT)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "Booting worker" not in result.stderr

    assert re.search(message, errors[0]), errors[0]


def https_client(certs: Certs, transport: httpx.HTTPTransport | None = None) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(certs.ca))
    if transport is None:
        return httpx.Client(verify=context, timeout=10)
    return httpx.Client(transport=transport, timeout=10)


@pytest.mark.parametrize("app", [WSGI, ASGI])
def test_unix_socket_is_served_with_tls_and_the_banner_says_so(
    certs: Certs, tmp_path: Path, app: str
) -> None:
    path = tmp_path / "tls.sock"
    tls = ("--certfile", str(certs.server_cert), "--keyfile", str(certs.server_key))
    with run_server(app, *tls, bind=("127.0.0.1:0", f"unix:{path}")) as server:
        assert f"Listening at: unix:{path} (https)" in server.log
        context = ssl.create_default_context(cafile=str(certs.ca))
        transport = httpx.HTTPTransport(uds=str(path), verify=context)
        with httpx.Client(transport=transport, timeout=10) as client:
            response = client.get("https://localhost/")
        assert json.loads(response.text)["scheme"] == "https"
        with https_client(certs) as client:
            assert json.loads(client.get(server.url).text)["scheme"] == "https"


def test_without_tls_a_unix_socket_is_http(tmp_path: Path) -> None:
    path = tmp_path / "plain.sock"
    with run_server(WSGI, bind=(f"unix:{path}",)) as server:
        assert f"Listening at: unix:{path}" in server.log
        assert "(https)" not in server.log
        transport = httpx.HTTPTransport(uds=str(path))
        with httpx.Client(transport=transport, timeout=10) as client:
            assert json.loads(client.get("http://localhost/").text)["scheme"] == "http"
