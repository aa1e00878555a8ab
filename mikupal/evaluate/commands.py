"""CLI entry points of `mikupal evaluate | agreement | report map=...`.

Each takes Hydra-style `key=value` overrides (lists as `[a,b]`), validates them with a pydantic
model, prints one JSON object to stdout and returns an exit code; user mistakes raise
`mikupal.errors.UserError`. Also runnable as `python -m mikupal.evaluate.commands evaluate k=v ...`.

    mikupal evaluate predictions=PATH gold=meld:test meld_dir=DIR pred_column=label output=DIR
    mikupal evaluate predictions=PATH gold=gold.csv gold_column=emotion id_columns=[a,b] output=DIR
    mikupal evaluate dataset=meld split=test meld_dir=DIR clips=DIR labeler=gemini output=DIR [limit=N]
        (label the benchmark's own clips first: see mikupal.evaluate.label_benchmark)
    mikupal agreement runs=[out1,out2,out3] id_columns=[segment_id] pred_column=primary_emotion
    mikupal report map=RUN_DIR [output=DIR]
"""

from __future__ import annotations

import functools
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mikupal.config import parse_overrides
from mikupal.errors import UserError
from mikupal.evaluate.datasets import iemocap, meld, table
from mikupal.taxonomy import load_taxonomy



class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


def _comma_list(v: Any) -> Any:
    """`runs=a,b` as well as `runs=[a,b]`."""
    return [x.strip() for x in v.split(",") if x.strip()] if isinstance(v, str) else v


class EvaluateArgs(_Args):
    predictions: Optional[str] = None  # a predictions table; without it the benchmark is labeled (clips=...)
    gold: Optional[str] = None  # a table path, or meld[:split] / iemocap[:sessions]
    dataset: Optional[str] = None  # meld | iemocap | table (alternative to gold=meld:test)
    split: Optional[str] = None  # meld: train/dev/test; iemocap: sessions, e.g. "5" or "4,5"
    meld_dir: Optional[str] = None  # default $MIKUPAL_MELD_DIR
    iemocap_dir: Optional[str] = None  # default $MIKUPAL_IEMOCAP_DIR
    pred_column: str = "primary_emotion"
    gold_column: Optional[str] = None  # default "emotion" for meld/iemocap
    id_columns: Optional[list[str]] = None  # default per dataset
    map_from: Optional[str] = None  # taxonomy of the predictions, e.g. cowen_keltner_26
    map_to: Optional[str] = None  # mapping target; default the dataset (meld / iemocap)
    use_intensities: bool = True  # with map_from: argmax of summed intensities when present
    intensity_column: Optional[str] = None
    labels: Optional[list[str]] = None  # label set; default the gold labels
    exclude: Optional[list[str]] = None  # gold labels dropped in the second block; default neutral, frustrated
    output: Optional[str] = None
    # labeling the benchmark (with clips=, or without predictions=); labeler.* overrides go to the labeler
    clips: Optional[str] = None  # MELD: the folder of dia{D}_utt{U}.mp4; IEMOCAP: default iemocap_dir
    limit: Optional[int] = None  # label only the first N items
    text_column: str = "text"  # dataset=table: the transcript column
    clip_column: str = "clip"  # dataset=table: the clip path column (relative to clips=)
    taxonomy: Optional[str] = None  # dataset=table: the label set (default labels=[...] or the gold labels)

    _lists = field_validator("id_columns", "labels", "exclude", mode="before")(_comma_list)


class AgreementArgs(_Args):
    runs: list[str]
    id_columns: list[str] = Field(default_factory=lambda: ["segment_id"])
    pred_column: str = "primary_emotion"
    intensity_column: Optional[str] = None
    names: Optional[list[str]] = None
    output: Optional[str] = None

    _lists = field_validator("runs", "id_columns", "names", mode="before")(_comma_list)


