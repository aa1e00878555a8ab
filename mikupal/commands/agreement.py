"""`mikupal agreement runs=[A,B,...]`: how far repeated labeling runs over the same items agree
(`evaluate/agreement.py`). Prints one JSON object; `output=DIR` also gets agreement.json."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from pydantic import Field, field_validator

from ..config import parse_overrides
from ..errors import UserError
from ..evaluate.datasets import table
from .analysis import Args, comma_list, emit, user_errors
from .help import CommandHelp


class AgreementArgs(Args):
    runs: list[str]
    id_columns: list[str] = Field(default_factory=lambda: ["segment_id"])
    pred_column: str = "primary_emotion"
    intensity_column: Optional[str] = None
    names: Optional[list[str]] = None
    output: Optional[str] = None

    _lists = field_validator("runs", "id_columns", "names", mode="before")(comma_list)


HELP = CommandHelp(
    usage="mikupal agreement runs=[A,B,...] [key=value ...]",
    what="""How far repeated labeling runs over the same items agree (Krippendorff's alpha, pairwise
agreement). Prints one JSON object; output=DIR also gets agreement.json.""",
    keys=[("runs", "two or more run dirs or tables"), ("id_columns", "what identifies an item"),
          ("pred_column", "the label compared"), ("intensity_column", "compare intensities too"),
          ("names", "a name per run"), ("output", "also write agreement.json here")],
    model=AgreementArgs,
    examples=["mikupal agreement runs=[out1,out2,out3]"],
)


def _run_names(paths: Sequence[str]) -> list[str]:
    names = [Path(p).name if Path(p).name != "segments" else Path(p).parent.name for p in paths]
    return names if len(set(names)) == len(names) else list(paths)


@user_errors
def agreement_command(overrides: Sequence[str]) -> int:
    """Agreement between repeated runs over the same items; print JSON, write agreement.json into `output`."""
    from ..evaluate.agreement import agreement

    args = parse_overrides(overrides, AgreementArgs)
    if len(args.runs) < 2:
        raise UserError(f"runs=[...] needs at least 2 runs, got {len(args.runs)}")
    names = args.names or _run_names([str(Path(p)) for p in args.runs])
    if len(names) != len(args.runs):
        raise UserError(f"names has {len(names)} entries for {len(args.runs)} runs")
    frames = [table.read_table(p, args.id_columns, args.pred_column) for p in args.runs]
    result = agreement(frames, args.id_columns, args.pred_column, names, args.intensity_column)
    emit(result, args.output, "agreement.json")
    return 0
