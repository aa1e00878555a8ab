"""A package's imports of its own modules, read from the source with `ast` (nothing is imported).

Every `import` counts, at module level or inside a function: a lazy import hides a dependency, it
does not remove it. `from pkg.sub import name` names the module `pkg.sub.name` when that is one,
else `pkg.sub` (a symbol of it); relative imports are resolved against the importing module.
Used by test_import_cycles.py (no cycle) and test_layers.py (no import of a higher layer)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Import:
    """One module of the package imported by another: where, and the statement as written."""

    module: str
    target: str
    line: int
    statement: str


def module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under `package_dir` (a package)."""
    out = {}
    for path in package_dir.rglob("*.py"):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _targets(name: str, path: Path, node: ast.AST, modules: dict[str, Path]) -> set[str]:
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in modules}
    assert isinstance(node, ast.ImportFrom)
    base = node.module or ""
    if node.level:
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
        base = ".".join(up + ([node.module] if node.module else []))
    subs = {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules}
    names_a_symbol = len(subs) < len(node.names)
    return subs | ({base} if names_a_symbol and base in modules else set())


def imports(package_dir: Path) -> list[Import]:
    """Every import of a module of the package by a module of it (self-imports left out)."""
    modules = module_files(package_dir)
    found = []
    for name, path in sorted(modules.items()):
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, "module", None) != "__future__":
                statement = " ".join((ast.get_source_segment(source, node) or "").split())
                found.extend(Import(name, t, node.lineno, statement)
                             for t in sorted(_targets(name, path, node, modules)) if t != name)
    return found


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports."""
    graph: dict[str, set[str]] = {name: set() for name in module_files(package_dir)}
    for imp in imports(package_dir):
        graph[imp.module].add(imp.target)
    return graph
