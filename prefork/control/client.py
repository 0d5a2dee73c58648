"""`prefork status|reload|scale|stop`: talk to a running master over its control socket.

    prefork status [--json]          workers, their state and counters, last reload
    prefork status                   (no --name, no --socket) every master of this user
    prefork reload [--timeout S]     rolling reload (same as SIGHUP); waits for the outcome
    prefork scale N | +N | -N        set, or change, the worker count; waits until all are ready
    prefork stop [--timeout S]       graceful stop (same as SIGTERM); waits until it exited
    prefork top [--interval S]       status and latest log lines (0-9: one worker) until q
    prefork logs [-f] [--lines N]    recent lines of the master and workers (--worker K)

The socket is found from --socket, else --name (as the server's --name),
else the default path (see prefork.control.default_path).  Exit status 1 with
one line on stderr when no master answers, or when the one answering is not
run by this user or root.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from prefork.arguments import OneLineParser
from prefork.control import (
    check_directory,
    default_directory,
    default_path,
    peer_credentials,
    trusted_uid,
)
from prefork.control.display import format_list, format_status
from prefork.control.protocol import (
    ReloadRequest,
    Request,
    ScaleRequest,
    StatusRequest,
    StopRequest,
)
from prefork.errors import (
    EXIT_RUNTIME,
    EXIT_USAGE,
    ControlError,
    ControlTimeout,
    NoMasterError,
)

CONNECT_TIMEOUT: Final = 5.0
# How long reload, scale and stop wait for their outcome by default: a reload
# of a large pool takes workers / --reload-batch boot times, and a stop takes
# up to --graceful-timeout (30 s by default).
DEFAULT_WAIT: Final = 120.0
COMMANDS: Final = ("status", "top", "reload", "scale", "stop", "logs")
WAITING_COMMANDS: Final = ("reload", "scale", "stop")
COUNT: Final = re.compile(r"[+-]?[0-9]+")

OUTCOMES: Final = """\
`reload`, `scale` and `stop` wait for the outcome and print it: `reloaded:
generation 3: 4 workers ready`, `scaled to 4 workers, all ready`, `stopped`.
They exit 0 when it succeeded, 1 when it failed (`reload failed: ...`, a new
worker died before it was ready, no master answers), 2 when the request was
refused as wrong (`scale 0`), and 5 when no outcome came within `--timeout`
(default 120 s); the operation then goes on, and `prefork status` shows how it
ended.  `--timeout 0` returns at once with what was started, without waiting.

