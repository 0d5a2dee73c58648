"""TLS: the context is built once in the master; bad files are one line and exit 2;
unix sockets are served with TLS too, and say so."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.test_cli import run
from tests.server import ROOT, run_server
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


def tls_args(certs: Certs, *extra: str) -> tuple[str, ...]:
    return ("--certfile", str(certs.server_cert), "--keyfile", str(certs.server_key), *extra)


def client_context(certs: Certs, with_cert: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs.ca))
    if with_cert:
        context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    return context


def test_mutual_tls_wsgi_environ_has_the_client_certificate(certs: Certs) -> None:
    args = tls_args(certs, "--ca-certs", str(certs.ca), "--cert-reqs", "required")
    with run_server(WSGI, *args) as server:
        with httpx.Client(verify=client_context(certs), timeout=10) as client:
            seen = json.loads(client.get(server.url).text)
        assert seen["scheme"] == "https"
        assert seen["SSL_CLIENT_VERIFY"] == "SUCCESS"
        assert seen["SSL_CLIENT_S_DN"] == "CN=test-client,O=prefork-tests"
        assert seen["SSL_CLIENT_I_DN"] == "CN=prefork test CA"
        assert seen["SSL_CLIENT_CERT"].startswith("-----BEGIN CERTIFICATE-----")
        assert seen["SSL_CLIENT_CERT"].split() == certs.client_cert.read_text().split()
        assert re.fullmatch(r"[0-9A-F]+", seen["SSL_CLIENT_M_SERIAL"])
        assert seen["SSL_PROTOCOL"] == "TLSv1.3"
        # Without a certificate the handshake itself is refused.
        client = httpx.Client(verify=client_context(certs, with_cert=False), timeout=10)
        with client, pytest.raises(httpx.HTTPError):
            client.get(server.url)


def test_mutual_tls_asgi_tls_extension(certs: Certs) -> None:
    args = tls_args(certs, "--ssl-ca-certs", str(certs.ca), "--ssl-cert-reqs", "1")
    with run_server(ASGI, *args) as server:
        with httpx.Client(verify=client_context(certs), timeout=10) as client:
            tls = json.loads(client.get(server.url).text)["tls"]
        assert tls["client_cert_name"] == "CN=test-client,O=prefork-tests"
        assert len(tls["client_cert_chain"]) == 1
        assert tls["client_cert_chain"][0].startswith("-----BEGIN CERTIFICATE-----")
        assert tls["client_cert_error"] is None
        assert tls["tls_version"] == 0x0304
        assert tls["cipher_suite"] in (0x1301, 0x1302, 0x1303)  # the TLS 1.3 suites
        # --cert-reqs optional (uvicorn's 1): a client without a certificate is served.
        with httpx.Client(verify=client_context(certs, with_cert=False), timeout=10) as client:
            assert json.loads(client.get(server.url).text)["tls"]["client_cert_name"] is None


def test_plain_tls_connection_details(certs: Certs) -> None:
    with run_server(WSGI, *tls_args(certs, "--tls-min-version", "1.3")) as server:
        with httpx.Client(verify=client_context(certs, with_cert=False), timeout=10) as client:
            seen = json.loads(client.get(server.url).text)
        assert seen["SSL_CLIENT_VERIFY"] == "NONE"
        assert "SSL_CLIENT_CERT" not in seen
        # A client that stops at TLS 1.2 is refused by --tls-min-version 1.3.
        old = client_context(certs, with_cert=False)
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with httpx.Client(verify=old, timeout=10) as client, pytest.raises(httpx.HTTPError):
            client.get(server.url)
        # ALPN: a client offering h2 is told http/1.1.
        alpn = client_context(certs, with_cert=False)
        alpn.set_alpn_protocols(["h2", "http/1.1"])
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with raw, alpn.wrap_socket(raw, server_hostname="127.0.0.1") as tls_sock:
            assert tls_sock.selected_alpn_protocol() == "http/1.1"


def test_a_graceful_stop_does_not_wait_for_an_idle_clients_close_notify(certs: Certs) -> None:
    # A pooled client keeps its connection and reads nothing until its next
    # request, so it never answers the worker's close_notify.
    with run_server(WSGI, *tls_args(certs, "--keep-alive", "1")) as server:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        context = client_context(certs, with_cert=False)
        with raw, context.wrap_socket(raw, server_hostname="127.0.0.1") as tls_sock:
            tls_sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert tls_sock.recv(65536).startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            server.proc.wait(40)
            elapsed = time.monotonic() - started
    # Keep-alive (1 s) and the close_notify grace (1 s), not the 30 s graceful timeout.
    assert elapsed < 10, f"the stop took {elapsed:.1f} s"


def test_encrypted_key_with_password(certs: Certs, tmp_path: Path) -> None:
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(
        ["openssl", "pkey", "-in", str(certs.server_key), "-aes256", "-passout", "pass:s3cret",
         "-out", str(encrypted)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    args = ("--certfile", str(certs.server_cert), "--keyfile", str(encrypted))
    client = httpx.Client(verify=client_context(certs, with_cert=False), timeout=10)
    with run_server(WSGI, *args, env={"PREFORK_KEYFILE_PASSWORD": "s3cret"}) as server, client:
        assert client.get(server.url).status_code == 200
    result = run(WSGI, *args, "--keyfile-password", "wrong", "--check-config", cwd=ROOT)
    assert result.returncode == 2
    assert f"TLS: --keyfile {encrypted}: wrong --keyfile-password" in result.stderr
    # Without a password OpenSSL would prompt on the terminal: refused instead.
    result = run(WSGI, *args, "--check-config", cwd=ROOT)
    assert result.returncode == 2
    assert f"TLS: --keyfile {encrypted} is encrypted: give --keyfile-password" in result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--ciphers", "NO-SUCH-CIPHER"), "--ciphers 'NO-SUCH-CIPHER' selects no cipher"),
        (("--ca-certs", "/nonexistent/ca.pem"), "TLS: --ca-certs /nonexistent/ca.pem: No such"),
        (("--cert-reqs", "required"), "--cert-reqs required needs --ca-certs"),
    ],
)
def test_bad_tls_options_are_one_line(certs: Certs, extra: tuple[str, ...], message: str) -> None:
    result = run(WSGI, *tls_args(certs, *extra), "--check-config", cwd=ROOT)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_tls_options_without_a_certificate_are_refused() -> None:
    result = run(WSGI, "--ca-certs", "ca.pem", "--check-config", cwd=ROOT)
    assert result.returncode == 2
    assert "--ca-certs: only with --certfile and --keyfile (TLS)" in result.stderr


def test_gunicorn_ssl_context_hook_builds_the_context(certs: Certs, tmp_path: Path) -> None:
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(
        "import ssl\n"
        "def ssl_context(config, default_ssl_context_factory):\n"
        "    context = default_ssl_context_factory()\n"
        "    context.minimum_version = ssl.TLSVersion.TLSv1_3\n"
        "    return context\n"
    )
    with run_server(WSGI, *tls_args(certs), "-c", str(conf)) as server:
        old = client_context(certs, with_cert=False)
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        client = httpx.Client(verify=old, timeout=10)
        with client, pytest.raises(httpx.HTTPError):
            client.get(server.url)
        with httpx.Client(verify=client_context(certs, with_cert=False), timeout=10) as client:
            assert client.get(server.url).status_code == 200


def test_a_failing_ssl_context_hook_stops_prefork(certs: Certs, tmp_path: Path) -> None:
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text("def ssl_context(config, factory):\n    return None\n")
    result = run(WSGI, *tls_args(certs), "-c", str(conf), "--check-config", cwd=ROOT)
    assert result.returncode == 2
    assert "TLS: the ssl_context hook must return an ssl.SSLContext" in result.stderr


def test_reload_reads_the_certificate_again_and_a_bad_one_keeps_the_old(
    certs: Certs, tmp_path: Path
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(certs.server_cert.read_bytes())
    key.write_bytes(certs.server_key.read_bytes())
    with run_server(WSGI, "--certfile", str(cert), "--keyfile", str(key)) as server:
        cert.unlink()
        mark = len(server.lines)
        server.signal(signal.SIGHUP)
        failed = rf"Reload failed: config: TLS: --certfile {re.escape(str(cert))}: No such file"
        server.wait_for_log(failed, start=mark)
        with httpx.Client(verify=client_context(certs, with_cert=False), timeout=10) as client:
            assert client.get(server.url).status_code == 200  # the old workers serve on
        cert.write_bytes(certs.server_cert.read_bytes())
        mark = len(server.lines)
        server.signal(signal.SIGHUP)
        server.wait_for_log(r"Reload complete", start=mark)
        with httpx.Client(verify=client_context(certs, with_cert=False), timeout=10) as client:
            assert client.get(server.url).status_code == 200