class ReportMapArgs(_Args):
    map: str  # a run output dir, its segments/ dir, or a Parquet/CSV file
    output: Optional[str] = None  # default: the folder holding segments/ (the run dir) or the file
    taxonomy: str = "cowen_keltner_26"
    label_column: str = "primary_emotion"
    intensity_column: Optional[str] = None
    perplexity: float = 30.0
    seed: int = 0
    max_points: int = 5000


# ---------------------------------------------------------------- plumbing


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _emit(result: dict[str, Any], output: Optional[str], filename: str) -> None:
    text = json.dumps(result, indent=2, default=_json_default, allow_nan=False)
    if output:
        out = Path(output).expanduser()
        out.mkdir(parents=True, exist_ok=True)
        (out / filename).write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _user_errors(fn: Callable[..., int]) -> Callable[..., int]:
    """Data problems found while running (missing file, column, bad CSV) become UserError."""

    @functools.wraps(fn)
    def wrapper(overrides: Sequence[str]) -> int:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # sklearn/statsmodels warnings must not mix into the JSON
                return fn(overrides)
        except (ValueError, FileNotFoundError) as e:
            raise UserError(str(e)) from None

    return wrapper


# ---------------------------------------------------------------- evaluate


def _dir_from(value: Optional[str], env: str, what: str) -> Path:
    value = value or os.environ.get(env)
    if not value:
        raise UserError(f"{what} needs its data folder: pass {what}_dir=PATH or set {env}")
    path = Path(value).expanduser()
    if not path.is_dir():
        raise UserError(f"{what}_dir is not a folder: {path}")
    return path


def _dataset_split(args: EvaluateArgs) -> tuple[str, Optional[str]]:
    """dataset=meld split=test, gold=meld:test, or gold=PATH (a table) -> (dataset, split)."""
    dataset, split = args.dataset, args.split
    if args.gold and not Path(args.gold).expanduser().exists():
        name, _, rest = args.gold.partition(":")
        if name.lower() in ("meld", "iemocap"):
            dataset, split = name.lower(), rest or split
    if dataset is None and args.gold:
        dataset = "table"
    if dataset is None:
        raise UserError("missing gold=PATH (or gold=meld:test, or dataset=meld split=test)")
    return dataset, split


def _iemocap_sessions(split: Optional[str]) -> Optional[list[int]]:
    try:
        return [int(s) for s in split.split(",")] if split else None
    except ValueError:
        raise UserError(f"iemocap split must be session numbers like 5 or 4,5, got {split!r}") from None


def _load_gold(args: EvaluateArgs) -> tuple[Any, str, list[str], str, str]:
    """-> (gold frame, dataset name, default id columns, default gold column, description)."""
    dataset, split = _dataset_split(args)
    if dataset == "meld":
        split = split or "test"
        folder = _dir_from(args.meld_dir, "MIKUPAL_MELD_DIR", "meld")
        return meld.meld_frame(folder, split), "meld", list(meld.ID_COLUMNS), meld.LABEL_COLUMN, f"meld:{split}"
    if dataset == "iemocap":
        folder = _dir_from(args.iemocap_dir, "MIKUPAL_IEMOCAP_DIR", "iemocap")
        frame = iemocap.iemocap_frame(folder, _iemocap_sessions(split))
        return frame, "iemocap", list(iemocap.ID_COLUMNS), iemocap.LABEL_COLUMN, f"iemocap:{split or 'all'}"
    if dataset == "table":
        if not args.gold:
            raise UserError("dataset=table needs gold=PATH")
        return table.read_any(args.gold), "table", [], "", args.gold
    raise UserError(f"unknown dataset {dataset!r}: use meld, iemocap or table")


def _is_labeler_override(o: str) -> bool:
    key = o.lstrip("+~").split("=", 1)[0].strip()
    return key == "labeler" or key.startswith("labeler.")


