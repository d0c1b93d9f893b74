"""The package's structure, read from the source with :mod:`ast` (nothing is imported).

Rules, over every module of ``ws3d_ros`` and ``training``:

- Only the CLI (``ws3d_ros/cli``) imports ``ws3d_ros.cli``, at any depth (imports inside
  functions count).
- No import cycle among the modules through *module-level* imports: the statements that
  run when a module is imported (its body, ``if``/``try``/``with`` blocks and class bodies
  included). Imports inside functions are exempt: they run on a call, after every module
  involved has finished importing, so they cannot deadlock an import (many are deliberate,
  to keep torch and rclpy out of light paths). ``if TYPE_CHECKING:`` blocks are exempt too.
  ``training``'s own test counts its lazy imports as well.
- Layer 1 (``ws3d_ros.geometry``, ``ws3d_ros.msg``, ``ws3d_ros.labels``) imports neither
  torch nor rclpy at module level, directly or through a module it imports at module level.
- The runtime, the models, evaluation and layer 1 never import the simulator
  (``ws3d_ros.sim``), at any depth.
- The unknown label's value, the number 65535 in code, appears in one module only
  (:mod:`ws3d_ros.labels`, ``UNKNOWN_LABEL``); docstrings, comments and strings do not
  count, nor the float ``65535.0`` (an intensity scale) or the hexadecimal ``0xFFFF``, the
  spelling kept for the uint16 bit mask / range of SemanticKITTI ``.label`` files (another
  concept with the same value); tests and docs are not scanned.
"""

from __future__ import annotations

import ast
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ws3d_ros", "training")
LAYER_1 = ("ws3d_ros.geometry", "ws3d_ros.msg", "ws3d_ros.labels")
NO_SIM = ("ws3d_ros.runtime", "ws3d_ros.models", "ws3d_ros.eval", *LAYER_1)
HEAVY = ("torch", "rclpy")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, tuple[Path, ast.Module]]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            out[_module_name(path)] = (path, ast.parse(path.read_text(), str(path)))
    return out


SOURCES = _sources()


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, *, module_level: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements of ``tree``; with ``module_level``, only those run on import."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif module_level and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        elif module_level and isinstance(node, ast.If) and _is_type_checking(node):
            yield from (n for s in node.orelse for n in _imports_of_stmt(s))
        else:
            yield from _imports(node, module_level=module_level)


def _imports_of_stmt(stmt: ast.stmt) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        yield stmt
    else:
        yield from _imports(stmt, module_level=True)


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Dotted names ``node`` imports (a ``from`` import of a submodule names it)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        is_pkg = SOURCES[module][0].name == "__init__.py"
        anchor = module.split(".")[: len(module.split(".")) - node.level + is_pkg]
        base = ".".join([*anchor, base] if base else anchor)
    out = [base]
    out += [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in SOURCES]
    return out


def _edges(module_level: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in SOURCES}
    for module, (_, tree) in SOURCES.items():
        for node in _imports(tree, module_level=module_level):
            graph[module].update(_targets(module, node))
    return graph


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_only_the_cli_imports_the_cli() -> None:
    bad = [
        f"{m} imports {t}"
        for m, targets in _edges(module_level=False).items()
        if not _within(m, ("ws3d_ros.cli",))
        for t in targets
        if _within(t, ("ws3d_ros.cli",))
    ]
    assert not bad, bad


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
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
            visit(v)
    return out


def test_no_import_cycles_at_module_level() -> None:
    graph = {m: {t for t in ts if t in SOURCES and t != m} for m, ts in _edges(True).items()}
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("layer", LAYER_1)
def test_layer_1_imports_neither_torch_nor_rclpy(layer: str) -> None:
    graph = _edges(module_level=True)
    for start in (m for m in SOURCES if _within(m, (layer,))):
        seen, todo = {start}, [start]
        while todo:
            m = todo.pop()
            for t in graph.get(m, ()):
                assert not _within(t, HEAVY), f"{start} imports {t} (through {m})"
                if t in SOURCES and t not in seen:
                    seen.add(t)
                    todo.append(t)


def test_runtime_models_eval_and_layer_1_never_import_the_simulator() -> None:
    bad = [
        f"{m} imports {t}"
        for m, targets in _edges(module_level=False).items()
        if _within(m, NO_SIM)
        for t in targets
        if _within(t, ("ws3d_ros.sim",))
    ]
    assert not bad, bad


def _decimal_65535(path: Path) -> bool:
    with path.open("rb") as f:
        return any(
            tok.type == tokenize.NUMBER and tok.string == "65535"
            for tok in tokenize.tokenize(f.readline)
        )


def test_the_unknown_label_value_is_defined_once() -> None:
    found = sorted(m for m, (path, _) in SOURCES.items() if _decimal_65535(path))
    assert found == ["ws3d_ros.labels"]