`prefork status` with neither `--name` nor `--socket` lists every master of
this user that uses the default control socket directory, one line each
(`--json`: a list).  The client talks only to a master run by the same user
or root, through a directory only its owner can use; otherwise it refuses
with one line and exit status 1."""


def request(
    path: str, message: Request, wait: float | None = None, *, private: bool = False
) -> dict[str, Any]:
    """Send one request and return the master's response.

    `wait`: how long the response may take (a waiting reload, scale or stop).
    `private`: the path is in the default directory, which must be ours alone.
    Raises ControlError if no trustworthy master answers, ControlTimeout if
    the response does not come in time.
    """
    if private:
        directory = Path(path).parent
        if not directory.exists():
            raise NoMasterError(f"no prefork master is running (no control socket at {path})")
        check_directory(directory, private=True)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(path)
            _, uid = peer_credentials(sock)
            if not trusted_uid(uid):
                raise ControlError(
                    f"refusing to talk to {path}: it is answered by uid {uid}, neither you nor root"
                )
            sock.sendall(json.dumps(message).encode() + b"\n")
            sock.settimeout(CONNECT_TIMEOUT if wait is None else wait)
            data = bytearray()
            while b"\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        if not data:
            raise ControlError(f"the master at {path} hung up without an answer (did it exit?)")
    except FileNotFoundError:
        raise NoMasterError(f"no prefork master is running (no control socket at {path})") from None
    except ConnectionRefusedError:
        raise NoMasterError(f"no prefork master is running (nothing listens on {path})") from None
    except TimeoutError:
        if wait is None:
            raise ControlError(f"the master at {path} did not answer") from None
        raise ControlTimeout(
            f"no outcome within {wait:g}s; the {message['cmd']} goes on (see prefork status)"
        ) from None
    except OSError as exc:
        raise ControlError(f"cannot reach the master at {path}: {exc.strerror or exc}") from None
    try:
        response = json.loads(bytes(data))
    except ValueError:
        raise ControlError(f"the master at {path} sent an invalid response") from None
    if not isinstance(response, dict):
        raise ControlError(f"the master at {path} sent an invalid response")
    return response


def list_masters(directory: Path) -> list[dict[str, Any]]:
    """The status of every master answering in `directory`, by name.

    Stale socket files (nothing listens) are skipped; a socket answered by
    someone we do not trust is an error, never skipped quietly.
    """
    if not directory.exists():
        return []
    check_directory(directory, private=True)
    statuses = []
    for path in sorted(directory.glob("*.sock")):
        with contextlib.suppress(NoMasterError):
            statuses.append(request(str(path), StatusRequest(cmd="status")))
    return statuses


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="prefork", description="Control a running prefork master.")
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("count", nargs="?", help="scale: N, +N or -N workers")
    parser.add_argument("--socket", "-s", metavar="PATH", help="the master's control socket")
    parser.add_argument("--name", "-n", metavar="NAME", help="the master's --name")
    parser.add_argument("--json", action="store_true", help="status: print JSON")
    parser.add_argument(
        "--interval", type=float, default=1.0, metavar="S", help="top: seconds between refreshes"
    )
    parser.add_argument(
        "--lines", type=int, default=50, metavar="N", help="logs: how many recent lines (0: all)"
    )
    parser.add_argument("--follow", "-f", action="store_true", help="logs: keep printing")
    parser.add_argument("--worker", type=int, metavar="K", help="logs: only worker slot K")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_WAIT,
        metavar="S",
        help=f"reload, scale, stop: seconds to wait for the outcome (default {DEFAULT_WAIT:g}; "
        "0: do not wait)",
    )
    return parser


def _message(parser: OneLineParser, args: Any) -> Request | None:
    """The request for the parsed command line (None for top and logs, which send
    their own); every argument error is a usage error."""
    text = (args.count or "").strip()
    if args.command == "scale":
        if not COUNT.fullmatch(text):
            parser.error(f"scale needs a worker count: N, +N or -N, not {text!r}")
    elif args.count is not None:
        parser.error(f"{args.command} takes no argument (got {args.count!r})")
    if not (math.isfinite(args.timeout) and args.timeout >= 0):
        parser.error("--timeout must be a number of seconds >= 0")
    if not (math.isfinite(args.interval) and args.interval > 0):
        parser.error("--interval must be a positive number of seconds")
    if args.json and args.command != "status":
        parser.error("--json applies to status only")
    if args.lines < 0:
        parser.error("--lines must be 0 (all) or more")
    wait = args.command in WAITING_COMMANDS and args.timeout > 0
    if args.command == "scale":
        return ScaleRequest(cmd="scale", workers=int(text), relative=text[0] in "+-", wait=wait)
    if args.command == "reload":
        return ReloadRequest(cmd="reload", wait=wait)
    if args.command == "stop":
        return StopRequest(cmd="stop", wait=wait)
    if args.command == "status":
        return StatusRequest(cmd="status")
    return None


def main(argv: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv))
    message = _message(parser, args)
    private = args.socket is None
    path = args.socket or default_path(args.name)
    if args.command == "logs":
        from prefork.control import logs

        return logs.show(
            lambda m: request(path, m, private=private), args.lines, args.follow, args.worker
        )
    try:
        if args.command == "top":
            from prefork.control.top import top

            return top(lambda m: request(path, m, private=private), path, args.interval)
        if args.command == "status" and args.socket is None and args.name is None:
            return _list(args.json)
        assert message is not None  # every other command has a request
        wait = args.timeout if message.get("wait") else None
        response = request(path, message, wait, private=private)
    except ControlError as exc:
        print(f"prefork: error: {exc}", file=sys.stderr)
        return exc.exit_status
    if not response.get("ok"):
        print(f"prefork: error: {response.get('error', 'the master refused')}", file=sys.stderr)
        return EXIT_USAGE if response.get("usage") else EXIT_RUNTIME
    if args.command == "status":
        if args.json:
            print(json.dumps({k: v for k, v in response.items() if k != "ok"}, indent=2))
        else:
            print(format_status(response))
    else:
        print(response.get("result", "ok"))
    return 0


def _list(as_json: bool) -> int:
    directory = default_directory()
    statuses = [{k: v for k, v in s.items() if k != "ok"} for s in list_masters(directory)]
    if as_json:
        print(json.dumps(statuses, indent=2))
        return 0
    if not statuses:
        raise NoMasterError(f"no prefork master is running (no control socket in {directory})")
    print(format_list(statuses))
    return 0
