"""The code's import structure: no import circles anywhere (imports inside functions
count — they are how circles hide), and the core package `persona` imports none of the
edges (bot, trainer, ingest, web, demo). Read from the source with `ast`; nothing is
imported, so the test also holds for modules whose dependencies are optional."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("persona", "bot", "trainer", "ingest", "web", "demo")
EDGES = frozenset(PACKAGES) - {"persona"}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `name` imports anywhere in its file (top level or in a function)."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's own package upwards
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                stem = ".".join(anchor[: len(anchor) - node.level + 1] + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            for alias in node.names:  # `from package import module` names a module; `from module import thing` the module
                targets.add(f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in modules else stem)
    return {t for t in targets if t in modules and t != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_the_walker_finds_a_circle_hidden_in_a_function() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_the_walker_reads_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from persona.runtime import reply\n    import persona.config\n")
    modules = {"persona.runtime.reply": module, "persona.config": module, "persona.runtime": module, "m": module}
    assert _imports("m", module, modules) == {"persona.runtime.reply", "persona.config"}


def test_no_import_circles_anywhere() -> None:
    graph = _graph()
    assert len(graph) > 100 and graph["persona.runtime.reply"]  # it really read the project
    assert _circles(graph) == []


def test_the_core_imports_none_of_the_edges() -> None:
    wrong = {(name, target) for name, targets in _graph().items() if name.split(".")[0] == "persona"
             for target in targets if target.split(".")[0] in EDGES}
    assert wrong == set()


def test_every_engine_the_setting_names_is_in_the_registry() -> None:
    from typing import get_args

    from persona.config import EngineName
    from persona.runtime.engines.registry import ENGINES

    assert set(ENGINES) == set(get_args(EngineName))
