"""`--workers max` under taskset: the banner and the worker count of a real master."""

from __future__ import annotations

import shutil

import pytest

from tests.server import Serve

APP = "tests.apps.proc_app:wsgi"


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset not installed")
def test_workers_max_under_taskset_is_one(serve: Serve) -> None:
    server = serve(APP, "--workers", "max", command_prefix=["taskset", "-c", "0"])
    server.wait_for_log(r"Workers: 1 \(max: 1 usable CPU\)")
    server.wait_for_log(r"Ready: 1 worker serving")
    assert len(server.worker_pids()) == 1
