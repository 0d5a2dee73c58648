"""`prefork logs`: the master's recent lines, and with --follow the new ones as they come.

The master keeps the last lines of its own log and of every worker's stdout
and stderr in memory (prefork/master/output.py).  Each line has a sequence
number; `--follow` asks for the lines after the last one it printed, twice a
second, so nothing is printed twice and a reconnect after a master restart
starts over cleanly.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Final

from prefork.control.protocol import LogsRequest, Request
from prefork.errors import ControlError

# client.request, bound to the master's socket (passed in: the client imports this
# module and top.py).  The answer is the master's JSON, unchecked.
Fetch = Callable[[Request], dict[str, Any]]

FOLLOW_INTERVAL: Final = 0.5


def format_entry(entry: list[Any]) -> str:
    """One line of the ring ([seq, time, source, stream, text]) as `logs` and `top` show it."""
    _, _, source, _, text = entry
    return f"{source:>9} | {text}"


def _print(entries: list[Any]) -> int:
    """Print entries; returns the last one's seq (0 for none)."""
    last = 0
    for entry in entries:
        sys.stdout.write(format_entry(entry) + "\n")
        last = entry[0]
    sys.stdout.flush()
    return last


def logs_request(lines: int, worker: int | None, after: int = 0) -> LogsRequest:
    """Ask for the last `lines` lines (0: all) after seq `after`, of one worker if given."""
    message = LogsRequest(cmd="logs", lines=lines, after=after)
    if worker is not None:
        message["worker"] = worker
    return message


def show(fetch: Fetch, lines: int, follow: bool, worker: int | None) -> int:
    """Print the last `lines` lines (of one worker if given); keep following with `follow`."""
    try:
        response = fetch(logs_request(lines, worker))
        if not response.get("ok"):
            print(f"prefork: error: {response.get('error', 'the master refused')}", file=sys.stderr)
            return 1
        after = _print(response["entries"]) or int(response.get("last", 0))
        while follow:
            time.sleep(FOLLOW_INTERVAL)
            response = fetch(logs_request(0, worker, after))
            after = _print(response["entries"]) or after
    except KeyboardInterrupt:
        return 0
    except ControlError as exc:
        print(f"prefork: error: {exc}", file=sys.stderr)
        return exc.exit_status
    return 0
