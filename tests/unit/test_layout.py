"""Every path inside an output dir is named in `mikupal/layout.py` alone: a module that joins
`root / "segments"` or spells `"labeler/pending/..."` itself is how layouts drift apart."""

from __future__ import annotations

import ast
from pathlib import Path

from mikupal import layout
from mikupal.layout import OutputPaths

PACKAGE = Path(layout.__file__).parent
#: names that are path parts of an output dir, wherever they are joined with `/`
NAMES = set(layout.WRITTEN_DIRS) | set(layout.WRITTEN_FILES) | {"done", "pending", "cost.json", "skipped_files.json"}
#: prefixes a string spelling a path inside an output dir starts with ("audio/" is left out: MIME types)
PREFIXES = tuple(f"{d}/" for d in layout.WRITTEN_DIRS if d != layout.AUDIO) + (f"{layout.STATE}/",)
#: (module, name): folders that share a name with an output dir's but live elsewhere
NOT_OUTPUT_DIRS = {("mikupal/evaluate/label_benchmark.py", "audio")}  # the benchmark's own cache of cut audio


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            ids.add(id(body[0].value))
    return ids


def _spelled_paths(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and side.value in NAMES:
                    found.append(f"line {node.lineno}: / {side.value!r}")
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            head = str(node.values[0].value)
            if head.startswith(PREFIXES + (f"{layout.AUDIO}/",)):
                found.append(f"line {node.lineno}: f-string {head!r}...")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if node.value.startswith(PREFIXES):
                found.append(f"line {node.lineno}: {node.value!r}")
    return found


def test_no_module_but_layout_spells_an_output_path():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "layout.py" and path.parent == PACKAGE:
            continue
        module = str(path.relative_to(PACKAGE.parent))
        found = [f for f in _spelled_paths(path) if not any(module == m and f.endswith(repr(n)) for m, n in NOT_OUTPUT_DIRS)]
        if found:
            offenders[module] = found
    assert not offenders, "output paths spelled outside mikupal/layout.py (use layout.OutputPaths): " + "; ".join(
        f"{m}: {', '.join(f)}" for m, f in offenders.items())


def test_output_paths_are_the_documented_layout(tmp_path):
    """The paths OutputPaths gives are the ones layout.py's docstring (and README) document."""
    p = OutputPaths(tmp_path)
    rel = lambda x: str(Path(x).relative_to(tmp_path))  # noqa: E731
    assert rel(p.segments("k")) == "segments/k.parquet" and rel(p.rejects("k")) == "rejects/k.parquet"
    assert rel(p.speakers("k")) == "speakers/k.parquet" and p.face_picture("k", "k_S1") == "speakers/k/k_S1.jpg"
    assert rel(p.pending("k")) == "labeler/pending/k.parquet" and rel(p.marker("k")) == ".state/done/k.json"
    assert rel(p.cost) == "labeler/cost.json" and rel(p.labels("m__v1")) == "labels/m__v1"
    assert OutputPaths.segment_media("v", "v_1") == {"audio": "audio/v/v_1.flac", "clip": "clips/v/v_1.mp4",
                                                     "debug": "debug/v/v_1.mp4"}
    for name in ("segments/<key>.parquet", "labeler/", "labels/<model>__<prompt>/", ".state/done/<key>.json"):
        assert name in layout.__doc__
