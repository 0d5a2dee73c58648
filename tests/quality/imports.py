"""prefork's import graph, counting imports inside functions too.

A lazy import still couples two modules: it only moves the failure from
import time to the first call.  So the graph is read from the source (every
`import` and `from ... import` statement anywhere in a module, `TYPE_CHECKING`
blocks excepted, since they never run) rather than from `sys.modules`.

Nodes come at two levels: modules (`prefork.http.connection`) and units, a
unit being a top-level module or a subpackage (`prefork.http`).  A cycle at
either level means two pieces cannot be understood, tested or replaced apart.

Run `python -m tests.quality.imports` to print the cycles and each unit's
imports.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "prefork"
ROOT = Path(__file__).resolve().parents[2]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if _is_type_checking_block(node):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        else:
            yield from _import_nodes(node)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def module_graph() -> dict[str, set[str]]:
    """Each prefork module and the prefork modules it imports."""
    modules = {_module_name(path): path for path in sorted((ROOT / PACKAGE).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported: set[str] = set()
        tree = ast.parse(path.read_text(), str(path))
        for node in _import_nodes(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _resolve(name, path.name == "__init__.py", node)
                # `from prefork.http import connection` imports a module.
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for target in targets:
                if target in modules and target != name:
                    imported.add(target)
        # A package's __init__ is imported with any of its modules and holds
        # nothing but the version, so it adds no edge worth tracking.
        graph[name] = {t for t in imported if modules[t].name != "__init__.py"}
    return graph


def unit_of(module: str) -> str:
    """`prefork.http.connection` -> `prefork.http`; `prefork.config` stays."""
    parts = module.split(".")
    return ".".join(parts[:2])


def unit_graph(modules: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, imported in (modules or module_graph()).items():
        unit = unit_of(module)
        edges = graph.setdefault(unit, set())
        edges.update(unit_of(target) for target in imported if unit_of(target) != unit)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def main() -> None:
    modules = module_graph()
    units = unit_graph(modules)
    for level, graph in (("module", modules), ("unit", units)):
        found = cycles(graph)
        print(f"{level} cycles: {len(found)}")
        for component in found:
            print("  " + " ".join(component))
    print("unit imports:")
    for unit in sorted(units):
        print(f"  {unit} -> {' '.join(sorted(units[unit])) or '-'}")


if __name__ == "__main__":
    main()
