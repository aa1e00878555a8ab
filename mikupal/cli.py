"""The `mikupal` command: Hydra-style `key=value` overrides, one line per user error, never a traceback."""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
from typing import Callable

from .errors import UserError

USAGE = """usage: mikupal COMMAND [key=value ...]

commands:
  run        input=PATH output=DIR [overrides]   video(s) -> emotional speech dataset
             (-m/--multirun: sweep comma-separated values, e.g. -m asr.resources.workers=1,2)
             (--dry-run: show models present/missing and the stage plan, then stop)
  label      input=DIR [labeler=...] [--relabel]  label what an output needs: unlabeled and labeler-rejected
             segments (resumable); --relabel: all again, into labels/<model>__<prompt>/
  evaluate   predictions=PATH gold=PATH pred_column=NAME gold_column=NAME id_columns=[A,B] output=DIR
             or: dataset=meld split=test meld_dir=DIR clips=DIR [labeler=...] output=DIR (label, then score)
  agreement  runs=[A,B,...] id_columns=[...] pred_column=NAME output=DIR
  report     map=DIR [output=DIR]                emotion map (t-SNE) and label distribution plots
  export     input=OUT format=hf|lhotse|webdataset|list output=DIR [min_dnsmos=3 emotions=[..] speakers=[..]
             languages=[..] test_fraction=0.1 seed=0 shard_size=1000]   the dataset in a training toolkit's format
  models     [models_dir=DIR] [overrides]        which model files are present, which are missing
             (--labeler: the model ids the configured labeler service serves)

configuration: conf/ (groups: separation vad asr faces asd labeler engine profile), e.g.
  mikupal run input=clips/ output=out/ profile=cpu separation=none asr.model=tiny.en labeler=none
"""


def _run(args: list[str]) -> int:
    from .config import compose

    multirun = False
    rest = []
    for a in args:
        if a in ("-m", "--multirun"):
            multirun = True
        elif a == "--dry-run":
            rest.append("dry_run=true")
        else:
            rest.append(a)
    runs = _expand_sweep(rest) if multirun else [rest]
    status = 0
    for i, overrides in enumerate(runs):
        cfg = compose(overrides)
        if multirun and cfg.output:
            tag = "_".join(o.replace("/", "-").replace("=", "-") for o in overrides if o not in rest)
            cfg.output = os.path.join(cfg.output, f"sweep_{i}_{tag}" if tag else f"sweep_{i}")
        if cfg.dry_run:
            _dry_run(cfg)
            continue
        if not cfg.input:
            raise UserError("no input given: pass input=PATH (a video, a folder, or a text file listing paths)")
        if not cfg.output:
            raise UserError("no output given: pass output=DIR")
        from .engine.run import run

        report = run(cfg)
        print(json.dumps({k: report[k] for k in ("videos", "segments", "rejects", "input_seconds", "kept_seconds",
                                                 "retention", "wall_seconds", "speed_ratio", "cost_usd")}
                         | {"output": cfg.output}))
    return status


def _expand_sweep(overrides: list[str]) -> list[list[str]]:
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


def _dry_run(cfg) -> None:
    from .engine.ray_pipeline import placement_plan
    from .models_dir import status

    rows = status(cfg)
    for r in rows:
        print(f"{'present' if r.present else 'MISSING':8s} {r.component:11s} {r.path}  ({r.source})")
    try:
        plan = placement_plan(cfg, cluster_gpus=0, cluster_cpus=os.cpu_count() or 1)
        print(json.dumps({"stages": plan}))
    except ImportError as e:
        print(f"stage plan unavailable: {e}")


def _models(args: list[str]) -> int:
    from .config import compose

    if "--labeler" in args:
        from .labelers.preflight import served_models

        cfg = compose([a for a in args if a != "--labeler"])
        for model in served_models(cfg.labeler):
            print(f"{model}{'  (configured)' if model == cfg.labeler.model else ''}")
        return 0
    _dry_run(compose(args))
    return 0


def _label(args: list[str]) -> int:
    from .labelers.command import label_command

    return label_command(["labeler.relabel=true" if a == "--relabel" else a for a in args])


def _evaluate(args: list[str]) -> int:
    from .evaluate.commands import evaluate_command

    return evaluate_command(args)


def _agreement(args: list[str]) -> int:
    from .evaluate.commands import agreement_command

    return agreement_command(args)


def _report(args: list[str]) -> int:
    from .evaluate.commands import report_map_command

    return report_map_command(args)


def _export(args: list[str]) -> int:
    from .dataset.export import export_command

    return export_command(args)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "run": _run,
    "label": _label,
    "evaluate": _evaluate,
    "agreement": _agreement,
    "report": _report,
    "models": _models,
    "export": _export,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if argv else 2
    cmd, args = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"mikupal: unknown command '{cmd}' (one of: {', '.join(COMMANDS)}; see mikupal --help)", file=sys.stderr)
        return 2
    if any(a in ("-h", "--help") for a in args):
        print(USAGE, end="")
        return 0
    logging.basicConfig(level=os.environ.get("MIKUPAL_LOG_LEVEL", "WARNING"), format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(COMMANDS[cmd](args) or 0)
    except UserError as e:
        print(f"mikupal {cmd}: {e}", file=sys.stderr)
        return int(getattr(e, "exit_code", 2))  # 2, or 128 + signal for a run stopped by SIGTERM/SIGINT
    except KeyboardInterrupt:
        print(f"mikupal {cmd}: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
