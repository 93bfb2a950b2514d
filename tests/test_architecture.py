"""The import graph of ``engine``, ``kernels`` and ``export`` runs one way, with no cycles.

Every import is counted, those inside functions and ``TYPE_CHECKING`` blocks included, so a lazy
import cannot hide an upward edge or a cycle. The layers (``../shared/docs/ARCHITECTURE.md``)::

    kernels < engine.errors < engine.{packages, keypoints, sample_media} < engine.model
        < engine.perception | export < engine.inputs < engine.backends
        < engine.runtime | engine.training < engine.cluster < engine.serve
        < engine (the facade) < engine.cli

A module may import its own group or a lower layer; groups on one layer never import each
other; and in ``engine`` only ``engine.backends.graph_cache`` (and the CLI) may import
``export``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "kernels", "export")
LAYERS = {
    "kernels": 0,
    "engine.errors": 1,
    "engine.packages": 2,
    "engine.keypoints": 2,
    "engine.sample_media": 2,
    "engine.model": 3,
    "engine.perception": 4,
    "export": 4,
    "engine.inputs": 5,
    "engine.backends": 6,
    "engine.runtime": 7,
    "engine.training": 7,
    "engine.cluster": 8,
    "engine.serve": 9,
    "engine": 10,
    "engine.cli": 11,
}
EXPORT_DOOR = "engine.backends.graph_cache"
MAX_TOP_LEVEL_ENGINE_MODULES = 6


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the three packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def import_graph(files: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its file (``from a import b``
    counts ``a.b`` when that is a module, else ``a``)."""
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against this module's package
                    base = name.split(".")
                    base = base if is_package else base[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                for alias in node.names:
                    child = f"{module}.{alias.name}"
                    targets.add(child if child in files else module)
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def group_of(module: str) -> str:
    """The longest :data:`LAYERS` key that is ``module`` or a package above it."""
    best = max((g for g in LAYERS if module == g or module.startswith(g + ".")), key=len)
    return best


def upward_edges(graph: dict[str, set[str]]) -> list[str]:
    """Every edge that breaks the layering, as ``"a -> b (why)"``."""
    bad = []
    for source, targets in sorted(graph.items()):
        g_src = group_of(source)
        for target in sorted(targets):
            g_dst = group_of(target)
            if g_src == g_dst:
                continue
            if LAYERS[g_dst] >= LAYERS[g_src]:
                bad.append(f"{source} -> {target} ({g_src} may not import {g_dst})")
            elif (
                g_dst == "export"
                and g_src.startswith("engine")
                and g_src != "engine.cli"
                and source != EXPORT_DOOR
            ):
                bad.append(f"{source} -> {target} (only {EXPORT_DOOR} may import export)")
    return bad


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(module_files())


def test_every_module_belongs_to_a_layer(graph):
    assert "kernels.composite" in graph and "engine.runtime.session" in graph
    for module in graph:
        assert group_of(module) in LAYERS


def test_imports_run_one_way(graph):
    assert upward_edges(graph) == []


def test_no_import_cycles(graph):
    assert find_cycle(graph) is None


def test_the_checks_catch_a_kernels_to_engine_edge_and_a_cycle(graph):
    """The two checks above fail on a deliberately broken copy of the real graph."""
    broken = {k: set(v) for k, v in graph.items()}
    broken["kernels.composite"].add("engine.errors")
    assert upward_edges(broken) == [
        "kernels.composite -> engine.errors (kernels may not import engine.errors)"
    ]
    broken = {k: set(v) for k, v in graph.items()}
    broken["engine.model.weights"].add("engine.runtime.session")  # session imports weights
    assert any("engine.model.weights -> engine.runtime.session" in e for e in upward_edges(broken))
    cycle = find_cycle(broken)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert "engine.model.weights" in cycle and "engine.runtime.session" in cycle
    broken = {k: set(v) for k, v in graph.items()}
    broken["engine.runtime.stages"].add("export.onnx_export")
    assert upward_edges(broken) == [
        "engine.runtime.stages -> export.onnx_export (only "
        "engine.backends.graph_cache may import export)"
    ]
    broken = {k: set(v) for k, v in graph.items()}
    broken["engine.backends.runners"].add("export.onnx_export")
    assert upward_edges(broken) == [
        "engine.backends.runners -> export.onnx_export (only "
        "engine.backends.graph_cache may import export)"
    ]


def test_lazy_imports_are_seen(graph):
    # graph_cache imports export only inside build_into_cache: the walk must still see it.
    assert "export.onnx_export" in graph["engine.backends.graph_cache"]


def test_engine_has_few_top_level_modules():
    top = sorted(p.name for p in (ROOT / "engine").glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_ENGINE_MODULES, top


def test_every_subpackage_says_what_it_holds_and_may_import():
    for init in sorted((ROOT / "engine").glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "import" in doc, f"{init.relative_to(ROOT)} needs a docstring"