def _load_benchmark(args: EvaluateArgs, mode: str, context_turns: int):
    from mikupal.evaluate import label_benchmark as lb

    dataset, split = _dataset_split(args)
    if dataset in ("meld", "iemocap") and args.taxonomy and args.taxonomy.lower() != dataset:
        raise UserError(f"dataset={dataset} is labeled with its own label set: drop taxonomy={args.taxonomy}")
    if dataset == "meld":
        folder = _dir_from(args.meld_dir, "MIKUPAL_MELD_DIR", "meld")
        return lb.load_meld(folder, split or "test", args.clips, mode, context_turns)
    if dataset == "iemocap":
        folder = _dir_from(args.iemocap_dir, "MIKUPAL_IEMOCAP_DIR", "iemocap")
        return lb.load_iemocap(folder, _iemocap_sessions(split), args.clips, mode, context_turns)
    if dataset == "table":
        if not args.gold:
            raise UserError("dataset=table needs gold=PATH")
        if not args.id_columns:
            raise UserError("missing id_columns=[...] (the columns that identify an item)")
        if not args.gold_column:
            raise UserError("missing gold_column=NAME (the gold label column)")
        return lb.load_table(args.gold, args.id_columns, args.gold_column, args.clips, mode,
                             args.text_column, args.clip_column, args.taxonomy, args.labels)  # fmt: skip
    raise UserError(f"unknown dataset {dataset!r}: use meld, iemocap or table")


def _label_and_evaluate(args: EvaluateArgs, labeler_overrides: list[str]) -> int:
    """`clips=DIR`: label the benchmark's own clips, then score (see mikupal.evaluate.label_benchmark)."""
    from mikupal.config import compose
    from mikupal.evaluate.label_benchmark import label_and_evaluate

    if not args.output:
        raise UserError("labeling the benchmark needs output=DIR (predictions.parquet and metrics go there)")
    if args.map_from:
        raise UserError("map_from=... applies to predictions=PATH; labeling uses the benchmark's own labels")
    cfg = compose(labeler_overrides)
    bench = _load_benchmark(args, cfg.labeler.mode, cfg.labeler.context_turns)
    if args.id_columns and list(args.id_columns) != bench.id_columns:
        raise UserError(f"{bench.name} items are identified by {bench.id_columns}: drop id_columns=...")
    output = Path(args.output).expanduser()
    result = label_and_evaluate(bench, cfg, output, args.limit, args.labels, args.exclude)
    result["inputs"] = {
        "predictions": str(output / "predictions.parquet"),
        "gold": bench.desc,
        "pred_column": "prediction",
        "gold_column": bench.gold_column,
        "id_columns": bench.id_columns,
        "map_from": None,
        "clips": str(bench.clips) if bench.clips else None,
        "limit": args.limit,
    }
    _emit(result, args.output, "metrics.json")
    return 0


@_user_errors
def evaluate_command(overrides: Sequence[str]) -> int:
    """Score predictions against gold labels; print metrics as JSON, write metrics.json and
    confusion_matrix.png into `output`. With `clips=DIR` (or labeler overrides and no
    `predictions=`), first label the benchmark's own clips into `output/predictions.parquet`."""
    from mikupal.evaluate import metrics  # sklearn: imported only by the commands that need it

    labeler_overrides = [o for o in overrides if _is_labeler_override(o)]
    args = parse_overrides([o for o in overrides if not _is_labeler_override(o)], EvaluateArgs)
    if args.clips is not None or (args.predictions is None and labeler_overrides):
        if args.predictions is not None:
            raise UserError("give predictions=PATH (score a predictions file) or clips=DIR (label the "
                            "benchmark's clips first), not both")  # fmt: skip
        return _label_and_evaluate(args, labeler_overrides)
    if args.predictions is None:
        raise UserError("missing predictions=PATH (a predictions table), or clips=DIR to label the benchmark's "
                        "clips first (with labeler=... overrides)")  # fmt: skip
    if labeler_overrides:
        raise UserError(f"{labeler_overrides[0]}: labeler settings apply when labeling (clips=DIR), "
                        "not when scoring predictions=PATH")  # fmt: skip
    if args.limit is not None:
        raise UserError("limit=N applies when labeling (clips=DIR), not when scoring predictions=PATH")
    gold, dataset, default_ids, default_gold_column, gold_desc = _load_gold(args)
    id_columns = args.id_columns or default_ids
    gold_column = args.gold_column or default_gold_column
    if not id_columns:
        raise UserError("missing id_columns=[...] (the columns that identify an item in both tables)")
    if not gold_column:
        raise UserError("missing gold_column=NAME (the gold label column)")
    predictions = table.read_any(args.predictions)
    pred_column = args.pred_column
    if args.map_from:
        target = args.map_to or (dataset if dataset in ("meld", "iemocap") else None)
        if not target:
            raise UserError("map_from=... needs map_to=TARGET (a mapping of that taxonomy, e.g. meld)")
        predictions = predictions.assign(
            _mapped=metrics.map_predictions(
                predictions, pred_column, load_taxonomy(args.map_from), target,
                use_intensities=args.use_intensities, intensity_column=args.intensity_column,
            )  # fmt: skip
        )
        pred_column = "_mapped"
    result = metrics.evaluate(
        predictions, gold, id_columns, pred_column, gold_column,
        labels=args.labels, exclude=metrics.EXCLUDED_LABELS if args.exclude is None else args.exclude,
        output_dir=args.output,
    )  # fmt: skip
    result["inputs"] = {
        "predictions": args.predictions,
        "gold": gold_desc,
        "pred_column": args.pred_column,
        "gold_column": gold_column,
        "id_columns": id_columns,
        "map_from": args.map_from,
    }
    _emit(result, args.output, "metrics.json")
    return 0


