"""The master's side of prefork imports in one direction: no cycle reaches it.

The command line dispatches to the control client, `systemd-unit` and the
master; none of those imports the command line back (the serve options
live in arguments.py), and the control client's views take the request
function as an argument instead of importing the client.
"""

from __future__ import annotations

import pytest

from tests.quality.imports import cycles, module_graph, unit_graph

MASTER_SIDE = ("prefork.cli", "prefork.control", "prefork.master", "prefork.systemd_unit")


def _on_master_side(name: str) -> bool:
    return any(name == unit or name.startswith(unit + ".") for unit in MASTER_SIDE)


@pytest.mark.parametrize("level", ["module", "unit"])
def test_no_import_cycle_reaches_the_master_side(level: str) -> None:
    modules = module_graph()
    graph = modules if level == "module" else unit_graph(modules)
    offending = [c for c in cycles(graph) if any(_on_master_side(name) for name in c)]
    assert offending == []
