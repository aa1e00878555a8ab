"""format=parler: a `datasets.Dataset` (or a train/test `DatasetDict`) laid out the way Parler-TTS
training and dataspeech name their columns, so `training/run_parler_tts_training.py` reads it with
`--target_audio_column_name audio --prompt_column_name text --description_column_name
text_description` and nothing to rename.

| column | from |
|---|---|
| `id`, `audio` (`datasets.Audio`, FLAC bytes), `text` | segment id, its audio, its transcript |
| `text_description` | the caption: the labeler's, else the one made from the measured bins (`caption_source`) |
| `speaker_id`, `gender` | speaker; perceived gender (`male` / `female`, null when unsure or not asked) |
| `utterance_pitch_mean`, `utterance_pitch_std` | F0 mean and standard deviation in Hz (dataspeech's names) |
| `snr`, `speech_duration` | the vocals' SNR in dB; seconds of speech (the word intervals) |
| `pitch`, `speaking_rate`, `noise`, `speech_monotony` | dataspeech's text bins (`describe.py`): pitch relative to gender, rate, SNR, pitch variation |
| `accent`, `primary_emotion`, ... | the other TTS columns under their own names (`tts_columns.py`) |

dataspeech's reverberation (`c50`, `reverberation`) is not measured, so it is absent; a caption is
already there, so dataspeech's prompt-creation step is not needed.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from . import tts_columns
from .rows import audio_file, speaker_of

#: dataspeech's name -> our column
DATASPEECH = {"utterance_pitch_mean": "f0_mean_hz", "utterance_pitch_std": "f0_std_hz", "snr": "vocals_snr_db",
              "speech_duration": "speech_seconds", "pitch": "pitch_bin", "speaking_rate": "speaking_rate_bin",
              "noise": "noise_bin", "speech_monotony": "pitch_variation_bin"}


def features(sample_rate: int):
    from datasets import Audio, Features, Value

    numeric = {"utterance_pitch_mean", "utterance_pitch_std", "snr", "speech_duration"}
    return Features({
        "id": Value("string"), "audio": Audio(sampling_rate=sample_rate), "text": Value("string"),
        "text_description": Value("string"), "speaker_id": Value("string"), "gender": Value("string"),
        **{k: Value("float32" if k in numeric else "string") for k in DATASPEECH},
        "primary_emotion": Value("string"), "duration": Value("float32"),
        **{k: v for k, v in tts_columns.features().items() if k not in DATASPEECH.values()},
    })


def example(root: Path, r: dict[str, Any]) -> dict[str, Any]:
    path = audio_file(root, r)
    gender = r.get("perceived_gender")
    extra = tts_columns.values(r)
    return {
        "id": r["segment_id"], "audio": {"bytes": path.read_bytes(), "path": path.name}, "text": r.get("text") or "",
        "text_description": r.get("caption") or "", "speaker_id": speaker_of(r),
        "gender": gender if gender in ("male", "female") else None,
        **{k: r.get(v) for k, v in DATASPEECH.items()},
        "primary_emotion": r.get("primary_emotion"), "duration": r.get("duration") or r["end"] - r["start"],
        **{k: v for k, v in extra.items() if k not in DATASPEECH.values()},
    }


def _examples(root: Path, rows: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for r in rows:
        yield example(root, r)


def write_parler(root: Path, out: Path, splits: dict[str, list[dict[str, Any]]], args) -> list[str]:
    from datasets import Dataset, DatasetDict, disable_progress_bars

    disable_progress_bars()
    rates = Counter(int(r["sample_rate"]) for rows in splits.values() for r in rows if r.get("sample_rate"))
    feats = features(rates.most_common(1)[0][0] if rates else 44100)
    cache = Path(tempfile.mkdtemp(prefix=".hf-cache-", dir=out))
    try:
        built = {name: Dataset.from_generator(_examples, gen_kwargs={"root": root, "rows": rows}, features=feats,
                                              cache_dir=str(cache), split="train" if name == "all" else name)
                 for name, rows in splits.items()}
        (built["all"] if set(built) == {"all"} else DatasetDict(built)).save_to_disk(str(out))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
