"""Imports flow forward only (ingest → graphdb → export → model → scores): no cycle, no backward arrow.

An AST walk over ``gnnsec/`` (every ``import`` and ``from … import``, including those inside functions and
``TYPE_CHECKING`` blocks, since a lazy import still couples two modules).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "gnnsec"

FORBIDDEN = (
    ("gnnsec.ingest", "gnnsec.graphdb"),  # adapters read and stage; writing is graphdb's
    ("gnnsec.gnn", "gnnsec.ingest"),  # the model sees snapshots, never raw logs
    ("gnnsec.schema", "gnnsec"),  # the schema is the root everything else depends on
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in targets:
                while target and target not in modules:  # gnnsec.x.y.Name → gnnsec.x.y
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_import_graph_of_gnnsec_has_no_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 50  # the walk found the package
    assert _cycle(graph) is None, " → ".join(_cycle(graph) or [])


@pytest.mark.parametrize(("source", "target"), FORBIDDEN)
def test_no_backward_arrow(source: str, target: str) -> None:
    graph = import_graph()
    arrows = [(a, b) for a, targets in graph.items() for b in targets
              if (a == source or a.startswith(source + ".")) and (b == target or b.startswith(target + "."))]
    assert not arrows, arrows


def test_the_walk_sees_a_cycle_when_there_is_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
