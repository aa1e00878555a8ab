"""Who is seen speaking when, over a whole utterance: the face side of speaker changes.

Attribution (`attribution.py`) asks which face speaks an utterance *on the whole*; a question and
its answer cut as one utterance pass that test under the asker's face. Here the per-frame ASD
scores of every scored track are read as a timeline instead:

* a frame's speakers are the tracks whose score, smoothed over `SMOOTH_FRAMES`, is above the
  threshold, on voiced frames only (in a pause nobody is seen speaking);
* runs of one speaker of at least `min_run_frames` (0.5 s by default; `EDGE_FRAMES` at either end
  of the utterance) are turns; two different
  tracks in consecutive turns are a **speaker change**, placed in the middle of the frames between
  the two turns;
* two tracks seen speaking together on at least `min_run_frames` frames in a row are **two people
  talking at once**: that stretch is removed.

Pure functions over `FaceTrack` records, unit-tested on synthetic scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..records import FaceTrack

SMOOTH_FRAMES = 7  # ~0.3 s at 25 fps: one mis-scored frame neither makes nor breaks a turn
#: a turn at the very start or end of the utterance counts from this many frames (0.2 s): the tail
#: of the previous speaker's turn, or the start of the next one, that an ASR cut left inside
EDGE_FRAMES = 5


@dataclass
class FaceTurns:
    changes: list[float] = field(default_factory=list)  # seconds from the utterance's start
    overlaps: list[tuple[float, float]] = field(default_factory=list)  # seconds from the utterance's start
    turns: list[tuple[int, int, int]] = field(default_factory=list)  # (track, first frame, end frame)


def _smooth(x: np.ndarray, k: int) -> np.ndarray:
    if k <= 1 or len(x) < 2:
        return x
    kernel = np.ones(k) / k
    pad = k // 2
    xp = np.pad(x, (pad, k - 1 - pad), mode="edge")
    return np.convolve(xp, kernel, mode="valid")


def speaking_frames(track: FaceTrack, n_frames: int, threshold: float) -> Optional[np.ndarray]:
    """[n_frames] bool: the track is seen speaking (smoothed score > threshold); None when it was
    not scored. Frames it is not on screen, or not scored, are False."""
    s = np.full(n_frames, np.nan)
    fr = np.asarray(track.frames, dtype=int)
    sc = np.asarray(track.asd_scores[: len(fr)], dtype=np.float64)
    ok = (fr >= 0) & (fr < n_frames)
    s[fr[ok]] = sc[ok] if len(sc) == len(fr) else np.nan
    if not np.isfinite(s).any():
        return None
    filled = np.where(np.isfinite(s), s, threshold - 1.0)
    return (_smooth(filled, SMOOTH_FRAMES) > threshold) & np.isfinite(s)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def face_turns(
    tracks: Sequence[FaceTrack],
    n_frames: int,
    threshold: float,
    voiced: Optional[np.ndarray],
    fps: float = 25.0,
    min_run_frames: int = 13,
) -> FaceTurns:
    """Speaker changes and overlaps of one utterance (see the module docstring)."""
    n = int(n_frames)
    v = np.ones(n, dtype=bool) if voiced is None else np.asarray(voiced, dtype=bool)[:n]
    if len(v) < n:
        v = np.concatenate([v, np.zeros(n - len(v), dtype=bool)])
    speaking = {t.track_id: m & v for t in tracks if (m := speaking_frames(t, n, threshold)) is not None}
    out = FaceTurns()
    if len(speaking) < 2:
        return out
    ids = list(speaking)
    stack = np.stack([speaking[i] for i in ids])
    count = stack.sum(axis=0)
    for a, b in _runs(count >= 2):
        if b - a >= min_run_frames:
            out.overlaps.append((a / fps, b / fps))
    alone = count == 1
    on = np.flatnonzero(v)
    first, last = (int(on[0]), int(on[-1]) + 1) if len(on) else (0, n)
    turns = []
    for j, tid in enumerate(ids):
        for a, b in _runs(stack[j] & alone):
            at_edge = a <= first + 1 or b >= last - 1
            if b - a >= min_run_frames or (at_edge and b - a >= EDGE_FRAMES):
                turns.append((tid, a, b))
    turns.sort(key=lambda t: t[1])
    out.turns = turns
    for (t1, _, e1), (t2, s2, _) in zip(turns[:-1], turns[1:]):
        if t1 != t2:
            out.changes.append(((e1 + s2) / 2.0) / fps)
    return out


def slice_track(track: FaceTrack, f0: int, f1: int) -> Optional[FaceTrack]:
    """The part of `track` on frames [f0, f1), renumbered from 0 (None when it is not there)."""
    keep = [i for i, f in enumerate(track.frames) if f0 <= f < f1]
    if not keep:
        return None
    scores = track.asd_scores
    return track.model_copy(update={
        "frames": [track.frames[i] - f0 for i in keep],
        "boxes": [track.boxes[i] for i in keep],
        "detection_scores": [track.detection_scores[i] for i in keep] if len(track.detection_scores) == len(track.frames) else [],
        "asd_scores": [scores[i] for i in keep] if len(scores) == len(track.frames) else [],
    })


def median_box(track: FaceTrack) -> list[float]:
    b = np.asarray(track.boxes, dtype=np.float64)
    return [float(x) for x in np.median(b, axis=0)] if len(b) else []
