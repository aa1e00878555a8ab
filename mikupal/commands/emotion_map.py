"""`mikupal emotion-map input=DIR [output=DIR]`: the emotion map (t-SNE) and label distribution plots
of a run's segments (`evaluate/emotion_map.py`). report.json and report.html are the run's own,
rebuilt by every run and by `mikupal report input=DIR` (`commands/report.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from ..config import parse_overrides
from ..evaluate.datasets import table
from ..taxonomy import load_taxonomy
from .analysis import Args, emit, user_errors
from .help import CommandHelp


class EmotionMapArgs(Args):
    input: str  # a run output dir, its segments/ dir, or a Parquet/CSV file
    output: Optional[str] = None  # default: the folder holding segments/ (the run dir) or the file
    taxonomy: str = "cowen_keltner_26"
    label_column: str = "primary_emotion"
    intensity_column: Optional[str] = None
    perplexity: float = 30.0
    seed: int = 0
    max_points: int = 5000


HELP = CommandHelp(
    usage="mikupal emotion-map input=DIR [output=DIR] [key=value ...]",
    what="""The emotion map (t-SNE of the segments' emotion intensities) and the label distribution of a
run's segments: emotion_map.png and label_distribution.png, into the run dir by default.""",
    keys=[("input", "a run output dir, its segments/ dir, or a Parquet/CSV table"),
          ("output", "where the PNGs go (default: the run dir)"), ("taxonomy", "the label set"),
          ("label_column", "the label drawn"), ("intensity_column", "per-category intensities (default: emotions)"),
          ("perplexity", "t-SNE perplexity"), ("seed", "t-SNE seed"), ("max_points", "segments drawn at most")],
    model=EmotionMapArgs,
    examples=["mikupal emotion-map input=out/"],
)


@user_errors
def emotion_map_command(overrides: Sequence[str]) -> int:
    """Emotion map (t-SNE) and label distribution of a run's segments: emotion_map.png and
    label_distribution.png (default: into the run dir)."""
    from ..evaluate.emotion_map import plot_emotion_map, plot_label_distribution

    args = parse_overrides(overrides, EmotionMapArgs)
    source = table.resolve_dataset_path(args.input)
    segments = table.read_any(source)
    # never into a Parquet dataset folder itself: its readers would trip over the PNGs
    out = Path(args.output).expanduser() if args.output else source.parent
    out.mkdir(parents=True, exist_ok=True)
    taxonomy = load_taxonomy(args.taxonomy)
    emotion_map = plot_emotion_map(
        segments, taxonomy, out / "emotion_map.png", intensity_column=args.intensity_column,
        perplexity=args.perplexity, seed=args.seed, max_points=args.max_points,
    )
    distribution = plot_label_distribution(
        segments, taxonomy, out / "label_distribution.png", args.label_column, args.intensity_column
    )
    emit({"n_segments": len(segments), "emotion_map": str(emotion_map), "label_distribution": str(distribution)}, None, "")
    return 0
