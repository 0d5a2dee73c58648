"""Real gunicorn and uvicorn command lines, with the program name changed to prefork.

Each one either resolves to the settings it means (checked through
`--print-config`, the effective configuration) or is refused with one line
saying what to use instead, exit status 2.
"""

from __future__ import annotations

import re
import shlex
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest

from prefork import compat, config
from prefork.errors import EXIT_OK
from tests.integration.test_cli import one_line_error, run
from tests.server import ROOT, run_server

WORKS: list[tuple[str, dict[str, Any]]] = [
    (
        "gunicorn myproject.wsgi:application --bind 0.0.0.0:8000 --workers 3",
        {"app": "myproject.wsgi:application", "bind": ["0.0.0.0:8000"], "workers": "3"},
    ),
    (
        "gunicorn -w 4 -k uvicorn.workers.UvicornWorker main:app",
        {"workers": "4", "interface": "asgi"},
    ),
    (
        "gunicorn --workers=2 --threads=4 --worker-class=gthread app:app",
        {"workers": "2", "threads": 4, "interface": "wsgi"},
    ),
    (
        "gunicorn -b unix:/run/app.sock --access-logfile - --error-logfile - app:app",
        {"bind": ["unix:/run/app.sock"], "access_logfile": "-", "error_logfile": "-"},
    ),
    (
        "gunicorn app:app --timeout 120 --graceful-timeout 30 --keep-alive 5 "
        "--max-requests 1000 --max-requests-jitter 50",
        {"timeout": 120.0, "keep_alive": 5.0, "max_requests": 1000, "max_requests_jitter": 50},
    ),
    (
        "gunicorn app:app --preload --capture-output --error-logfile /var/log/app.log",
        {"preload": True, "capture_output": True, "error_logfile": "/var/log/app.log"},
    ),
    (
        "gunicorn app:app -e DJANGO_SETTINGS_MODULE=proj.settings -e DEBUG=0 "
        "--pythonpath /srv/app,/srv/lib --worker-connections 500",
        {
            "env": ["DJANGO_SETTINGS_MODULE=proj.settings", "DEBUG=0"],
            "pythonpath": ["/srv/app", "/srv/lib"],
            "limit_concurrency": 500,
        },
    ),
    (
        "gunicorn --certfile cert.pem --keyfile key.pem --ca-certs ca.pem --cert-reqs 2 app:app",
        {"certfile": "cert.pem", "ca_certs": "ca.pem", "cert_reqs": "required"},
    ),
    (
        "gunicorn app:app --worker-tmp-dir /dev/shm --log-level info",
        {"log_level": "info"},
    ),
    ("uvicorn main:app --host 0.0.0.0 --port 80", {"bind": ["0.0.0.0:80"]}),
    ("uvicorn main:app --port 9000", {"bind": ["127.0.0.1:9000"]}),
    (
        "uvicorn main:app --uds /tmp/uvicorn.sock --proxy-headers --forwarded-allow-ips='*'",
        {"bind": ["unix:/tmp/uvicorn.sock"], "forwarded_allow_ips": ["*"]},
    ),
    (
        "uvicorn main:app --workers 4 --limit-max-requests 10000 --timeout-keep-alive 30 "
        "--timeout-graceful-shutdown 10",
        {"workers": "4", "max_requests": 10000, "keep_alive": 30.0, "graceful_timeout": 10.0},
    ),
    (
        "uvicorn main:app --ssl-keyfile key.pem --ssl-certfile cert.pem "
        "--ssl-keyfile-password secret --ssl-cert-reqs 1 --ssl-ca-certs ca.pem",
        {"certfile": "cert.pem", "keyfile": "key.pem", "cert_reqs": "optional"},
    ),
    (
        "uvicorn main:app --no-access-log --log-level warning --loop uvloop --http httptools",
        {"log_level": "warning"},
    ),
    (
        "uvicorn main:app --reload --reload-dir src --reload-include '*.html'",
        {"reload": True, "reload_dirs": ["src"], "reload_includes": ["*.html"]},
    ),
    (
        "uvicorn main:create_app --factory --root-path /api --no-server-header --backlog 4096 "
        "--limit-concurrency 100 --no-proxy-headers",
        {
            "factory": True,
            "root_path": "/api",
            "server_header": False,
            "backlog": 4096,
            "limit_concurrency": 100,
            "forwarded_allow_ips": [],
        },
    ),
]

