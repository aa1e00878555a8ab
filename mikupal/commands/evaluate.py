"""`mikupal evaluate`: score predictions against a benchmark's gold labels, or label the benchmark's
own clips first and then score them. Prints one JSON object; `output=DIR` also gets metrics.json and
confusion_matrix.png (`evaluate/metrics.py`).

    mikupal evaluate predictions=PATH gold=meld:test meld_dir=DIR pred_column=label output=DIR
    mikupal evaluate predictions=PATH gold=gold.csv gold_column=emotion id_columns=[a,b] output=DIR
    mikupal evaluate dataset=meld split=test meld_dir=DIR clips=DIR labeler=gemini output=DIR [limit=N]
        (label the benchmark's own clips first: see mikupal.evaluate.label_benchmark)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence

from pydantic import field_validator

from ..config import compose, parse_overrides
from ..errors import UserError
from ..evaluate.datasets import iemocap, meld, table
from ..taxonomy import load_taxonomy
from .analysis import Args, comma_list, emit, user_errors
from .help import CommandHelp


class EvaluateArgs(Args):
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

    _lists = field_validator("id_columns", "labels", "exclude", mode="before")(comma_list)


HELP = CommandHelp(
    usage="mikupal evaluate predictions=PATH gold=meld:test|iemocap|TABLE [key=value ...]  |  dataset=meld split=test clips=DIR labeler=...",
    what="""Score predictions against a benchmark's gold labels (accuracy, weighted F1, confusion matrix),
or label the benchmark's own clips first and score those. Prints one JSON object; output=DIR also
gets metrics.json and confusion_matrix.png.""",
    keys=[("predictions", "a predictions table (without it the benchmark is labeled)"),
          ("gold", "a table, or meld[:split] / iemocap[:sessions]"), ("dataset", "meld | iemocap | table"),
          ("split", "meld: train/dev/test; iemocap: sessions"), ("meld_dir", "the MELD CSVs ($MIKUPAL_MELD_DIR)"),
          ("clips", "the benchmark's clips (labeling)"), ("pred_column", "the predicted label"),
          ("map_from", "the predictions' taxonomy, mapped onto the dataset's"), ("limit", "label only the first N items"),
          ("output", "also write metrics.json and confusion_matrix.png here")],
    model=EvaluateArgs,
    examples=["mikupal evaluate predictions=out/segments gold=meld:test meld_dir=data/meld map_from=cowen_keltner_26 output=eval/"],
)


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
    from ..evaluate import label_benchmark as lb

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
    from ..evaluate.label_benchmark import label_and_evaluate

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
    emit(result, args.output, "metrics.json")
    return 0


@user_errors
def evaluate_command(overrides: Sequence[str]) -> int:
    """Score predictions against gold labels; print metrics as JSON, write metrics.json and
    confusion_matrix.png into `output`. With `clips=DIR` (or labeler overrides and no
    `predictions=`), first label the benchmark's own clips into `output/predictions.parquet`."""
    from ..evaluate import metrics  # sklearn: imported only by the commands that need it

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
    emit(result, args.output, "metrics.json")
    return 0
