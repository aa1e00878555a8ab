"""`mikupal run input=PATH output=DIR [overrides]`: videos -> emotional speech dataset (`engine/run.py`).

`-m`/`--multirun` sweeps Hydra's sweep grammar (`a=1,2`, ranges, choices) over the cartesian
product, each run into `output/sweep_<i>_<overrides>`; `--dry-run` (`dry_run=true`) shows the model
files present, missing or broken and the stage plan, then stops (exit 1 when one is missing or broken); `--plan` prints where each stage would
run on the cluster the run would join (`mikupal plan`), then stops.
Each run ends with its result in words ("kept 2.7 s of 6.1 s in 1 segment, 1 speaker ->
out/report.html"); `--json` prints one JSON line of totals instead.
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Sequence

from ..config import compose
from ..errors import UserError
from .help import CommandHelp
from .models import print_models_and_plan

HELP = CommandHelp(
    usage="mikupal run input=PATH output=DIR [key=value ...]",
    what="""Videos -> an emotional speech dataset: each kept utterance of one visible, speaking person with
its vocals, transcript, word times, speaker and emotion label, in DIR (segments/, speakers/, rejects/,
report.html). Re-running the same command resumes: committed videos are skipped.""",
    keys=[
        ("input", "a video, a folder (searched recursively) or a text file listing paths"),
        ("output", "the dataset folder (created; must not be a file)"),
        ("models_dir", "where model files live ($MIKUPAL_MODELS_DIR); `mikupal models` checks them"),
        ("offline", "never download: a missing model is a one-line error"),
        ("profile", "cpu | gpu: models and resources for the machine"),
        ("separation", "mdx (vocals apart from music) | none"),
        ("asr.model", "faster-whisper model: tiny.en, base, small, large-v3 ..."),
        ("asr.language", "force a language (null: detected)"),
        ("labeler", "gemini | openai | none (no emotion labels; `mikupal label` later)"),
        ("labeler.model", "the labeler's model id"),
        ("labeler.mode", "video | audio | text: what the labeler is sent"),
        ("labeler.max_usd", "stop labeling at this spend (null: no limit)"),
        ("quality.min_ovrl", "DNSMOS OVRL below this is rejected low_quality (null: no filter)"),
        ("segment.min_seconds", "shortest utterance kept"),
        ("segment.max_seconds", "longest utterance (longer ones are cut at pauses)"),
        ("speaker.kind", "ge2e (voice checks and ids) | none"),
        ("engine", "auto (ray with a cluster or GPUs, else local) | ray | local (threads of one process) | sequential (one stage at a time, for debugging)"),
        ("engine.address", "join a Ray cluster (or set RAY_ADDRESS)"),
        ("dataset.sample_rate", "rate of the exported vocals"),
    ],
    flags=[("--dry-run", "check the model files and show the stage plan, then stop (exit 1 if one is missing or broken)"),
           ("-m, --multirun", "sweep comma-separated values: one output per combination"),
           ("--json", "print the totals as one JSON line instead of the summary in words"),
           ("--plan", "where each stage would run (its pool, CPUs, GPUs), then stop: `mikupal plan`")],
    notes="Every key: conf/ (one YAML per group) and README's configuration tables.",
    examples=["mikupal run input=examples/ output=out/ profile=cpu separation=none asr.model=tiny.en labeler=none",
              "mikupal run input=videos/ output=out/ labeler=openai labeler.base_url=http://localhost:8000/v1 labeler.model=M"],
)

#: the report.json totals a run prints
SUMMARY_KEYS = ("videos", "segments", "rejects", "input_seconds", "kept_seconds", "retention", "wall_seconds",
                "speed_ratio", "cost_usd")


def run_command(args: Sequence[str]) -> int:
    if "--plan" in args:  # where each stage would run, then exit (`mikupal plan`)
        from .plan import plan_command

        return plan_command(args)
    multirun = as_json = False
    rest = []
    for a in args:
        if a in ("-m", "--multirun"):
            multirun = True
        elif a == "--json":
            as_json = True
        elif a == "--dry-run":
            rest.append("dry_run=true")
        else:
            rest.append(a)
    runs = expand_sweep(rest) if multirun else [rest]
    code = 0
    for i, overrides in enumerate(runs):
        cfg = compose(overrides)
        if multirun and cfg.output:
            tag = "_".join(o.replace("/", "-").replace("=", "-") for o in overrides if o not in rest)
            cfg.output = os.path.join(cfg.output, f"sweep_{i}_{tag}" if tag else f"sweep_{i}")
        if cfg.dry_run:
            code = max(code, print_models_and_plan(cfg))  # 1 when a needed model file is missing or broken
            continue
        if not cfg.input:
            raise UserError("no input given: pass input=PATH (a video, a folder, or a text file listing paths)")
        if not cfg.output:
            raise UserError("no output given: pass output=DIR")
        from ..engine.run import run  # Ray and the stages: imported only when a run starts

        report = run(cfg)
        if as_json:
            print(json.dumps({k: report[k] for k in SUMMARY_KEYS} | {"output": cfg.output}))
        else:
            from ..engine.terminal import summary_line

            print(summary_line(report, cfg.output, global_speaker_count(cfg.output)))
    return code


def expand_sweep(overrides: list[str]) -> list[list[str]]:
    """Hydra's sweep grammar (a=1,2 / range / choice) expanded into the cartesian product."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    try:
        parsed = parser.parse_overrides(overrides)
    except Exception as e:  # noqa: BLE001 - hydra raises its own OverrideParseException
        raise UserError(f"bad override: {str(e).splitlines()[0]}") from None
    axes = []
    for o in parsed:
        if o.is_sweep_override():
            axes.append([f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()])
        else:
            axes.append([o.input_line])
    return [list(c) for c in itertools.product(*axes)]


def global_speaker_count(output: str):
    """Distinct people across the output's videos (global_speakers.parquet), or None without it."""
    from ..layout import OutputPaths

    path = OutputPaths(output).global_speakers
    if not path.is_file():
        return None
    import pyarrow.parquet as pq

    try:
        return len(set(pq.read_table(path, columns=["global_speaker_id"]).column(0).to_pylist()))
    except (OSError, KeyError, ValueError):
        return None
