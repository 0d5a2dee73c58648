"""A forked child that fails before the worker runs logs its traceback before exiting.

The failure is injected through `sitecustomize` (imported by the master at
start-up, inherited by the children through fork): the worker shell's entry
point raises.  Before, the child's `finally: os._exit(1)` swallowed it.
"""

from __future__ import annotations

from pathlib import Path

from tests.server import ROOT, run_server

BREAK_THE_WORKER = """\
from prefork.worker import main


def run(spec):
    raise RuntimeError("the worker shell is broken")


main.run = run
"""


def test_a_child_failing_before_the_worker_logs_its_traceback(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(BREAK_THE_WORKER)
    env = {"PYTHONPATH": f"{tmp_path}:{ROOT}"}
    with run_server("tests.apps.proc_app:wsgi", env=env, wait_ready=False) as server:
        first = server.wait_for_log(r"\[ERROR\] Worker 0 \(pid \d+\) could not start")
        start = server.lines.index(first.string)
        server.wait_for_log(r"^Traceback \(most recent call last\):", start=start)
        server.wait_for_log(r"^RuntimeError: the worker shell is broken", start=start)
