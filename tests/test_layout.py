"""The package's layout: no import circles among SmartMirror's own modules.

The graph is read from the source (AST), not from a running interpreter, so an import hidden inside a function
still counts: ``import smartmirror.x`` and ``from smartmirror.x import y`` at module level or inside a function
are edges (``y`` counts as the module ``smartmirror.x.y`` where that file exists). Imports under
``if TYPE_CHECKING:`` never run and are left out, as are the implicit imports of parent packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "smartmirror"


def _module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root`` (a package's name maps to its ``__init__``)."""
    names: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """Every import in ``tree`` outside ``if TYPE_CHECKING:``, as (module, names taken from it)."""
    found: list[tuple[str, list[str]]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((base, [alias.name for alias in node.names]))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the project modules it imports; ``from p import m`` is an edge to ``p.m`` where that is a module."""
    names = _module_names(root)
    graph: dict[str, set[str]] = {}
    for module, path in names.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        for base, taken in _imports(tree, module, path.name == "__init__.py"):
            submodules = {f"{base}.{name}" for name in taken} & names.keys()
            targets |= submodules
            if len(submodules) < len(taken) or not taken:
                targets.add(base)
        graph[module] = {target for target in targets if target in names and target != module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as one closed path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def connect(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
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
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_closed_path(graph, component) for component in components]


def _closed_path(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One shortest circle through the component's first module, ``[a, b, ..., a]`` (breadth-first)."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {start: start}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & members):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if target not in previous:
                    previous[target] = node
                    following.append(target)
        frontier = following
    return [*component, start]


def test_the_checker_sees_a_circle_hidden_in_a_function(tmp_path):
    package = tmp_path / "smartmirror"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "a.py").write_text("from smartmirror.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from smartmirror.sub.a import thing\n")
    (package / "sub" / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from smartmirror.sub.a import thing\n"
    )
    graph = import_graph(package)
    assert graph["smartmirror.sub.a"] == {"smartmirror.sub.b"}
    assert graph["smartmirror.sub.c"] == set()
    assert find_cycles(graph) == [["smartmirror.sub.a", "smartmirror.sub.b", "smartmirror.sub.a"]]


def test_no_import_circles_among_smartmirror_modules():
    cycles = find_cycles(import_graph())
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)
