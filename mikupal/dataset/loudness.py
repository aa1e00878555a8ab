"""`mikupal export ... loudness=-23`: loudness-normalised copies of the exported audio, written into
the export folder; the run's own FLACs are never touched.

Each segment's FLAC is measured (ITU-R BS.1770-4 integrated loudness, `audio/prosody.py`) and
scaled to the target in LUFS, -23 by default (EBU R128's broadcast level). The gain never pushes the
sample peak over `PEAK_CEILING_DBFS` (-1 dBFS): a segment that would clip stays quieter than the
target rather than distort. A segment too short or too silent to measure is copied unchanged.
Exports that embed the audio (`hf`, `parler`, `webdataset`) read the copies and drop them after;
`lhotse` and `list`, which point at files, point at the copies under `DIR/audio/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from .. import media
from ..audio.prosody import loudness_lufs
from .rows import audio_file

PEAK_CEILING_DBFS = -1.0
AUDIO_DIR = "audio"


def normalise(audio: np.ndarray, sample_rate: int, target_lufs: float) -> tuple[np.ndarray, Optional[float]]:
    """`audio` scaled to `target_lufs` (peak at most -1 dBFS), and the gain in dB (None: unmeasurable)."""
    measured = loudness_lufs(audio, sample_rate)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if measured is None or peak <= 0:
        return audio, None
    gain_db = min(target_lufs - measured, PEAK_CEILING_DBFS - 20.0 * np.log10(peak))
    return (audio * 10 ** (gain_db / 20.0)).astype(np.float32), round(float(gain_db), 2)


def normalised_copies(root: Path, out: Path, splits: dict[str, list[dict[str, Any]]],
                      target_lufs: float) -> dict[str, list[dict[str, Any]]]:
    """The rows with `audio_path` at a normalised copy under `out/audio/` (absolute) and
    `loudness_gain_db` set; the run's files stay as they are."""
    done: dict[str, tuple[str, Optional[float]]] = {}
    result: dict[str, list[dict[str, Any]]] = {}
    for name, rows in splits.items():
        result[name] = []
        for r in rows:
            if r["segment_id"] not in done:
                src = audio_file(root, r)
                dest = (out / AUDIO_DIR / r["video_id"] / f"{r['segment_id']}.flac").resolve()
                samples, rate = media.read_samples(src)
                scaled, gain = normalise(samples.mean(axis=1), rate, target_lufs)
                media.write_audio(dest, scaled, rate)
                done[r["segment_id"]] = (str(dest), gain)
            path, gain = done[r["segment_id"]]
            result[name].append({**r, "audio_path": path, "loudness_gain_db": gain})
    return result
