"""`prefork status` and `prefork top` as text: the master's status answer, laid out.

Pure functions of the status object the master sends (master/status.py
builds it), so every line can be tested without a master.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any


def _size(value: int) -> str:
    size = float(value)
    for unit in ("B", "K", "M"):
        if size < 1024:
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}G"


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Rows as left-aligned columns, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def format_status(status: dict[str, Any]) -> str:
    name = f" [{status['name']}]" if status.get("name") else ""
    scaled = " (set at runtime)" if status.get("scaled") else ""
    lines = [
        f"prefork {status.get('version', '?')}{name}: master pid {status['pid']}, "
        f"{status['state']}, up {status['uptime']:.0f}s",
        f"app {status['app']}, generation {status['generation']}, "
        f"target {status['target']} workers{scaled}",
    ]
    lines += [f"listening at {url}" for url in status.get("listeners", [])]
    if status.get("balance"):
        lines.append(f"balancing: {status['balance']}")
    metric = str(status.get("memory_metric", "rss"))
    header = (
        "SLOT",
        "PID",
        "GEN",
        "STATE",
        "AGE",
        "REQUESTS",
        "INFLIGHT",
        "CONNS",
        "WS",
        metric.upper(),
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
            str(w.get("connections", 0)),
            str(w.get("websockets", 0)),
            _size(int(w.get("memory", w["rss"]))),
            f"{w['cpu']:.1f}",
            str(w["restarts"]),
        )
        for w in status.get("workers", [])
    ]
    rows += [
        (
            str(s["slot"]),
            "-",
            "-",
            _idle_state(s),
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            str(s["restarts"]),
        )
        for s in status.get("idle_slots", [])
    ]
    lines += _table(rows)
    lines += _restart_lines([*status.get("workers", []), *status.get("idle_slots", [])])
    last = status.get("last_reload")
    if last:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["finished"]))
        outcome = "ok" if last["ok"] else "FAILED"
        lines.append(
            f"last reload: {outcome} at {when} (generation {last['generation']}): {last['detail']}"
        )
    return "\n".join(lines)


def _idle_state(slot: dict[str, Any]) -> str:
    if slot.get("errored"):
        return "errored"
    return f"backoff {slot.get('respawn_in', 0):g}s"


def _restart_lines(slots: list[dict[str, Any]]) -> list[str]:
    """`slot 0: 3 restarts (crash 2, memory 1), last: memory at 12:00:01`, per restarted slot."""
    lines = []
    seen = set()
    for slot in sorted(slots, key=lambda s: int(s["slot"])):
        if not slot.get("restarts") or slot["slot"] in seen:
            continue
        seen.add(slot["slot"])
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(slot.get("reasons", {}).items()))
        text = f"slot {slot['slot']}: {slot['restarts']} restarts ({reasons})"
        last = slot.get("last_restart")
        if last:
            when = time.strftime("%H:%M:%S", time.localtime(last["at"]))
            text += f", last: {last['reason']} at {when}"
        lines.append(text)
    return lines


def format_list(statuses: list[dict[str, Any]]) -> str:
    """One line per master, like `pm2 list`."""
    rows: list[tuple[str, ...]] = [
        ("NAME", "PID", "STATE", "WORKERS", "GEN", "UPTIME", "APP", "LISTENING")
    ]
    for status in statuses:
        ready = sum(1 for w in status.get("workers", []) if w["state"] == "ready")
        rows.append(
            (
                status.get("name") or "default",
                str(status["pid"]),
                status["state"],
                f"{ready}/{status['target']}",
                str(status["generation"]),
                f"{status['uptime']:.0f}s",
                status["app"],
                " ".join(status.get("listeners", [])),
            )
        )
    return "\n".join(_table(rows))
