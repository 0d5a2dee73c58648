"""The compiler that builds the hot path is the one the suite type-checks with.

pyproject.toml pins mypy (mypyc) and its dependencies exactly for the build
(setup.py); constraints.txt pins the test environment.  A refresh of one
without the other would compile with a mypy the suite never ran.
"""

from __future__ import annotations

import re
import tomllib

from tests.server import ROOT


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s;#]+)", line.strip())
        if match:
            pins[match[1].lower().replace("-", "_")] = match[2]
    return pins


def test_the_build_pins_match_the_constraints() -> None:
    build = _pins(tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"])
    constraints = _pins((ROOT / "constraints.txt").read_text().splitlines())
    assert "mypy" in build
    assert {name: constraints.get(name) for name in build} == build
