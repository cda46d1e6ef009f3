"""The packages and modules of acr_ci import each other without a cycle.

The graph is read from the source (``ast``), not from ``sys.modules``: every import
counts, at module level, inside functions (lazy imports) and under ``TYPE_CHECKING``.
A node is a top-level unit of the package: a module (``tags``) or a subpackage
(``config``, ``registry``…); imports inside one unit are not edges.

No cycle anywhere, the command layer (``cli``) and ``chain`` included. And three
house rules read off the same source: argparse lives only in the command layer; the
run record is built by the chain and read by the command layer and the front ends, never
imported by a stage; and at most three catch-all handlers (``except Exception``,
``except BaseException`` or a bare ``except`` that does not re-raise) remain, each with a
comment saying why.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import acr_ci

PACKAGE = Path(acr_ci.__file__).parent
RECORD_READERS = (
    "record/",
    "chain.py",
    "cli/",
    "frontends/",
    "platforms/outputs.py",
    "platforms/sinks/",
)
"""Where ``acr_ci.record`` may be imported (relative to the package): its own modules, the
chain that builds it, and the command layer and front ends that write and read it."""
MAX_CATCH_ALLS = 3


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


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def _modules() -> Iterator[tuple[str, ast.Module, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        yield path.relative_to(PACKAGE).as_posix(), ast.parse(text, str(path)), text


def _imports_of(tree: ast.AST, rel: str) -> set[str]:
    """Every dotted name the module at ``rel`` imports (relative imports resolved)."""
    package = ["acr_ci", *rel.removesuffix(".py").split("/")[:-1]]
    return set(_imported(tree, package))


def test_argparse_only_in_the_command_layer() -> None:
    users = [rel for rel, tree, _ in _modules() if "argparse" in _imports_of(tree, rel)]
    assert users, "the command layer uses argparse"
    assert [u for u in users if not u.startswith("cli/")] == []


def _imports_record(tree: ast.AST, rel: str) -> bool:
    names = _imports_of(tree, rel)
    return any(n == "acr_ci.record" or n.startswith("acr_ci.record.") for n in names)


def test_no_stage_imports_the_record() -> None:
    importers = [rel for rel, tree, _ in _modules() if _imports_record(tree, rel)]
    assert "chain.py" in importers and "cli/run.py" in importers
    assert [r for r in importers if not r.startswith(RECORD_READERS)] == []


def _swallows(handler: ast.ExceptHandler) -> bool:
    """A catch-all handler that does not end by re-raising."""
    kind = handler.type
    names = {"Exception", "BaseException"}
    catch_all = kind is None or (isinstance(kind, ast.Name) and kind.id in names)
    return catch_all and not (handler.body and isinstance(handler.body[-1], ast.Raise))


def test_few_catch_alls_each_explained() -> None:
    found: list[str] = []
    for rel, tree, text in _modules():
        lines = text.splitlines()
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler) and _swallows(node):
                line = lines[node.lineno - 1]
                assert "#" in line, f"{rel}:{node.lineno}: a catch-all says why: {line.strip()}"
                found.append(f"{rel}:{node.lineno}")
    assert 1 <= len(found) <= MAX_CATCH_ALLS, found
