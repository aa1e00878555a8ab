"""The columns a TTS user trains on besides text and emotion: the measured prosody, its bins, what
the labeler heard (non-verbal events, perceived gender, age, accent) and the caption. One list,
read by the `hf` and `parler` exports (and anything else that carries them), with their types."""

from __future__ import annotations

from typing import Any

#: column -> datasets Value dtype (None: the events' list of structs)
COLUMNS: dict[str, Any] = {
    "f0_median_hz": "float32", "f0_median_semitones": "float32", "f0_range_hz": "float32",
    "f0_range_semitones": "float32", "f0_mean_hz": "float32", "f0_std_hz": "float32", "f0_std_semitones": "float32",
    "voiced_fraction": "float32", "syllables": "int32", "speech_seconds": "float32", "syllables_per_second": "float32",
    "loudness_lufs": "float32", "peak_dbfs": "float32", "vocals_snr_db": "float32",
    "pitch_bin": "string", "pitch_variation_bin": "string", "speaking_rate_bin": "string", "loudness_bin": "string",
    "noise_bin": "string",
    "nonverbal_events": None, "perceived_gender": "string", "perceived_age": "string", "accent": "string",
    "caption": "string", "caption_source": "string",
}


def features() -> dict[str, Any]:
    """`datasets` feature types of the columns."""
    from datasets import List, Value

    event = {"event": Value("string"), "start": Value("float32"), "end": Value("float32")}
    return {k: (List(event) if t is None else Value(t)) for k, t in COLUMNS.items()}


def values(row: dict[str, Any]) -> dict[str, Any]:
    """The columns of one segment row (absent in an older output: null, no events)."""
    out = {k: row.get(k) for k in COLUMNS}
    out["nonverbal_events"] = [{k: e[k] for k in ("event", "start", "end")} for e in row.get("nonverbal_events") or []]
    return out
