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


def emotion_map(row: dict[str, Any]) -> dict[str, float]:
    return {e["name"]: float(e["intensity"]) for e in row.get("emotions") or []}


def audio_file(root: Path, row: dict[str, Any]) -> Optional[Path]:
    rel = row.get("audio_path")
    return (Path(root) / rel).resolve() if rel else None
