"""The package's shape: no import cycle (deferred and TYPE_CHECKING imports included), imports
go one way (bench -> models, metrics, reports; metrics -> models; reports never imports
bench), and the execution engines are siblings that never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bench", "models", "metrics", "reports")
# What each package may import from the others (besides itself).
ALLOWED = {
    "bench": {"models", "metrics", "reports"},
    "metrics": {"models"},
    "models": set(),
    "reports": {"metrics"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Modules of ours that ``path`` imports, at any depth: a deferred (function-level)
    import is still a dependency, and a TYPE_CHECKING one is a dependency of its types."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in PACKAGES:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] in PACKAGES)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in modules}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_imports_go_one_way() -> None:
    wrong = sorted(
        f"{m} imports {t}"
        for m, targets in _graph().items()
        for t in targets
        if t.split(".")[0] != m.split(".")[0] and t.split(".")[0] not in ALLOWED[m.split(".")[0]]
    )
    assert wrong == []


ENGINES = ROOT / "bench" / "engines"


def test_engines_are_siblings() -> None:
    """Each engine imports only the shared module of the engines package, and nothing but
    the registry and the dispatcher imports an engine (by name, when chosen)."""
    graph = _graph()
    engines = {f"bench.engines.{p.stem}" for p in ENGINES.glob("*.py")} - {
        "bench.engines.__init__",
        "bench.engines.common",
    }
    assert {"bench.engines.local", "bench.engines.pool", "bench.engines.submitit"} <= engines
    for engine in engines:
        assert graph[engine] & engines == set(), engine
        assert "bench.engines" not in graph[engine], f"{engine} imports the registry"
    assert graph["bench.engines.common"] & engines == set()
    importers = {m for m, targets in graph.items() if targets & engines} - engines
    assert importers <= {"tests"}, f"engines imported directly by {sorted(importers)}"


def test_every_registered_engine_is_an_engine_class() -> None:
    import importlib

    from bench.engines import ENGINES as REGISTERED
    from bench.engines.common import Engine

    for name, where in REGISTERED.items():
        module, cls = where.split(":")
        assert issubclass(getattr(importlib.import_module(module), cls), Engine), name


MAX_FILE_LINES = 425  # "about 400"
MAX_FUNCTION_LINES = 90  # "about 80"
REASON = "# long because:"  # a module or function longer than the limit says why, in itself


def test_modules_and_functions_stay_small() -> None:
    """No package module over about 400 lines and no function over about 80, unless it
    states why (a ``# long because: ...`` line inside it)."""
    import ast

    too_long = []
    for name, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        if len(lines) > MAX_FILE_LINES and REASON not in text:
            too_long.append(f"{name}: {len(lines)} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = lines[node.lineno - 1 : node.end_lineno]
                if len(body) > MAX_FUNCTION_LINES and not any(REASON in x for x in body):
                    too_long.append(f"{name}.{node.name}: {len(body)} lines")
    assert too_long == []


def test_the_metric_registry_loads_without_torch() -> None:
    """Reports read the registry (metrics.keys) without torch: no family imports it at
    module level."""
    import subprocess
    import sys

    code = "import sys, metrics.keys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.strip()  # fmt: skip
    assert out == "False"
