"""`prefork status|reload|scale|stop`: talk to a running master over its control socket.

    prefork status [--json]          workers, their state and counters, last reload
    prefork reload                   rolling reload (same as SIGHUP)
    prefork scale N | +N | -N        set, or change, the worker count
    prefork stop                     graceful stop (same as SIGTERM)
    prefork top [--interval S]       the status table, refreshed until Ctrl-C
    prefork logs [-f] [--lines N]    recent lines of the master and workers (--worker K)

The socket is found from --socket, else --name (as the server's --name),
else the default path (see prefork.control.default_path).  Exit status 1 with
one line on stderr when no master answers.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any, Final

from prefork.control import default_path
from prefork.errors import EXIT_RUNTIME, EXIT_USAGE, ControlError

TIMEOUT: Final = 5.0
COMMANDS: Final = ("status", "top", "reload", "scale", "stop", "logs")
# ANSI: cursor home, then clear to the end of the screen (no flicker, unlike a full clear).
_REDRAW: Final = "\x1b[H\x1b[J"


def request(path: str, message: dict[str, Any], timeout: float = TIMEOUT) -> dict[str, Any]:
    """Send one request and return the master's response; ControlError if unreachable."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(json.dumps(message).encode() + b"\n")
            data = bytearray()
            while b"\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except FileNotFoundError:
        raise ControlError(f"no prefork master is running (no control socket at {path})") from None
    except ConnectionRefusedError:
        raise ControlError(f"no prefork master is running (nothing listens on {path})") from None
    except OSError as exc:
        raise ControlError(f"cannot reach the master at {path}: {exc.strerror or exc}") from None
    try:
        response = json.loads(bytes(data))
    except ValueError:
        raise ControlError(f"the master at {path} sent an invalid response") from None
    if not isinstance(response, dict):
        raise ControlError(f"the master at {path} sent an invalid response")
    return response


def _size(value: int) -> str:
    size = float(value)
    for unit in ("B", "K", "M"):
        if size < 1024:
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}G"


def format_status(status: dict[str, Any]) -> str:
    name = f" [{status['name']}]" if status.get("name") else ""
    lines = [
        f"prefork {status.get('version', '?')}{name}: master pid {status['pid']}, "
        f"{status['state']}, app {status['app']}, generation {status['generation']}, "
        f"target {status['target']} workers, up {status['uptime']:.0f}s",
    ]
    lines += [f"listening at {url}" for url in status.get("listeners", [])]
    header = (
        "SLOT",
        "PID",
        "GEN",
        "STATE",
        "AGE",
        "REQUESTS",
        "INFLIGHT",
        "RSS",
        "CPU%",
        "RESTARTS",
    )
    rows = [header]
    rows += [
        (
            str(w["slot"]),
            str(w["pid"]),
            str(w["generation"]),
            w["state"],
            f"{w['age']:.0f}s",
            str(w["requests"]),
            str(w["inflight"]),
            _size(int(w["rss"])),
            f"{w['cpu']:.1f}",
            str(w["restarts"]),
        )
        for w in status.get("workers", [])
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    last = status.get("last_reload")
    if last:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["finished"]))
        outcome = "ok" if last["ok"] else "FAILED"
        lines.append(
            f"last reload: {outcome} at {when} (generation {last['generation']}): {last['detail']}"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prefork", description="Control a running prefork master."
    )
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
    return parser


def top(path: str, interval: float) -> int:
    """Redraw the status table every `interval` seconds until interrupted."""
    try:
        while True:
            status = request(path, {"cmd": "status"})
            stamp = time.strftime("%H:%M:%S")
            sys.stdout.write(f"{_REDRAW}prefork top - {stamp} - {path}\n\n")
            sys.stdout.write(format_status(status) + "\n")
            sys.stdout.flush()
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0
    except ControlError as exc:
        print(f"prefork: error: {exc}", file=sys.stderr)
        return exc.exit_status


def main(argv: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv))
    path = args.socket or default_path(args.name)
    message: dict[str, Any] = {"cmd": args.command}
    if args.command == "scale":
        text = (args.count or "").strip()
        digits = text.lstrip("+-")
        if not digits.isdigit():
            parser.error("scale needs a worker count: N, +N or -N")
        message["workers"] = int(text)
        message["relative"] = text[0] in "+-"
    elif args.count is not None:
        parser.error(f"{args.command} takes no argument")
    if args.command == "logs":
        if args.lines < 0:
            parser.error("--lines must be 0 (all) or more")
        from prefork.control import logs

        return logs.show(lambda m: request(path, m), args.lines, args.follow, args.worker)
    if args.command == "top":
        if not args.interval > 0:
            parser.error("--interval must be a positive number of seconds")
        return top(path, args.interval)
    try:
        response = request(path, message)
    except ControlError as exc:
        print(f"prefork: error: {exc}", file=sys.stderr)
        return exc.exit_status
    if not response.get("ok"):
        print(f"prefork: error: {response.get('error', 'the master refused')}", file=sys.stderr)
        return EXIT_USAGE if args.command == "scale" else EXIT_RUNTIME
    if args.command == "status":
        if args.json:
            print(json.dumps({k: v for k, v in response.items() if k != "ok"}, indent=2))
        else:
            print(format_status(response))
    else:
        print(response.get("result", "ok"))
    return 0