# ---------------------------------------------------------------- agreement


def _run_names(paths: Sequence[str]) -> list[str]:
    names = [Path(p).name if Path(p).name != "segments" else Path(p).parent.name for p in paths]
    return names if len(set(names)) == len(names) else list(paths)


@_user_errors
def agreement_command(overrides: Sequence[str]) -> int:
    """Agreement between repeated runs over the same items; print JSON, write agreement.json into `output`."""
    from mikupal.evaluate.agreement import agreement

    args = parse_overrides(overrides, AgreementArgs)
    if len(args.runs) < 2:
        raise UserError(f"runs=[...] needs at least 2 runs, got {len(args.runs)}")
    names = args.names or _run_names([str(Path(p)) for p in args.runs])
    if len(names) != len(args.runs):
        raise UserError(f"names has {len(names)} entries for {len(args.runs)} runs")
    frames = [table.read_table(p, args.id_columns, args.pred_column) for p in args.runs]
    result = agreement(frames, args.id_columns, args.pred_column, names, args.intensity_column)
    _emit(result, args.output, "agreement.json")
    return 0


# ---------------------------------------------------------------- report map


@_user_errors
def report_map_command(overrides: Sequence[str]) -> int:
    """Emotion map (t-SNE) and label distribution of a run's segments: emotion_map.png and
    label_distribution.png (default: into the run dir)."""
    from mikupal.evaluate.emotion_map import plot_emotion_map, plot_label_distribution

    args = parse_overrides(overrides, ReportMapArgs)
    source = table.resolve_dataset_path(args.map)
    segments = table.read_any(source)
    # never into a Parquet dataset folder itself: its readers would trip over the PNGs
    out = Path(args.output).expanduser() if args.output else source.parent
    out.mkdir(parents=True, exist_ok=True)
    taxonomy = load_taxonomy(args.taxonomy)
    emotion_map = plot_emotion_map(
        segments, taxonomy, out / "emotion_map.png", intensity_column=args.intensity_column,
        perplexity=args.perplexity, seed=args.seed, max_points=args.max_points,
    )  # fmt: skip
    distribution = plot_label_distribution(
        segments, taxonomy, out / "label_distribution.png", args.label_column, args.intensity_column
    )
    _emit({"n_segments": len(segments), "emotion_map": str(emotion_map), "label_distribution": str(distribution)}, None, "")
    return 0


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "evaluate": evaluate_command,
    "agreement": agreement_command,
    "report": report_map_command,
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m mikupal.evaluate.commands {{{','.join(COMMANDS)}}} key=value ...", file=sys.stderr)
        return 2
    try:
        return COMMANDS[argv[0]](argv[1:])
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
