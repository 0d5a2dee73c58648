"""The control command line: argument errors, listing every master, PM2-style words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.server import control, run_server, runtime_env

WSGI = "tests.apps.proc_app:wsgi"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("scale", "+-3"), "scale needs a worker count: N, +N or -N, not '+-3'"),
        (("scale", "-+3"), "unrecognized arguments: -+3"),
        (("scale", "3x"), "scale needs a worker count"),
        (("scale",), "scale needs a worker count"),
        (("status", "now"), "status takes no argument"),
        (("reload", "--timeout", "-1"), "--timeout must be a number of seconds >= 0"),
        (("reload", "--timeout", "soon"), "argument --timeout: invalid float value: 'soon'"),
        (("stop", "--timeout", "inf"), "--timeout must be a number of seconds >= 0"),
        (("top", "--interval", "0"), "--interval must be a positive number of seconds"),
        (("top", "--interval", "nan"), "--interval must be a positive number of seconds"),
        (("reload", "--json"), "--json applies to status only"),
        (("status", "--socket"), "argument --socket/-s: expected one argument"),
        (("status", "--bogus"), "unrecognized arguments: --bogus"),
    ],
)
def test_argument_errors_are_one_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], fragment: str
) -> None:
    result = control(*args, "--name", "nobody-here", env={"XDG_RUNTIME_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("prefork: error: ")
    assert fragment in lines[0]


def test_status_without_a_name_lists_every_master(tmp_path: Path) -> None:
    env = runtime_env(tmp_path)
    runtime = Path(env["XDG_RUNTIME_DIR"])
    with (
        run_server(WSGI, "--name", "shop", env=env) as shop,
        run_server(WSGI, "--name", "api", "-w", "2", env=env) as api,
    ):
        result = control("status", env=env)
        assert result.returncode == 0, result.stderr
        header, *rows = result.stdout.splitlines()
        assert header.split()[:5] == ["NAME", "PID", "STATE", "WORKERS", "GEN"]
        assert [row.split()[:5] for row in rows] == [
            ["api", str(api.pid), "running", "2/2", "1"],
            ["shop", str(shop.pid), "running", "1/1", "1"],
        ]
        assert api.url in rows[0]
        listed = json.loads(control("status", "--json", env=env).stdout)
        assert [(s["name"], s["pid"]) for s in listed] == [("api", api.pid), ("shop", shop.pid)]
        # A stale socket file (its master was killed) is not a master.
        (runtime / "prefork" / "gone.sock").touch()
        assert len(control("status", env=env).stdout.splitlines()) == 3
    result = control("status", env=env)
    assert result.returncode == 1
    assert result.stderr == (
        f"prefork: error: no prefork master is running (no control socket in {runtime}/prefork)\n"
    )


@pytest.mark.parametrize(
    ("word", "answer"),
    [
        ("restart", "use `prefork reload`"),
        ("list", "use `prefork status`"),
        ("ls", "use `prefork status`"),
        ("log", "did you mean `prefork logs`"),
        ("monit", "use `prefork top`"),
        ("start", "use `prefork APP` to serve"),
        ("delete", "use `prefork stop`"),
        ("relaod", "did you mean `prefork reload`"),
        ("stauts", "did you mean `prefork status`"),
    ],
)
def test_pm2_words_and_typos_get_the_right_command(tmp_path: Path, word: str, answer: str) -> None:
    result = control(word, "-b", "127.0.0.1:0", "--app-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"prefork: error: {word!r} is not a prefork command: {answer}")
    assert result.stderr.endswith(f"; to serve a module named {word}, write {word}:application\n")
    assert "Listening" not in result.stderr  # answered before binding anything


def test_a_real_module_named_like_a_command_is_still_served(tmp_path: Path) -> None:
    (tmp_path / "restart.py").write_text(
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [b'']\n"
    )
    result = control("restart", "--app-dir", str(tmp_path), "--check-config")
    assert (result.returncode, result.stdout) == (0, "config OK; restart is a wsgi application\n")
