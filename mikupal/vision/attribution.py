"""Who speaks this utterance: pick the visible speaker's track from face tracks and ASD scores.

Pure functions on `FaceTrack` records (boxes in source pixels, `asd_scores` aligned with
`frames`, NaN where a frame was not scored), so every rule is unit-tested on synthetic numbers.

The rules, in order (the first that applies decides):

1. no track at all                                        -> `no_face`
2. no track whose face (median box side) >= min_face_px   -> `face_too_small`
3. no such track on screen for >= min_coverage of the utterance -> `no_face`
4. speaking fraction of a track = (scored voiced frames with score > threshold) / (scored voiced
   frames) x (voiced frames the track is on / voiced frames of the utterance): the share of the
   utterance's voice it is seen speaking. "Voiced" frames are those where the analysis audio is
   loud (`voiced_frames`): an utterance keeps short pauses, during which nobody is seen speaking,
   and ASD scores there say nothing about who the speaker is. With no voiced frames (or too few)
   every frame counts.
   If no track reaches `min_speaking_fraction`: the best one below `min_evidence_fraction` means
   the voice is off screen (`no_active_speaker`), else `low_confidence`.
5. among the tracks that reach it, the one with the highest mean ASD score is the speaker, unless
   another one is within `overlap_margin` of it                -> `overlapping_speakers`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..records import FaceTrack

__all__ = [
    "NO_FACE",
    "FACE_TOO_SMALL",
    "NO_ACTIVE_SPEAKER",
    "OVERLAPPING_SPEAKERS",
    "LOW_CONFIDENCE",
    "REASONS",
    "Attribution",
    "TrackStats",
    "face_size",
    "track_stats",
    "voiced_frames",
    "attribute",
    "attribute_with",
    "speaker_boxes",
    "scored_windows",
]

NO_FACE = "no_face"
FACE_TOO_SMALL = "face_too_small"
NO_ACTIVE_SPEAKER = "no_active_speaker"
OVERLAPPING_SPEAKERS = "overlapping_speakers"
LOW_CONFIDENCE = "low_confidence"
REASONS = (NO_FACE, FACE_TOO_SMALL, NO_ACTIVE_SPEAKER, OVERLAPPING_SPEAKERS, LOW_CONFIDENCE)


@dataclass
class TrackStats:
    track_id: int
    face_px: float  # median box side (max of width, height) in source pixels
    coverage: float  # track frames / utterance frames
    scored_frames: int
    asd_score: float  # mean ASD score over the scored frames (-inf when none)
    speaking_fraction: float  # share of the utterance's frames this track is seen speaking


@dataclass
class Attribution:
    """The speaker (`speaker_track` set, `reason` None) or why there is none (`reason` set)."""

    speaker_track: Optional[int] = None
    boxes: list[list[float]] = field(default_factory=list)  # one per utterance frame, source pixels
    asd_score: Optional[float] = None
    speaking_fraction: Optional[float] = None
    reason: Optional[str] = None
    message: str = ""
    stats: list[TrackStats] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reason is None


def face_size(track: FaceTrack) -> float:
    """Median face box side (the larger of width and height) over the track, in source pixels."""
    if not track.boxes:
        return 0.0
    b = np.asarray(track.boxes, dtype=np.float64)
    return float(np.median(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])))


def voiced_frames(
    audio_16k: np.ndarray,
    n_frames: int,
    fps: float = 25.0,
    floor_db: float = -55.0,
    below_peak_db: float = 25.0,
    sample_rate: int = 16000,
) -> np.ndarray:
    """[n_frames] bool: the video frame's slice of audio is within `below_peak_db` of the utterance's
    loud frames (95th percentile of frame energies) and above `floor_db` dBFS."""
    n = int(n_frames)
    audio = np.asarray(audio_16k, dtype=np.float64).reshape(-1)
    hop = sample_rate / fps
    energy = np.full(n, -200.0)
    for k in range(n):
        a, b = int(round(k * hop)), int(round((k + 1) * hop))
        seg = audio[a:b]
        if len(seg):
            energy[k] = 10.0 * np.log10(np.mean(seg * seg) + 1e-20)
    if n == 0:
        return np.zeros(0, dtype=bool)
    peak = float(np.percentile(energy, 95))
    return energy > max(floor_db, peak - below_peak_db)


def _focus(voiced: Optional[np.ndarray], n: int) -> np.ndarray:
    """The frames that count: the voiced ones when there are enough of them, else all."""
    if voiced is None:
        return np.ones(n, dtype=bool)
    v = np.zeros(n, dtype=bool)
    v[: min(n, len(voiced))] = np.asarray(voiced, dtype=bool)[:n]
    if v.sum() < max(5, 0.1 * n):
        return np.ones(n, dtype=bool)
    return v


def track_stats(track: FaceTrack, n_frames: int, threshold: float = 0.0, voiced: Optional[np.ndarray] = None) -> TrackStats:
    n = max(1, int(n_frames))
    focus = _focus(voiced, n)
    frames = np.asarray(track.frames, dtype=int)
    inside = (frames >= 0) & (frames < n)
    coverage = float(inside.sum()) / n
    on = np.zeros(n, dtype=bool)
    on[frames[inside]] = True
    voiced_coverage = float((on & focus).sum()) / float(focus.sum())
    s = np.full(len(frames), np.nan)
    m = min(len(frames), len(track.asd_scores))
    s[:m] = np.asarray(track.asd_scores[:m], dtype=np.float64)
    scored = inside & np.isfinite(s)
    use = scored.copy()
    use[inside] &= focus[frames[inside]]
    if not use.any():  # scored only where it is quiet: better than nothing
        use = scored
    if use.any():
        mean = float(s[use].mean())
        speaking = float((s[use] > threshold).mean()) * voiced_coverage
    else:
        mean, speaking = -math.inf, 0.0
    return TrackStats(track.track_id, face_size(track), coverage, int(scored.sum()), mean, speaking)


def speaker_boxes(track: FaceTrack, n_frames: int) -> list[list[float]]:
    """One box per utterance frame: the track's own where it has one, else its nearest frame's (held)."""
    if not track.frames:
        return []
    frames = np.asarray(track.frames)
    boxes = np.asarray(track.boxes, dtype=np.float64)
    out = []
    for k in range(int(n_frames)):
        i = int(np.searchsorted(frames, k))
        if i < len(frames) and frames[i] == k:
            j = i
        elif i == 0:
            j = 0
        elif i >= len(frames):
            j = len(frames) - 1
        else:  # inside a hole (should not happen after gap filling): nearest side
            j = i if frames[i] - k < k - frames[i - 1] else i - 1
        out.append([float(v) for v in boxes[j]])
    return out


def attribute(
    tracks: Sequence[FaceTrack],
    n_frames: int,
    *,
    min_face_px: float = 40,
    threshold: float = 0.0,
    min_speaking_fraction: float = 0.4,
    min_coverage: float = 0.5,
    overlap_margin: float = 0.5,
    min_evidence_fraction: float = 0.15,
    voiced: Optional[np.ndarray] = None,
) -> Attribution:
    """Apply the rules of this module's docstring to the tracks of one utterance of `n_frames` frames.

    `voiced`: [n_frames] bool from `voiced_frames` (None: every frame counts)."""
    if n_frames <= 0:
        return Attribution(reason=NO_FACE, message="the utterance has no video frames")
    if not tracks:
        return Attribution(reason=NO_FACE, message="no face detected in the utterance")
    stats = {t.track_id: track_stats(t, n_frames, threshold, voiced) for t in tracks}
    all_stats = list(stats.values())
    big = [t for t in tracks if stats[t.track_id].face_px >= min_face_px]
    if not big:
        largest = max(s.face_px for s in all_stats)
        return Attribution(
            reason=FACE_TOO_SMALL,
            message=f"largest face {largest:.0f} px < min_face_px {min_face_px:g}",
            stats=all_stats,
        )
    seen = [t for t in big if stats[t.track_id].coverage >= min_coverage]
    if not seen:
        best = max(stats[t.track_id].coverage for t in big)
        return Attribution(
            reason=NO_FACE,
            message=f"a face is on screen for at most {best:.0%} of the utterance (< min_coverage {min_coverage:.0%})",
            stats=all_stats,
        )
    speaking = [t for t in seen if stats[t.track_id].speaking_fraction >= min_speaking_fraction]
    if not speaking:
        top = max((stats[t.track_id] for t in seen), key=lambda s: (s.speaking_fraction, s.asd_score))
        what = (
            f"best face (track {top.track_id}) is seen speaking {top.speaking_fraction:.0%} of the voice "
            f"(< min_speaking_fraction {min_speaking_fraction:.0%}; mean ASD score {top.asd_score:.2f})"
        )
        if top.speaking_fraction < min_evidence_fraction:
            return Attribution(reason=NO_ACTIVE_SPEAKER, message=f"off-screen voice: {what}", stats=all_stats)
        return Attribution(reason=LOW_CONFIDENCE, message=what, stats=all_stats)
    ranked = sorted(speaking, key=lambda t: stats[t.track_id].asd_score, reverse=True)
    best = stats[ranked[0].track_id]
    if len(ranked) > 1:
        second = stats[ranked[1].track_id]
        if best.asd_score - second.asd_score < overlap_margin:
            return Attribution(
                reason=OVERLAPPING_SPEAKERS,
                message=(
                    f"tracks {best.track_id} and {second.track_id} both speak "
                    f"(mean ASD {best.asd_score:.2f} vs {second.asd_score:.2f}, margin < {overlap_margin:g})"
                ),
                stats=all_stats,
            )
    return Attribution(
        speaker_track=best.track_id,
        boxes=speaker_boxes(ranked[0], n_frames),
        asd_score=best.asd_score,
        speaking_fraction=best.speaking_fraction,
        stats=all_stats,
    )


def attribute_with(
    tracks: Sequence[FaceTrack], n_frames: int, faces_cfg, asd_cfg, voiced: Optional[np.ndarray] = None
) -> Attribution:
    """`attribute` with the thresholds of a `FacesConfig` and an `AsdConfig`."""
    return attribute(
        tracks,
        n_frames,
        voiced=voiced,
        min_face_px=faces_cfg.min_face_px,
        threshold=asd_cfg.threshold,
        min_speaking_fraction=asd_cfg.min_speaking_fraction,
        min_coverage=asd_cfg.min_coverage,
        overlap_margin=asd_cfg.overlap_margin,
        min_evidence_fraction=asd_cfg.min_evidence_fraction,
    )


def scored_windows(
    n_frames: int, max_frames: Optional[int], window_frames: int, voiced: Optional[np.ndarray] = None
) -> list[tuple[int, int]]:
    """[start, end) windows of a track of `n_frames` to score with ASD, at most `max_frames` in all.

    All of it when it fits (or `max_frames` is None/<= 0); else `max_frames // window_frames`
    windows (at least one) sharing the budget equally, centred on evenly spaced quantiles of the
    track's voiced frames (`voiced`: [n_frames] bool, when it marks enough of them) or of all its
    frames, so the sample spreads over the whole track, where someone talks.
    """
    n = int(n_frames)
    if n <= 0:
        return []
    if not max_frames or max_frames <= 0 or n <= max_frames:
        return [(0, n)]
    k = max(1, int(max_frames) // max(1, int(window_frames)))
    w = max(1, int(max_frames) // k)
    positions = np.arange(n)
    if voiced is not None:
        v = np.flatnonzero(np.asarray(voiced, dtype=bool)[:n])
        if len(v) >= min(w, n // 4):
            positions = v
    centres = positions[np.minimum(len(positions) - 1, ((np.arange(k) + 0.5) * len(positions) / k).astype(int))]
    starts = np.clip(np.round(centres - w / 2.0).astype(int), 0, n - w)
    starts.sort()
    for i in range(1, k):  # push right until no two windows overlap ...
        starts[i] = max(starts[i], starts[i - 1] + w)
    for i in range(k - 1, -1, -1):  # ... then back left where that ran past the end (k * w <= n fits)
        starts[i] = min(starts[i], (starts[i + 1] if i + 1 < k else n) - w)
    return [(int(a), int(a) + w) for a in starts]
