"""course/ keeps the shape the README describes: no import cycle, each layer imports downward.

Layers, top to bottom: the command line, the commands, the grading engine, the nbgrader
plugins, and the shared modules (paths and settings, cell metadata, the gradebook). Imports
inside functions count too: a late import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "course"
LAYERS = ["cli", "commands", "engine", "plugins", "shared"]
SHARED = {"config", "cells", "gradebook", "nbgrader_cli", "__init__", "__main__"}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_nodes(tree, at_import_time: bool):
    """Every import statement; ``at_import_time``: only those that run when the module is
    imported (not those inside a function, which run when it is called)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        if at_import_time and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        todo += list(ast.iter_child_nodes(node))


def _imports(path: Path, at_import_time: bool = False) -> set[str]:
    """The course modules a file imports, resolved to module names."""
    name = _module(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in _import_nodes(ast.parse(path.read_text()), at_import_time):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "course"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "course":
                continue
            for alias in node.names:  # `from . import x` names a module; `from .m import f` names m
                found.add(f"{target}.{alias.name}" if _exists(f"{target}.{alias.name}") else target)
    return {m for m in found if _exists(m) and m != name}


def _exists(module: str) -> bool:
    path = ROOT.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _graph() -> dict[str, set[str]]:
    return {_module(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 2 and parts[1] in ("commands", "engine", "plugins"):
        return parts[1]
    if len(parts) == 2 and parts[1] in ("commands", "engine", "plugins"):
        return parts[1]
    return "cli" if parts[-1] in ("cli", "__main__") else "shared"


def test_course_has_no_import_cycle():
    graph, cycles = _graph(), []

    def visit(node, path):
        for nxt in graph.get(node, ()):
            if nxt in path:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in done:
                visit(nxt, path + [nxt])
        done.add(node)

    done: set[str] = set()
    for module in graph:
        if module not in done:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_each_layer_imports_only_downward():
    upward = []
    for module, imports in _graph().items():
        for imported in imports:
            if LAYERS.index(_layer(imported)) < LAYERS.index(_layer(module)):
                upward.append(f"{module} imports {imported}")
    assert not upward, upward


def test_the_sandboxed_runner_imports_nothing_of_nbgrader():
    """course/engine/run_notebook.py runs inside the sandbox for every submission: its start-up
    is a fixed cost of grading, so it must not load nbgrader (about a second)."""
    seen, todo = set(), ["course.engine.run_notebook"]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = ROOT.joinpath(*module.split("."))
        path = path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__init__.py"
        for node in _import_nodes(ast.parse(path.read_text()), at_import_time=True):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if not node.level else []
            assert not any(n.split(".")[0] == "nbgrader" for n in names), f"{module} imports nbgrader"
        todo += _imports(path, at_import_time=True)
