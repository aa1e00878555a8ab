"""Rows of a finished output dir as plain dicts, read without a fixed schema.

Reading file by file with each file's own schema keeps older outputs (no `dnsmos_*` columns) and
newer ones (`speaker_id`, `speaker_embedding`) loadable alike; a missing column reads as absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import pyarrow.parquet as pq

from .. import layout
from ..errors import UserError
from ..layout import OutputPaths


def read_parquet_dir(path: Path, columns: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
    """All rows of the folder's Parquet files; with `columns`, only those of them each file has."""
    rows: list[dict[str, Any]] = []
    for f in sorted(Path(path).glob("*.parquet")):
        names = None
        if columns is not None:
            have = set(pq.read_schema(f).names)
            names = [c for c in columns if c in have]
        rows.extend(pq.read_table(f, columns=names).to_pylist())
    return rows


def load_segments(root: str | Path, columns: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
    """Every kept segment of the output dir `root`, in file then start order."""
    folder = OutputPaths(root).dir(layout.SEGMENTS)
    if not folder.is_dir():
        raise UserError(f"{root} is not a mikupal output dir (no {layout.SEGMENTS}/ folder)")
    return read_parquet_dir(folder, columns)


def load_speakers(root: str | Path) -> list[dict[str, Any]]:
    """`speakers/<video_id>.parquet` rows (speaker_id, video_id, segments, seconds, embedding,
    face_crop_path), or [] for outputs written before speaker identity existed."""
    paths = OutputPaths(root)
    rows = read_parquet_dir(paths.dir(layout.SPEAKERS))
    links = paths.global_speakers
    if links.is_file():  # the cross-video ids, written at the end of each run
        ids = {r["speaker_id"]: r["global_speaker_id"] for r in pq.read_table(links).to_pylist()}
        for r in rows:
            r["global_speaker_id"] = ids.get(r["speaker_id"]) or None
    return rows


def speaker_of(row: dict[str, Any]) -> str:
    """The segment's speaker id; without one (older outputs) the video stands for its speaker:
    the input clips this pipeline targets have one speaker each."""
    return row.get("speaker_id") or row["video_id"]


def global_ids(root: str | Path) -> dict[str, str]:
    """Per-video speaker id -> global speaker id (`global_speakers.parquet`; {} before it exists)."""
    path = OutputPaths(root).global_speakers
    if not path.is_file():
        return {}
    table = pq.read_table(path, columns=["speaker_id", "global_speaker_id"])
    return {s: g for s, g in zip(table.column(0).to_pylist(), table.column(1).to_pylist()) if s and g}


def with_global_ids(rows: list[dict[str, Any]], root: str | Path) -> list[dict[str, Any]]:
    """Each row gets its `global_speaker_id` (None where the output has none for its speaker)."""
    ids = global_ids(root)
    for r in rows:
        r["global_speaker_id"] = ids.get(r.get("speaker_id") or "") or None
    return rows


def person_of(row: dict[str, Any]) -> str:
    """The segment's person across videos: its global speaker id, else its per-video speaker (the
    export's split keeps one person on one side)."""
    return row.get("global_speaker_id") or speaker_of(row)


#: measured columns an export carries as they are (None where the run did not measure them)
MEASURED = ("snr_db", "avg_logprob", "asd_score", "speaking_fraction", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808",
            "language_probability", "emotion_agreement")
#: the labeler's columns an export carries
LABELS = ("primary_emotion", "rationale", "labeler_model", "prompt_version")


def relative_words(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The words with times in seconds from the start of the exported audio (the segments table
    keeps source-video times; the audio file starts at the segment's `start`)."""
    t0 = float(row["start"])
    return [{"word": w["word"], "start": round(float(w["start"]) - t0, 3), "end": round(float(w["end"]) - t0, 3),
             "probability": w.get("probability")} for w in row.get("words") or []]


def export_fields(row: dict[str, Any]) -> dict[str, Any]:
    """What every export writes of a segment, standing alone: who (the per-video and the global
    speaker), where from (the source file and the span in it, `source_start`/`source_end`), the
    text with word times relative to the exported audio, the measured columns and the labels."""
    return {
        "segment_id": row["segment_id"], "video_id": row["video_id"], "source": row.get("source") or "",
        "source_start": row["start"], "source_end": row["end"],
        "duration": row.get("duration") or row["end"] - row["start"],
        "text": row.get("text") or "", "language": row.get("language") or "", "words": relative_words(row),
        "speaker_id": speaker_of(row), "global_speaker_id": row.get("global_speaker_id"),
        **{k: row.get(k) for k in MEASURED}, **{k: row.get(k) for k in LABELS},
        "emotions": row.get("emotions") or [],
        "sample_rate": row.get("sample_rate"),
    }


def clip_file(root: Path, row: dict[str, Any]) -> Optional[Path]:
    rel = row.get("clip_path")
    path = (Path(root) / rel).resolve() if rel else None
    return path if path is not None and path.is_file() else None


def speaker_name(source: str, speaker_id: str) -> str:
    """A name a person can read: the source file's stem and the speaker's number in it
    ("interview S2"); the video stands for its speaker where there is no speaker id."""
    stem = Path(source or speaker_id).stem or speaker_id
    _, sep, k = (speaker_id or "").rpartition("_S")
    return f"{stem} S{k}" if sep and k.isdigit() else stem


def emotion_map(row: dict[str, Any]) -> dict[str, float]:
    return {e["name"]: float(e["intensity"]) for e in row.get("emotions") or []}


def audio_file(root: Path, row: dict[str, Any]) -> Optional[Path]:
    rel = row.get("audio_path")
    return (Path(root) / rel).resolve() if rel else None
