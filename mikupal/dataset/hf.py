"""format=hf: a `datasets.Dataset` (or a train/test `DatasetDict`) written with `save_to_disk`.

The `audio` column is typed `datasets.Audio(sampling_rate=...)` and holds the FLAC bytes, so the
saved folder stands alone (no paths back into the run's output dir) and `push_to_hub` uploads the
audio with it. It also carries the TTS columns (`tts_columns.py`: measured prosody, bins, events,
traits, caption). Rows are generated one at a time into Arrow files: the audio never sits in memory
all at once.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from . import tts_columns
from .rows import audio_file, speaker_of


def features(sample_rate: int):
    from datasets import Audio, Features, List, Value

    emotion = {"name": Value("string"), "intensity": Value("float32")}
    word = {"word": Value("string"), "start": Value("float64"), "end": Value("float64"), "probability": Value("float32")}
    return Features({
        "segment_id": Value("string"),
        "audio": Audio(sampling_rate=sample_rate),
        "text": Value("string"),
        "words": List(word),
        "speaker_id": Value("string"),
        "video_id": Value("string"),
        "language": Value("string"),
        "start": Value("float64"),
        "end": Value("float64"),
        "duration": Value("float64"),
        "emotions": List(emotion),
        "primary_emotion": Value("string"),
        "dnsmos_sig": Value("float32"),
        "dnsmos_bak": Value("float32"),
        "dnsmos_ovrl": Value("float32"),
        "dnsmos_p808": Value("float32"),
        "clip_path": Value("string"),
        **tts_columns.features(),
    })


def _examples(root: Path, rows: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for r in rows:
        path = audio_file(root, r)
        yield {
            "segment_id": r["segment_id"],
            "audio": {"bytes": path.read_bytes(), "path": path.name},
            "text": r.get("text") or "",
            "words": [{k: w[k] for k in ("word", "start", "end", "probability")} for w in r.get("words") or []],
            "speaker_id": speaker_of(r),
            "video_id": r["video_id"],
            "language": r.get("language") or "",
            "start": r["start"], "end": r["end"], "duration": r.get("duration") or r["end"] - r["start"],
            "emotions": r.get("emotions") or [],
            "primary_emotion": r.get("primary_emotion"),
            **{k: r.get(k) for k in ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808")},
            "clip_path": r.get("clip_path") or None,
            **tts_columns.values(r),
        }


def write_hf(root: Path, out: Path, splits: dict[str, list[dict[str, Any]]], args) -> list[str]:
    from datasets import Dataset, DatasetDict, disable_progress_bars

    disable_progress_bars()  # the command prints one JSON line; bars would interleave with it
    rates = Counter(int(r["sample_rate"]) for rows in splits.values() for r in rows if r.get("sample_rate"))
    feats = features(rates.most_common(1)[0][0] if rates else 44100)
    cache = Path(tempfile.mkdtemp(prefix=".hf-cache-", dir=out))
    try:
        built = {name: Dataset.from_generator(_examples, gen_kwargs={"root": root, "rows": rows}, features=feats,
                                              cache_dir=str(cache), split="train" if name == "all" else name)
                 for name, rows in splits.items()}
        target = built["all"] if set(built) == {"all"} else DatasetDict(built)
        target.save_to_disk(str(out))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
