"""The layers of ARCHITECTURE.md hold: arrows point down, and nothing imports in a circle.

Read from the source by tests/quality/imports.py, lazy imports included.
"""

from __future__ import annotations

import ast

import pytest

from tests.quality import imports

# What the protocol layer may import besides itself: the error tree, the
# English date names it shares with the logs, and the compiled build's class
# decorator.  Everything else (settings,
# the connection table's gate, metrics, the access log) is handed to it.
HTTP_MAY_IMPORT = frozenset({"prefork.compiled", "prefork.errors", "prefork.wallclock"})
# The interfaces run an app handed to them: they never read the Config, load
# the app or reach into the worker or the master that composed them.
ABOVE_INTERFACES = ("prefork.config", "prefork.loader", "prefork.worker", "prefork.master")


def _every_import(module: str) -> set[str]:
    """The prefork modules `module` names in any import, type-checking ones included."""
    path = imports.ROOT / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = path.with_suffix("") / "__init__.py"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = imports._resolve(module, path.name == "__init__.py", node)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] == "prefork"}


def _in(module: str, units: tuple[str, ...] | frozenset[str]) -> bool:
    return any(module == unit or module.startswith(unit + ".") for unit in units)


def test_http_imports_no_layer_above_it() -> None:
    graph = imports.module_graph()
    http = [module for module in graph if _in(module, ("prefork.http",))]
    assert http
    outside = {
        f"{module} -> {name}"
        for module in http
        for name in _every_import(module)
        if name in graph
        and not _in(name, ("prefork.http",))
        and name not in HTTP_MAY_IMPORT
        and name != "prefork"
    }
    assert not outside, sorted(outside)


@pytest.mark.parametrize("interface", ["prefork.asgi", "prefork.wsgi", "prefork.ws"])
def test_interfaces_are_handed_what_they_run(interface: str) -> None:
    graph = imports.module_graph()
    above = {
        f"{module} -> {name}"
        for module in graph
        if _in(module, (interface,))
        for name in _every_import(module)
        if _in(name, ABOVE_INTERFACES)
    }
    assert not above, sorted(above)


def test_no_import_cycle_at_all() -> None:
    modules = imports.module_graph()
    assert imports.cycles(modules) == []
    assert imports.cycles(imports.unit_graph(modules)) == []
