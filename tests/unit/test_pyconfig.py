"""Python config files (gunicorn.conf.py): names, values, hooks and errors, loaded in-process."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from prefork import config
from prefork.cpus import WorkerCount
from prefork.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, text: str) -> config.Config:
    path = write(tmp_path / "gunicorn.conf.py", text)
    return config.load({"app": "app:x", "config": str(path)}, environ={}, cwd=tmp_path)


def test_gunicorn_names_map_to_prefork_settings(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """
        import ssl
        bind = ["0.0.0.0:8000", "unix:/run/app.sock"]
        workers = 4
        worker_class = "uvicorn.workers.UvicornWorker"
        worker_connections = 500
        keepalive = 10
        preload_app = True
        raw_env = ["A=1"]
        pidfile = "/run/app.pid"
        proc_name = "shop"
        accesslog = "-"
        errorlog = "-"
        loglevel = "warning"
        access_log_format = "%(h)s %(s)s"
        user = 1000
        certfile = "c.pem"
        keyfile = "k.pem"
        ca_certs = "ca.pem"
        cert_reqs = ssl.CERT_REQUIRED
        keep_alive_helper = 3      # not a setting of anyone's: ignored
        def on_starting(server):
            pass
        """,
    )
    assert settings.bind == ("0.0.0.0:8000", "unix:/run/app.sock")
    assert settings.workers == WorkerCount(4)
    assert settings.interface == "asgi"
    assert settings.limit_concurrency == 500
    assert settings.keep_alive == 10.0
    assert settings.preload is True
    assert settings.env == ("A=1",)
    assert (settings.pid, settings.name, settings.user) == ("/run/app.pid", "shop", "1000")
    assert (settings.access_logfile, settings.log_level) == ("-", "warning")
    assert settings.cert_reqs == "required"
    assert set(settings.hooks) == {"on_starting"}
    assert settings.file_warnings == ()


def test_prefork_names_take_prefork_values(tmp_path: Path) -> None:
    # Only gunicorn's worker_class speaks in worker classes; prefork's own
    # `interface` takes auto, asgi, wsgi (it was once read as a worker class).
    assert load(tmp_path, "interface = 'asgi'\n").interface == "asgi"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("workers = 'lots'\n", r"gunicorn.conf.py: workers: invalid value 'lots'"),
        ("worker_class = 'gevent'\n", r"worker_class 'gevent': prefork has no green-thread"),
        ("x = 1\nraise RuntimeError('boom')\n", r"gunicorn.conf.py, line 2: RuntimeError: boom"),
        ("post_fork = 3\n", r"post_fork must be a function"),
        ("keepalive = 2\nkeep_alive = 3\n", r"keep_alive and keep_alive set the same setting"),
    ],
)
def test_bad_python_config_is_one_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, text)
