"""`--workers max` / `-N` resolution: affinity and cgroup quota.

The banner of a real master under taskset is in tests/integration/test_cpus_taskset.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prefork.cpus import WorkerCount, affinity_cpus, parse_cpu_max

APP = "tests.apps.proc_app:wsgi"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max 100000\n", None),
        ("200000 100000\n", 2),
        ("150000 100000", 2),  # 1.5 CPUs round up
        ("50000 100000", 1),  # at least one
        ("100000 100000", 1),
        ("garbage", None),
        ("", None),
        ("-1 100000", None),
    ],
)
def test_parse_cpu_max(text: str, expected: int | None) -> None:
    assert parse_cpu_max(text) == expected


def test_max_is_affinity_without_quota(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("max 100000\n")
    count, how = WorkerCount.parse("max").resolve(cpu_max)
    assert count == len(os.sched_getaffinity(0))
    assert how.startswith("max: ")


def test_quota_caps_max(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("100000 100000\n")
    count, how = WorkerCount.parse("max").resolve(cpu_max)
    assert count == 1
    if affinity_cpus() > 1:
        assert "cgroup cpu quota" in how


def test_missing_quota_file_means_no_quota(tmp_path: Path) -> None:
    assert WorkerCount.parse("max").resolve(tmp_path / "absent")[0] == affinity_cpus()


def test_minus_n_is_max_minus_n_at_least_one(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("max 100000\n")
    cpus = affinity_cpus()
    assert WorkerCount.parse("-1").resolve(cpu_max)[0] == max(1, cpus - 1)
    assert WorkerCount.parse("-1000").resolve(cpu_max)[0] == 1


def test_plain_count() -> None:
    assert WorkerCount.parse("3").resolve() == (3, "configured")
