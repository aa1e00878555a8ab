"""One registry of reject reasons (mikupal/reasons.py): every reason the code writes is in it."""

from __future__ import annotations

import ast
from pathlib import Path

from mikupal.reasons import REASONS, RETRY_REASONS, RUN_LEVEL_REASONS

PKG = Path(__file__).resolve().parents[2] / "mikupal"


def _const(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def written_reasons() -> dict[str, str]:
    """reason -> where, for every string literal the code passes as a reason."""
    found: dict[str, str] = {}
    # positional index of the reason in the calls that take one
    positions = {"StageError": 0, "LabelerError": 0, "reject": 1, "span_reject": 1, "span": 3, "_reject": 2}
    for path in PKG.rglob("*.py"):
        if path.name == "layout.py":  # output paths, not reasons
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
                i = positions.get(name)
                if i is not None and len(node.args) > i and (code := _const(node.args[i])):
                    found.setdefault(code, f"{path.name}:{node.lineno}")
                for kw in node.keywords:
                    if kw.arg == "reason" and (code := _const(kw.value)):
                        found.setdefault(code, f"{path.name}:{node.lineno}")
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                # module constants named like reasons (NO_FACE = "no_face", SPEAKER_CHANGE = ...)
                t = node.targets[0].id
                code = _const(node.value)
                # NO_FACE = "no_face", RATE_LIMITED = "labeler_rate_limited", ...
                if t.isupper() and code and (code == t.lower() or code.startswith("labeler_")):
                    found.setdefault(code, f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple) and node.value.elts:
                # failure = ("stage_error", message) in Stage.iter_item
                if any(isinstance(t, ast.Name) and t.id == "failure" for t in node.targets) and (code := _const(node.value.elts[0])):
                    found.setdefault(code, f"{path.name}:{node.lineno}")
    return found


def test_every_reason_the_code_writes_is_registered():
    missing = {code: where for code, where in written_reasons().items() if code not in REASONS}
    assert not missing, f"reasons missing from mikupal/reasons.py: {missing}"


def test_the_scan_sees_reasons_of_every_stage():
    seen = set(written_reasons())
    assert {"no_face", "speaker_change", "overlapping_speech", "too_short", "stage_error", "no_video_stream",
            "labeler_rate_limited", "worker_lost", "low_quality"} <= seen


def test_finality_sets():
    assert RUN_LEVEL_REASONS <= RETRY_REASONS  # a run stopped by one redoes the video on the next run
    assert "no_face" not in RETRY_REASONS and "worker_lost" in RETRY_REASONS
    from mikupal.engine import collector, commit

    # the engine reads the registry's sets, never a copy
    assert commit.RETRY_REASONS is RETRY_REASONS and collector.RUN_LEVEL_REASONS is RUN_LEVEL_REASONS


def test_executors_never_name_a_stage():
    """The engines read what a stage declares (holds_model, items_per_call, secret_env, resources)."""
    from mikupal.config import compose
    from mikupal.engine.stages import stage_classes

    names = {c.name for c in stage_classes(compose(["labeler=openai"]))}
    for mod in ("ray_pipeline.py", "plan.py", "sequential.py", "collector.py", "run.py"):
        tree = ast.parse((PKG / "engine" / mod).read_text(encoding="utf-8"))
        named = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in names}
        assert not named, f"engine/{mod} names stages {named}"
