"""The dependency table of the architecture, as a test: which part of sentinel may import which.

The table is the one in the project's design page (DESIGN.md, "Which part may know which"), copied here
because tests never read outside the repository. Change the two together.
Every import counts: at module level, inside a function, under ``TYPE_CHECKING`` — a lazy import is still a
dependency, and hiding one in a function is exactly how a forbidden one slips in.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "sentinel"

# part → the parts it may use (besides itself). From DESIGN.md's table, "may use" column.
EVERYTHING = "*"
MAY_USE: dict[str, frozenset[str] | str] = {
    "errors": frozenset(),
    "events": frozenset({"errors"}),
    "metrics": frozenset({"errors"}),
    "conf": frozenset({"events", "errors"}),
    "collect": frozenset({"events", "errors", "metrics", "conf"}),
    "decode": frozenset({"events", "errors"}),
    "store": frozenset({"events", "errors", "metrics", "conf"}),
    "detect": frozenset({"events", "errors", "metrics", "conf", "store"}),
    "route": frozenset({"events", "errors", "metrics", "conf", "store"}),
    "notify": frozenset({"events", "errors", "metrics", "conf", "route", "store"}),
    "audit": frozenset({"events", "errors", "conf"}),
    # The alert HTTP API, a front door beside cli: route's lifecycle and silences over the store, its token
    # registered with conf's secrets so it is masked in logs.
    "alertapi": frozenset({"events", "errors", "conf", "route", "store"}),
    "daemon": EVERYTHING,
    "cli": EVERYTHING,
    "demo": EVERYTHING,
    # The package root holds only __version__ and imports nothing; any part may read it.
    "sentinel": frozenset(),
}

# Modules the design page does not name, placed where their job puts them.
PART_OF: dict[str, str] = {
    # Resolving ${ENV}/file: secret references is part of loading settings (like errors, it uses nothing else).
    "sentinel.credentials": "conf",
    # The built-in YAML defaults, read through importlib.resources: configuration data.
    "sentinel.shipped": "conf",
    # Lays out the shipped folders for `sentinel init`.
    "sentinel.install": "cli",
    "sentinel.__main__": "cli",
}
ROOT = "sentinel"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def part_of(module: str) -> str:
    for prefix, part in PART_OF.items():
        if module == prefix or module.startswith(prefix + "."):
            return part
    return module.split(".")[1] if "." in module else ROOT


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(imported sentinel module, line) for every import in the file, wherever it sits."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == ROOT:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != ROOT:
                continue
            for alias in node.names:
                # `from sentinel.x import y` imports the module sentinel.x.y when there is one.
                sub = f"{target}.{alias.name}"
                yield (sub if sub in modules else target), node.lineno


@functools.cache
def module_graph() -> dict[str, dict[str, int]]:
    """module → {imported module: first line}."""
    modules = all_modules()
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        edges: dict[str, int] = {}
        for target, line in imports_of(module, path, modules):
            if target != module:
                edges.setdefault(target, line)
        graph[module] = edges
    return graph


def violations() -> list[str]:
    out = []
    for module, edges in sorted(module_graph().items()):
        mine = part_of(module)
        allowed = MAY_USE[mine]
        for target, line in sorted(edges.items()):
            theirs = part_of(target)
            if theirs in (mine, ROOT) or allowed == EVERYTHING or theirs in allowed:
                continue
            out.append(f"{module}:{line} ({mine}) imports {target} ({theirs})")
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

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
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def part_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, edges in module_graph().items():
        mine = part_of(module)
        graph.setdefault(mine, set()).update(p for p in map(part_of, edges) if p != mine)
    return graph


def test_every_part_is_in_the_table() -> None:
    unknown = {part_of(m) for m in all_modules()} - set(MAY_USE)
    assert not unknown, f"parts missing from the dependency table (add them here and in DESIGN.md): {unknown}"


def test_no_import_the_table_forbids() -> None:
    found = violations()
    print("\n".join(found))
    assert not found, f"{len(found)} imports the dependency table forbids:\n" + "\n".join(found)


def test_no_cycle_between_parts() -> None:
    found = cycles(part_graph())
    assert not found, f"parts importing each other: {found}"


def test_no_cycle_between_files() -> None:
    graph = {m: set(edges) for m, edges in module_graph().items()}
    found = cycles(graph)
    assert not found, "files importing each other:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The parser must catch a lazy import hidden in a function, and a relative one."""
    (tmp_path / "sentinel" / "decode").mkdir(parents=True)
    (tmp_path / "sentinel" / "store").mkdir()
    module = tmp_path / "sentinel" / "decode" / "x.py"
    module.write_text("def f():\n    from sentinel.store import y\n    from ..store.y import z\n")
    found = list(imports_of("sentinel.decode.x", module, {"sentinel.store.y": tmp_path}))
    assert found == [("sentinel.store.y", 2), ("sentinel.store.y", 3)]
    assert part_of("sentinel.store.y") == "store" and "store" not in MAY_USE["decode"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
