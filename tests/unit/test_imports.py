"""The packages and modules of acr_ci import each other without a cycle.

The graph is read from the source (``ast``), not from ``sys.modules``: every import
counts, at module level, inside functions (lazy imports) and under ``TYPE_CHECKING``.
A node is a top-level unit of the package: a module (``tags``) or a subpackage
(``config``, ``registry``…); imports inside one unit are not edges.

The command layer (``cli``, ``__main__``) and ``chain`` sit on top of everything and
are being rewritten; cycles through them are printed but not asserted on.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import acr_ci

PACKAGE = Path(acr_ci.__file__).parent
COMMAND_LAYER = frozenset({"cli", "__main__", "chain"})


def _units() -> set[str]:
    return {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if _is_unit(p)}


def _is_unit(p: Path) -> bool:
    if p.is_dir():
        return (p / "__init__.py").is_file()
    return p.suffix == ".py" and p.stem != "__init__"


def _imported(tree: ast.AST, package: list[str]) -> Iterator[str]:
    """Every dotted name an import statement anywhere in ``tree`` may refer to."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{a.name}" for a in node.names)


def import_graph() -> dict[str, set[str]]:
    """unit → the other units it imports."""
    units = _units()
    graph: dict[str, set[str]] = {u: set() for u in units}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts == ["__init__"]:
            continue
        unit = parts[0]
        package = ["acr_ci", *parts[:-1]]
        for name in _imported(ast.parse(path.read_text(), str(path)), package):
            dotted = name.split(".")
            if dotted[0] == "acr_ci" and len(dotted) > 1 and dotted[1] in units:
                if dotted[1] != unit:
                    graph[unit].add(dotted[1])
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def test_the_graph_is_read() -> None:
    graph = import_graph()
    assert {"config", "tags", "registry", "errors", "hosts"} <= graph.keys()
    assert "errors" in graph["registry"]
    assert "rulesyntax" in graph["tags"]  # a module-level import
    assert "registry" in graph["config"]  # only function-level (lazy) imports


def test_cycle_finder() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "d"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycle_below_the_command_layer() -> None:
    graph = import_graph()
    every = cycles(graph)
    print("import cycles, command layer included:", every or "none")
    below = {u: deps - COMMAND_LAYER for u, deps in graph.items() if u not in COMMAND_LAYER}
    assert cycles(below) == []