REFUSED: list[tuple[str, str]] = [
    ("gunicorn -D app:app", "-D is not supported: prefork does not daemonize"),
    ("gunicorn -k gevent --worker-connections 1000 app:app", "no green-thread workers"),
    ("gunicorn app:app --reload --reload-extra-file t.html", "--reload-include GLOB"),
    ("gunicorn app:app --statsd-host localhost:8125", "--metrics-bind"),
    ("gunicorn app:app --paste development.ini", "serve the WSGI callable directly"),
    ("gunicorn app:app --log-syslog", "let journald or the container runtime collect it"),
    ("gunicorn -k mypackage.CustomWorker app:app", "unknown worker class"),
]


def effective(args: list[str], cwd: Path) -> tuple[dict[str, Any], str]:
    result = run(*args, "--print-config", cwd=cwd)
    assert result.returncode == EXIT_OK, result.stderr
    return tomllib.loads(result.stdout), result.stderr


@pytest.mark.parametrize(("command", "expected"), WORKS, ids=[c for c, _ in WORKS])
def test_command_line_works(tmp_path: Path, command: str, expected: dict[str, Any]) -> None:
    args = shlex.split(command)[1:]
    settings, stderr = effective(args, tmp_path)
    for name, value in expected.items():
        assert settings.get(name) == value, (name, settings)
    if "keyfile-password" in command:
        assert "secret" not in str(settings)  # --print-config never shows it
    warnings = stderr.splitlines()
    if "--worker-tmp-dir" in command:
        assert warnings == [
            "prefork: warning: --worker-tmp-dir ignored: not needed: workers report their "
            "heartbeat over a socket, not a file"
        ]
    else:  # --loop uvloop, --http httptools, --proxy-headers ask for what prefork does
        assert warnings == []


@pytest.mark.parametrize(("command", "guidance"), REFUSED, ids=[c for c, _ in REFUSED])
def test_command_line_refused_with_guidance(tmp_path: Path, command: str, guidance: str) -> None:
    line = one_line_error(run(*shlex.split(command)[1:], cwd=tmp_path))
    assert guidance in line


def test_uvicorn_host_port_and_uds_serve(tmp_path: Path) -> None:
    sock = tmp_path / "app.sock"
    args = ("--host", "127.0.0.1", "--port", "0", "--uds", str(sock))
    with run_server("tests.apps.proc_app:asgi", *args, "-k", "uvicorn.workers.UvicornWorker",
                    bind=()) as server:  # fmt: skip
        assert "Application: tests.apps.proc_app:asgi (asgi, configured)" in server.log
        assert httpx.get(server.url, timeout=10).text.startswith("pid=")
        transport = httpx.HTTPTransport(uds=str(sock))
        with httpx.Client(transport=transport, timeout=10) as client:
            assert client.get("http://localhost/").text.startswith("pid=")


def test_env_and_pythonpath_reach_the_app(tmp_path: Path) -> None:
    (tmp_path / "envapp.py").write_text(
        "import os\n"
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [os.environ['GREETING'].encode()]\n"
    )
    args = ("-e", "GREETING=hello=world", "--pythonpath", str(tmp_path))
    with run_server("envapp:application", *args) as server:
        assert httpx.get(server.url, timeout=10).text == "hello=world"


def test_migrating_md_covers_every_foreign_flag_and_alias() -> None:
    text = (ROOT / "docs" / "migrating.md").read_text()
    flags = [a.flag for f in config.SETTINGS for a in config.meta(f).aliases]
    flags += [flag for foreign in compat.FOREIGN_FLAGS for flag in foreign.flags]
    for flag in flags:
        assert re.search(rf"`{re.escape(flag)}[` =]", text), flag


def test_capture_output_sends_what_the_app_prints_to_the_error_log(tmp_path: Path) -> None:
    (tmp_path / "chatty.py").write_text(
        "import sys\n"
        "def application(environ, start_response):\n"
        "    print('printed by the app')\n"
        "    print('written to stderr', file=sys.stderr, flush=True)\n"
        "    sys.stdout.flush()\n"
        "    start_response('200 OK', [])\n"
        "    return [b'ok']\n"
    )
    error_log = tmp_path / "error.log"
    args = ("--pythonpath", str(tmp_path), "--error-logfile", str(error_log), "--capture-output")
    with run_server("chatty:application", *args, wait_ready=False) as server:
        deadline = time.monotonic() + 30
        while "Ready:" not in (error_log.read_text() if error_log.exists() else ""):
            assert time.monotonic() < deadline, server.log
            time.sleep(0.05)
        url = re.search(r"Listening at: (\S+)", error_log.read_text())
        assert url is not None
        assert httpx.get(url[1], timeout=10).text == "ok"
        while "written to stderr" not in error_log.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert "printed by the app" in error_log.read_text()
