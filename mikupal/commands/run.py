"""`mikupal run input=PATH output=DIR [overrides]`: videos -> emotional speech dataset (`engine/run.py`).

`-m`/`--multirun` sweeps Hydra's sweep grammar (`a=1,2`, ranges, choices) over the cartesian
product, each run into `output/sweep_<i>_<overrides>`; `--dry-run` (`dry_run=true`) shows the model
files present and missing and the stage plan, then stops; `--plan` prints where each stage would
run on the cluster the run would join (`mikupal plan`), then stops. Each run prints one JSON line of totals.
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Sequence

from ..config import compose
from ..errors import UserError
from .models import print_models_and_plan

#: the report.json totals a run prints
SUMMARY_KEYS = ("videos", "segments", "rejects", "input_seconds", "kept_seconds", "retention", "wall_seconds",
                "speed_ratio", "cost_usd")


def run_command(args: Sequence[str]) -> int:
    if "--plan" in args:  # where each stage would run, then exit (`mikupal plan`)
        from .plan import plan_command

        return plan_command(args)
    multirun = False
    rest = []
    for a in args:
        if a in ("-m", "--multirun"):
            multirun = True
        elif a == "--dry-run":
            rest.append("dry_run=true")
        else:
            rest.append(a)
    runs = expand_sweep(rest) if multirun else [rest]
    for i, overrides in enumerate(runs):
        cfg = compose(overrides)
        if multirun and cfg.output:
            tag = "_".join(o.replace("/", "-").replace("=", "-") for o in overrides if o not in rest)
            cfg.output = os.path.join(cfg.output, f"sweep_{i}_{tag}" if tag else f"sweep_{i}")
        if cfg.dry_run:
            print_models_and_plan(cfg)
            continue
        if not cfg.input:
            raise UserError("no input given: pass input=PATH (a video, a folder, or a text file listing paths)")
        if not cfg.output:
            raise UserError("no output given: pass output=DIR")
        from ..engine.run import run  # Ray and the stages: imported only when a run starts

        report = run(cfg)
        print(json.dumps({k: report[k] for k in SUMMARY_KEYS} | {"output": cfg.output}))
    return 0


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
