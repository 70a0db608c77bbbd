"""The import graph of the app's own modules (``core/``, ``ui/``, ``pages/``, ``app.py``): no
circles, and the layers import downwards only (the engine knows nothing of the runtime, the
sweeps, the labs or the CLI; nothing in ``core`` knows Streamlit, ``ui`` or ``pages``).

Imports are read from the source (``ast``), wherever they stand: at the top, inside a function
(a lazy import) or under ``TYPE_CHECKING``. Each counts as an arrow between two modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "ui", "pages")
ENGINE_MUST_NOT_IMPORT = ("core.runtime", "core.sweep", "core.labs", "core.cli")
CORE_MUST_NOT_IMPORT = ("streamlit", "ui", "pages")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> dict[str, Path]:
    """Module name → file, for every module of the app."""
    files = [ROOT / "app.py"]
    for package in PACKAGES:
        files += sorted((ROOT / package).rglob("*.py"))
    return {module_name(f): f for f in files}


def imported_names(name: str, path: Path) -> set[str]:
    """Every dotted name ``path`` imports: ``a.b`` for ``import a.b``, ``a.b.x`` for
    ``from a.b import x`` (relative imports resolved against the module's package)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.update(base if a.name == "*" else f"{base}.{a.name}" for a in node.names)
    return names


def resolve(dotted: str, modules: set[str]) -> str | None:
    """The app module a dotted name refers to (its longest prefix that is one), else None:
    ``core.sweep.cli`` is that module, ``core.config.ConfigError`` is ``core.config``."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_graph() -> dict[str, set[str]]:
    """Module → the other app modules it imports."""
    files = source_files()
    modules = set(files)
    return {
        name: {
            target
            for dotted in imported_names(name, path)
            if (target := resolve(dotted, modules)) not in (None, name)
        }
        for name, path in files.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
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
    return found


def arrows(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """The imports inside one circle, as ``a → b`` lines."""
    members = set(component)
    return [f"{a} → {b}" for a in component for b in sorted(graph[a] & members)]


def test_the_import_graph_covers_the_app():
    graph = import_graph()
    assert {
        "app",
        "core.cli",
        "core.sweep.spec",
        "core.runtime.store",
        "ui.state",
        "pages.compare",
    } <= set(graph)
    assert "core.sweep.spec" in graph["core.sweep.ray_backend"]


def test_no_module_imports_itself_through_others():
    graph = import_graph()
    circles = ["; ".join(arrows(graph, c)) for c in cycles(graph)]
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_nothing_in_core_imports_streamlit_ui_or_pages():
    bad = [
        f"{name} imports {dotted}"
        for name, path in source_files().items()
        if name.split(".")[0] == "core"
        for dotted in sorted(imported_names(name, path))
        if dotted.split(".")[0] in CORE_MUST_NOT_IMPORT
    ]
    assert not bad, "\n".join(bad)


def test_the_engine_imports_nothing_above_it():
    graph = import_graph()
    bad = [
        f"{name} → {target}"
        for name, targets in graph.items()
        if name == "core.engine" or name.startswith("core.engine.")
        for target in sorted(targets)
        if any(target == p or target.startswith(p + ".") for p in ENGINE_MUST_NOT_IMPORT)
    ]
    assert not bad, "\n".join(bad)


MAX_LINES = 500
LONG_REASON = "Over 500 lines because"  # what a longer module must say in its docstring


def test_no_module_is_longer_than_500_lines_without_saying_why():
    long = []
    for name, path in source_files().items():
        text = path.read_text()
        if text.count("\n") > MAX_LINES and LONG_REASON not in (
            ast.get_docstring(ast.parse(text)) or ""
        ):
            long.append(f"{name}: {text.count(chr(10))} lines")
    assert not long, "modules over 500 lines with no reason at the top: " + ", ".join(long)
