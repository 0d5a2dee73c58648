"""Another local user must not be able to hijack the control socket.

The impostor is a real process of another uid (`nobody`): it listens on the
path a root-run master and client would use, in a directory it owns, as an
attacker would after pre-creating /tmp/prefork-0.  Needs root (to play both).
"""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.server import Serve, Server, control, run_server, runtime_env, start_server, stop_server

WSGI = "tests.apps.proc_app:wsgi"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")

# Binds as root (the test's directories are not reachable by nobody), hands
# the file to nobody, then listens as nobody: SO_PEERCRED reports the uid of
# whoever called listen().  Answers every request as a master would.
IMPOSTOR = """\
import json, os, pwd, socket, sys
path = sys.argv[1]
nobody = pwd.getpwnam("nobody")
sock = socket.socket(socket.AF_UNIX)
sock.bind(path)
os.chown(path, nobody.pw_uid, nobody.pw_gid)
os.setgid(nobody.pw_gid)
os.setuid(nobody.pw_uid)
sock.listen(8)
print("listening", flush=True)
while True:
    client, _ = sock.accept()
    client.recv(65536)
    fake = {"ok": True, "result": "ok", "pid": 1, "name": "victim", "app": "evil:app",
            "version": "6.6.6", "uptime": 1.0, "generation": 1, "target": 1,
            "state": "running", "listeners": [], "last_reload": None, "workers": []}
    client.sendall(json.dumps(fake).encode() + b"\\n")
    client.close()
"""


def nobody() -> pwd.struct_passwd:
    return pwd.getpwnam("nobody")


@contextmanager
def impostor(path: Path) -> Iterator[None]:
    proc = subprocess.Popen(
        [sys.executable, "-c", IMPOSTOR, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "listening\n"
        yield
    finally:
        proc.kill()
        proc.wait(5)
        assert proc.stdout is not None
        proc.stdout.close()


def hijacked_runtime(tmp_path: Path) -> tuple[Path, Path]:
    """$XDG_RUNTIME_DIR whose prefork/ directory another user created first."""
    runtime = Path(runtime_env(tmp_path)["XDG_RUNTIME_DIR"])
    directory = runtime / "prefork"
    directory.mkdir(mode=0o700)
    os.chown(directory, nobody().pw_uid, nobody().pw_gid)
    return runtime, directory


def refused_start(runtime: Path, *args: str) -> Server:
    """Start a master with this $XDG_RUNTIME_DIR; it must exit 1 at once."""
    server = start_server(WSGI, *args, env={"XDG_RUNTIME_DIR": str(runtime)}, wait_ready=False)
    try:
        assert server.wait(20) == 1
    finally:
        stop_server(server)
    return server


def test_the_master_refuses_a_directory_another_user_owns(tmp_path: Path) -> None:
    runtime, directory = hijacked_runtime(tmp_path)
    with impostor(directory / "victim.sock"):
        server = refused_start(runtime, "--name", "victim")
    assert server.lines[-1] == (
        f"prefork: error: unsafe control socket directory {directory}: it belongs to uid "
        f"{nobody().pw_uid}, not to you (uid 0); remove it or choose another --control-socket"
    )
    assert not any("Booting worker" in line for line in server.lines)


def test_the_client_refuses_to_talk_to_an_impostor(tmp_path: Path) -> None:
    runtime, directory = hijacked_runtime(tmp_path)
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    sock = directory / "victim.sock"
    with impostor(sock):
        for args in (("status", "--name", "victim"), ("stop", "--name", "victim"), ("status",)):
            result = control(*args, env=env)
            assert (result.returncode, result.stdout) == (1, ""), args
            assert result.stderr.startswith(
                f"prefork: error: unsafe control socket directory {directory}: it belongs to uid "
            )
        # Named explicitly, the socket is reached, and its owner gives it away.
        result = control("stop", "--socket", str(sock))
        assert (result.returncode, result.stdout) == (1, "")
        assert result.stderr == (
            f"prefork: error: refusing to talk to {sock}: it is answered by uid "
            f"{nobody().pw_uid}, neither you nor root\n"
        )


@pytest.mark.parametrize("kind", ["open to others", "symlink"])
def test_the_default_directory_must_be_private_and_real(tmp_path: Path, kind: str) -> None:
    env = runtime_env(tmp_path)
    directory = Path(env["XDG_RUNTIME_DIR"]) / "prefork"
    if kind == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        directory.symlink_to(tmp_path / "elsewhere")
        expected = "it is a symlink"
    else:
        directory.mkdir()
        directory.chmod(0o755)
        expected = "mode 0755 lets other users in; it must be 0700 (chmod 700 it)"
    server = refused_start(Path(env["XDG_RUNTIME_DIR"]))
    assert server.lines[-1] == (
        f"prefork: error: unsafe control socket directory {directory}: {expected}"
    )


def test_a_second_master_of_the_same_name_says_so_loudly(tmp_path: Path) -> None:
    env = runtime_env(tmp_path)
    with (
        run_server(WSGI, "--name", "twin", env=env) as first,
        run_server(WSGI, "--name", "twin", env=env) as second,
    ):
        line = second.wait_for_log(r"\[ERROR\] No control socket for this master").string
        assert f"another prefork master (pid {first.pid}) already listens on " in line
        assert "Give this master its own --name or --control-socket" in line
        status = control("status", "--name", "twin", env=env)
        assert f"master pid {first.pid}" in status.stdout


# Connects as nobody: from inside the socket's directory (its parents are
# closed to nobody), after dropping privileges, so SO_PEERCRED names nobody.
CLIENT_AS_NOBODY = """\
import os, pwd, socket
nobody = pwd.getpwnam("nobody")
os.setgid(nobody.pw_gid)
os.setuid(nobody.pw_uid)
sock = socket.socket(socket.AF_UNIX)
sock.connect("ctl.sock")
try:
    sock.sendall(b'{"cmd": "stop"}\\n')
    print(repr(sock.recv(65536)))
except ConnectionError:  # reset, or a broken pipe if closed before the send
    print("closed")
"""


def test_the_master_answers_no_other_user(tmp_path: Path, serve: Serve) -> None:
    directory = tmp_path / "ctl"
    directory.mkdir(mode=0o711)  # others may look up names, not list or write
    sock = directory / "ctl.sock"
    server = serve(WSGI, "--control-socket", str(sock))
    sock.chmod(0o666)  # only SO_PEERCRED stands in the way now
    result = subprocess.run(
        [sys.executable, "-c", CLIENT_AS_NOBODY],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout in ("b''\n", "closed\n")  # closed unanswered
    assert server.proc.poll() is None
    assert "Handling signal: term" not in server.log
