"""No module of mikupal imports a module that (transitively) imports it back.

Read from the source with `ast` (`tests/import_graph.py`): every `import` counts, module level or
inside a function (a lazy import hides a cycle, it does not remove it). A package's `__init__`
re-exporting its own modules is not a cycle unless one of them imports the package itself
(`from . import x` counts as `x`)."""

from __future__ import annotations

from pathlib import Path

from import_graph import import_graph

ROOT = Path(__file__).resolve().parents[2]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_mikupal_has_no_import_cycle():
    graph = import_graph(ROOT / "mikupal")
    assert "mikupal.labelers.factory" in graph and "mikupal.labelers.base" in graph["mikupal.labelers.gemini"]
    assert cycles(graph) == []


def test_the_check_finds_a_cycle_even_through_a_lazy_import(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .a import A\n")
    (pkg / "a.py").write_text("from .sub import b\nA = 1\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import C\n")
    (pkg / "c.py").write_text("import pkg.a\nC = 2\n")
    (pkg / "d.py").write_text("from . import a\n")  # imports a, not the package: no cycle
    graph = import_graph(pkg)
    assert graph["pkg"] == {"pkg.a"} and graph["pkg.d"] == {"pkg.a"}
    assert cycles(graph) == [["pkg.a", "pkg.c", "pkg.sub.b"]]
