"""format=hf: a `datasets.Dataset` (or a train/test `DatasetDict`) written with `save_to_disk`.

The `audio` column is typed `datasets.Audio(sampling_rate=...)` and holds the FLAC bytes, so the
saved folder stands alone (no paths back into the run's output dir) and `push_to_hub` uploads the
audio with it; with `clips=true` a `clip` column holds each speaker clip's MP4 bytes the same way.
The other columns are `rows.export_fields`: `words` in seconds of the audio column, the span in the
source file as `source_start`/`source_end`. Rows are generated one at a time into Arrow files: the
audio never sits in memory all at once. The TTS columns (`tts_columns.py`: measured prosody, bins,
events, traits, caption) come with them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from . import tts_columns
from .rows import LABELS, MEASURED, audio_file, clip_file, export_fields


def features(sample_rate: int, clips: bool = False):
    from datasets import Audio, Features, List, Value

    emotion = {"name": Value("string"), "intensity": Value("float32")}
    word = {"word": Value("string"), "start": Value("float64"), "end": Value("float64"), "probability": Value("float32")}
    cols = {
        "segment_id": Value("string"),
        "audio": Audio(sampling_rate=sample_rate),
        "text": Value("string"),
        "words": List(word),  # seconds from the start of `audio`
        "speaker_id": Value("string"),
        "global_speaker_id": Value("string"),
        "video_id": Value("string"),
        "source": Value("string"),
        "source_start": Value("float64"),  # the span in the source file, seconds
        "source_end": Value("float64"),
        "duration": Value("float64"),
        "language": Value("string"),
        **{k: Value("float32") for k in MEASURED},
        **{k: Value("string") for k in LABELS},
        "emotions": List(emotion),
        "sample_rate": Value("int32"),
    }
    cols.update(tts_columns.features())
    if clips:
        cols["clip"] = Value("binary")  # the speaker clip, MP4 bytes
    return Features(cols)


def _examples(root: Path, rows: list[dict[str, Any]], clips: bool = False) -> Iterator[dict[str, Any]]:
    for r in rows:
        path = audio_file(root, r)
        example = export_fields(r) | tts_columns.values(r) | {"audio": {"bytes": path.read_bytes(), "path": path.name}}
        if clips:
            clip = clip_file(root, r)
            example["clip"] = clip.read_bytes() if clip is not None else None
        yield example


def write_hf(root: Path, out: Path, splits: dict[str, list[dict[str, Any]]], args) -> list[str]:
    from datasets import Dataset, DatasetDict, disable_progress_bars

    disable_progress_bars()  # the command prints one JSON line; bars would interleave with it
    rates = Counter(int(r["sample_rate"]) for rows in splits.values() for r in rows if r.get("sample_rate"))
    clips = bool(getattr(args, "clips", False))
    feats = features(rates.most_common(1)[0][0] if rates else 44100, clips)
    cache = Path(tempfile.mkdtemp(prefix=".hf-cache-", dir=out))
    try:
        built = {name: Dataset.from_generator(_examples, gen_kwargs={"root": root, "rows": rows, "clips": clips}, features=feats,
                                              cache_dir=str(cache), split="train" if name == "all" else name)
                 for name, rows in splits.items()}
        target = built["all"] if set(built) == {"all"} else DatasetDict(built)
        target.save_to_disk(str(out))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
