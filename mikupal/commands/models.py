"""`mikupal models [models_dir=DIR] [overrides] [--labeler]`: the model files the configured run
loads, each checked (present, MISSING, or broken: an HTML page, truncated, the wrong size or
sha256, or one its runtime will not load), every other model file in the folder, and the stage
plan. Exit 0 when every needed file is present and whole, 1 otherwise. With `--labeler`, the model
ids the configured labeler service serves (the configured one marked)."""

from __future__ import annotations

import json
import os
from typing import Sequence

from ..config import RunConfig, compose
from ..models_dir import ModelStatus, check, format_of, is_offline, present_files
from ..model_check import problem
from .help import CommandHelp

HELP = CommandHelp(
    usage="mikupal models [models_dir=DIR] [key=value ...] [--labeler]",
    what="""The model files the configured run loads, each checked: present, MISSING, or broken (an HTML
page, truncated, the wrong size or sha256, or one its runtime will not load); then the other model
files of the folder and the stage plan. Exit 0 when every needed file is present and whole, 1 otherwise.""",
    keys=[("models_dir", "the models folder ($MIKUPAL_MODELS_DIR)"), ("offline", "say where a missing file comes from, download nothing"),
          ("asr.model", "the whisper model checked"), ("separation", "mdx | none"), ("faces", "yunet | s3fd"),
          ("asd", "light_asd | lr_asd | talknet"), ("labeler", "with --labeler: the service asked")],
    flags=[("--labeler", "list the model ids the configured labeler service serves to your key")],
    examples=["mikupal models models_dir=~/models profile=cpu separation=none asr.model=tiny.en"],
)


def models_command(args: Sequence[str]) -> int:
    if "--labeler" in args:
        from ..labelers.preflight import served_models

        cfg = compose([a for a in args if a != "--labeler"])
        for model in served_models(cfg.labeler):
            print(f"{model}{'  (configured)' if model == cfg.labeler.model else ''}")
        return 0
    cfg = compose(list(args))
    rows = needed(cfg, load=True)
    print_models(cfg, rows)
    print_plan(cfg)
    return 0 if all(r.present for r in rows) else 1


def needed(cfg: RunConfig, load: bool = False) -> list[ModelStatus]:
    """Each model file the configured stages load, checked (`load`: also loaded as its runtime does)."""
    from ..engine.stages import model_needs

    return [check(n, load=load) for n in model_needs(cfg)]


def print_models(cfg: RunConfig, rows: list[ModelStatus]) -> None:
    """One line per needed file (present, MISSING or broken, why, path, source), then the other
    model files of the models folder: also what `mikupal run --dry-run` shows."""
    offline = is_offline(cfg.offline)
    print(f"models needed by this configuration (models_dir {cfg.models_dir}):")
    for r in rows:
        n = r.need
        if r.state == "broken":
            print(f"broken   {n.component:11s} {n.path}: {r.problem}")
        elif r.present:
            print(f"present  {n.component:11s} {n.path}")
        else:
            when = "" if offline or not (n.url or n.component in ("asr", "separation")) else "; the first run downloads it"
            print(f"MISSING  {n.component:11s} {n.path}  (from {n.source}{when})")
    used = {str(r.need.path) for r in rows}
    others = [p for p in present_files(cfg.models_dir) if str(p) not in used]
    if others:
        print(f"also in {cfg.models_dir}:")
        for p in others:
            found = problem(p, format_of(p))
            print(f"{'broken' if found else 'present':8s} {'':11s} {p}{': ' + found if found else ''}")


def print_plan(cfg: RunConfig) -> None:
    from ..engine.plan import Cluster, make_plan

    try:
        plan = make_plan(cfg, Cluster(cpus=os.cpu_count() or 1))
        print(json.dumps({"stages": plan.to_dict()["stages"]}))
    except ImportError as e:
        print(f"stage plan unavailable: {e}")


def print_models_and_plan(cfg: RunConfig) -> int:
    """`mikupal run --dry-run`: the needed files (checked, not loaded) and the stage plan; 1 when one is missing or broken."""
    rows = needed(cfg)
    print_models(cfg, rows)
    print_plan(cfg)
    return 0 if all(r.present for r in rows) else 1
