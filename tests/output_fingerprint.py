"""What two runs must agree on, read from an output dir: every segment (id, text, times, words,
speaker), every reject (item, stage, reason, span, message), every speaker and global speaker.
Timings, paths of the run and report figures are left out: they differ between runs by nature."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

SEGMENT_COLUMNS = ("segment_id", "video_id", "start", "end", "text", "language", "words", "speaker_id")
REJECT_COLUMNS = ("item_id", "video_id", "stage", "reason", "message", "start", "end")
SPEAKER_COLUMNS = ("speaker_id", "video_id", "segments", "seconds")


def _rows(root: Path, sub: str, columns) -> list[dict]:
    rows = []
    for f in sorted((root / sub).glob("*.parquet")):
        rows += [{c: r.get(c) for c in columns} for r in pq.read_table(f).to_pylist()]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def fingerprint(root: str | Path) -> dict[str, list[dict]]:
    root = Path(root)
    g = root / "global_speakers.parquet"
    return {
        "segments": _rows(root, "segments", SEGMENT_COLUMNS),
        "rejects": _rows(root, "rejects", REJECT_COLUMNS),
        "speakers": _rows(root, "speakers", SPEAKER_COLUMNS),
        "global_speakers": sorted(pq.read_table(g).to_pylist(), key=lambda r: r["speaker_id"]) if g.is_file() else [],
    }


def differences(a: str | Path, b: str | Path, show: int = 3) -> list[str]:
    """What differs between two outputs, one line per row only one of them has (empty: the same)."""
    fa, fb = fingerprint(a), fingerprint(b)
    out = []
    for key in fa:
        sa = {json.dumps(r, sort_keys=True, default=str) for r in fa[key]}
        sb = {json.dumps(r, sort_keys=True, default=str) for r in fb[key]}
        out += [f"{key} only in {a}: {r[:300]}" for r in sorted(sa - sb)[:show]]
        out += [f"{key} only in {b}: {r[:300]}" for r in sorted(sb - sa)[:show]]
    return out
