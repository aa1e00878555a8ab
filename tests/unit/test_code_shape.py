"""Shapes the code keeps so a newcomer can read it: short functions, and stage modules that are
adapters (the algorithm lives in its package, where unit tests reach it without Ray)."""

from __future__ import annotations

import ast
from pathlib import Path

import mikupal

PACKAGE = Path(mikupal.__file__).parent
MAX_FUNCTION_LINES = 80
MAX_VISION_STAGE_LINES = 150  # the largest stage: decode, score, cut, attribute, export


def test_no_function_is_over_80_lines():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: " + ", ".join(long)


def test_the_vision_stage_is_an_adapter():
    lines = len((PACKAGE / "stages" / "vision.py").read_text().splitlines())
    assert lines <= MAX_VISION_STAGE_LINES, f"stages/vision.py has {lines} lines (at most {MAX_VISION_STAGE_LINES})"
