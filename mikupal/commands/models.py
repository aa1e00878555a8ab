"""`mikupal models [models_dir=DIR] [overrides] [--labeler]`: which model files the configured run
needs and whether each is present (`models_dir.status`), and the stage plan; with `--labeler`, the
model ids the configured labeler service serves (the configured one marked)."""

from __future__ import annotations

import json
import os
from typing import Sequence

from ..config import RunConfig, compose
from ..models_dir import status


def models_command(args: Sequence[str]) -> int:
    if "--labeler" in args:
        from ..labelers.preflight import served_models

        cfg = compose([a for a in args if a != "--labeler"])
        for model in served_models(cfg.labeler):
            print(f"{model}{'  (configured)' if model == cfg.labeler.model else ''}")
        return 0
    print_models_and_plan(compose(list(args)))
    return 0


def print_models_and_plan(cfg: RunConfig) -> None:
    """One line per model file (present or MISSING, path, source), then the stage plan as JSON:
    also what `mikupal run --dry-run` shows."""
    from ..engine.plan import Cluster, make_plan

    for r in status(cfg):
        print(f"{'present' if r.present else 'MISSING':8s} {r.component:11s} {r.path}  ({r.source})")
    try:
        plan = make_plan(cfg, Cluster(cpus=os.cpu_count() or 1))
        print(json.dumps({"stages": plan.to_dict()["stages"]}))
    except ImportError as e:
        print(f"stage plan unavailable: {e}")
