"""Face tracking over one utterance's 25 fps frames: shot cuts, IoU linking, gap filling, smoothing.

Detections are made on a subset of frames (`detection_frames`: every `detect_every`-th frame of
each shot, plus each shot's first and last frame) and linked into tracks by IoU; the frames in
between are filled by linear interpolation, then boxes are smoothed with a moving average. A
track never crosses a shot cut (HSV-histogram distance between consecutive frames above a
threshold). Everything here is pure numpy/OpenCV on arrays, so it is tested on synthetic boxes.
"""

from __future__ import annotations

import time

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import cv2
import numpy as np

from ..records import FaceEnds, FaceTrack

__all__ = [
    "frame_histogram",
    "frame_look",
    "face_ends",
    "histogram_distances",
    "shot_cuts",
    "shot_ranges",
    "detection_frames",
    "iou_matrix",
    "track_faces",
    "moving_average",
]

HIST_WIDTH = 96  # frames are shrunk to this width before the histogram: colour statistics need no detail
HIST_BINS = (16, 16, 8)  # H, S, V
LOOK_BINS = (8, 8, 4)  # a frame's look kept with a segment (256 numbers): enough to tell two shots apart


def frame_histogram(frame_bgr: np.ndarray, width: int = HIST_WIDTH, bins: Sequence[int] = HIST_BINS) -> np.ndarray:
    """Normalised 3-D HSV histogram of one BGR frame (subsampled to about `width` pixels wide first)."""
    step = max(1, frame_bgr.shape[1] // width)
    if step > 1:  # plain subsampling: ten times cheaper than an area resize, and colours are all we need
        frame_bgr = np.ascontiguousarray(frame_bgr[::step, ::step])
    hsv = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(bins), [0, 180, 0, 256, 0, 256])
    cv2.normalize(hist, hist, 1.0, 0.0, cv2.NORM_L1)
    return hist


def frame_look(frame_bgr: np.ndarray) -> list[float]:
    """A coarse colour histogram of one frame, flat: two frames of one shot look alike
    (`look_distance` below the shot-cut threshold), two shots do not."""
    return [float(x) for x in frame_histogram(frame_bgr, bins=LOOK_BINS).ravel()]


def face_ends(tracks: Sequence[FaceTrack], track_id: Optional[int], frames_bgr: Sequence[np.ndarray], start: float,
              fps: float) -> Optional[FaceEnds]:
    """The first and last frame the track `track_id` is on (frame 0 at source second `start`): time,
    box and look; None without that track."""
    track = next((t for t in tracks if t.track_id == track_id), None)
    if track is None or not track.frames:
        return None
    a, b = int(track.frames[0]), int(track.frames[-1])
    if not (0 <= a < len(frames_bgr) and 0 <= b < len(frames_bgr)):
        return None
    return FaceEnds(first_time=start + a / fps, last_time=start + b / fps, first_box=list(track.boxes[0]),
                    last_box=list(track.boxes[-1]), first_look=frame_look(frames_bgr[a]), last_look=frame_look(frames_bgr[b]))


def histogram_distances(frames_bgr: Sequence[np.ndarray], width: int = HIST_WIDTH) -> np.ndarray:
    """[n] Bhattacharyya distance (0 = same colours, 1 = disjoint) of each frame to the one before; [0] = 0."""
    out = np.zeros(len(frames_bgr), dtype=np.float32)
    prev = None
    for k, f in enumerate(frames_bgr):
        hist = frame_histogram(f, width)
        if prev is not None:
            out[k] = cv2.compareHist(prev, hist, cv2.HISTCMP_BHATTACHARYYA)
        prev = hist
    return out


def shot_cuts(frames_bgr: Sequence[np.ndarray], threshold: float, width: int = HIST_WIDTH) -> list[int]:
    """Frame indices that start a new shot (never 0): histogram distance to the previous frame > threshold."""
    d = histogram_distances(frames_bgr, width)
    return [int(k) for k in np.flatnonzero(d > threshold) if k > 0]


def shot_ranges(n_frames: int, cuts: Sequence[int]) -> list[tuple[int, int]]:
    """[start, end) of each shot of `n_frames` frames split at `cuts`."""
    bounds = [0] + sorted({int(c) for c in cuts if 0 < c < n_frames}) + [n_frames]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def detection_frames(n_frames: int, detect_every: int, cuts: Sequence[int] = ()) -> list[int]:
    """Frames to run the detector on: every `detect_every`-th frame of each shot and each shot's last frame.

    Detecting on a shot's first and last frame means interpolation covers the whole shot, and a
    cut between two scheduled detections never leaves a stretch that belongs to no detection.
    """
    step = max(1, int(detect_every))
    out: list[int] = []
    for a, b in shot_ranges(n_frames, cuts):
        out.extend(range(a, b, step))
        if out[-1] != b - 1:
            out.append(b - 1)
    return out


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in `a` [N, 4+] with every box in `b` [M, 4+] (x1, y1, x2, y2) -> [N, M]."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, np.shape(a)[-1] if np.size(a) else 4)[:, :4]
    b = np.asarray(b, dtype=np.float64).reshape(-1, np.shape(b)[-1] if np.size(b) else 4)[:, :4]
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]).clip(0) * (a[:, 3] - a[:, 1]).clip(0)
    area_b = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average along axis 0; the window shrinks at the ends (no edge bias)."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    window = int(window)
    if window <= 1 or n <= 1:
        return x.copy()
    half = window // 2
    csum = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(x, axis=0)])
    idx = np.arange(n)
    lo = np.clip(idx - half, 0, n)
    hi = np.clip(idx - half + window, 0, n)  # exclusive: `window` frames centred on k
    count = (hi - lo).reshape((-1,) + (1,) * (x.ndim - 1))
    return (csum[hi] - csum[lo]) / count


@dataclass
class _Track:
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    @property
    def last(self) -> int:
        return self.frames[-1]


def _link(
    detections: Sequence[Optional[np.ndarray]],
    cuts: set[int],
    iou_threshold: float,
    max_gap: int,
) -> list[_Track]:
    """Greedy IoU linking of the detections of each detection frame to the live tracks."""
    done: list[_Track] = []
    live: list[_Track] = []
    prev_k: Optional[int] = None
    for k, dets in enumerate(detections):
        if dets is None:
            continue
        dets = np.asarray(dets, dtype=np.float64).reshape(-1, 5) if np.size(dets) else np.zeros((0, 5))
        # a cut between the previous detection frame and this one ends every live track
        if prev_k is not None and any(prev_k < c <= k for c in cuts):
            done.extend(live)
            live = []
        spacing = k - prev_k if prev_k is not None else 1
        # a track may miss `max_gap` frames, and never less than one detection
        limit = max(max_gap, spacing - 1)
        still = []
        for t in live:
            (still if k - t.last - 1 <= limit else done).append(t)
        live = still
        prev_k = k
        matched_t: set[int] = set()
        matched_d: set[int] = set()
        if live and len(dets):
            iou = iou_matrix(np.stack([t.boxes[-1] for t in live]), dets)
            order = np.dstack(np.unravel_index(np.argsort(-iou, axis=None), iou.shape))[0]
            for ti, di in order:
                if iou[ti, di] < iou_threshold:
                    break
                if ti in matched_t or di in matched_d:
                    continue
                matched_t.add(int(ti))
                matched_d.add(int(di))
                live[ti].frames.append(k)
                live[ti].boxes.append(dets[di, :4])
                live[ti].scores.append(float(dets[di, 4]))
        for di in range(len(dets)):
            if di not in matched_d:
                live.append(_Track([k], [dets[di, :4]], [float(dets[di, 4])]))
    done.extend(live)
    return done


def _fill(track: _Track) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames first..last with boxes and scores linearly interpolated between detections."""
    f = np.asarray(track.frames)
    b = np.stack(track.boxes)
    s = np.asarray(track.scores)
    frames = np.arange(f[0], f[-1] + 1)
    boxes = np.stack([np.interp(frames, f, b[:, j]) for j in range(4)], axis=1)
    scores = np.interp(frames, f, s)
    return frames, boxes, scores


def track_faces(
    detections: Sequence[Optional[np.ndarray]],
    cuts: Sequence[int] = (),
    *,
    iou_threshold: float = 0.3,
    max_gap: int = 10,
    smooth_frames: int = 5,
    min_track_frames: int = 10,
    scale: float = 1.0,
) -> list[FaceTrack]:
    """Link per-frame detections into face tracks.

    `detections[k]`: None where the detector did not run on frame k, else [N, 5] (x1, y1, x2, y2,
    score) in the pixels of the frames it ran on, which are `scale` x source pixels. `cuts`: frames
    that start a new shot (no track spans one). Returns tracks sorted by first frame, ids 0..n-1,
    with one box per frame in SOURCE pixels (filled, smoothed), detection scores interpolated
    likewise, and no ASD scores yet. Tracks shorter than `min_track_frames` are dropped.
    """
    linked = _link(detections, {int(c) for c in cuts}, iou_threshold, max_gap)
    out: list[FaceTrack] = []
    for t in sorted(linked, key=lambda t: (t.frames[0], t.boxes[0][0])):
        frames, boxes, scores = _fill(t)
        if len(frames) < min_track_frames:
            continue
        boxes = moving_average(boxes, smooth_frames) / float(scale)
        out.append(
            FaceTrack(
                track_id=len(out),
                frames=[int(x) for x in frames],
                boxes=[[float(v) for v in row] for row in boxes],
                detection_scores=[float(x) for x in scores],
            )
        )
    return out


def detect_and_track(detector, frames: list[np.ndarray], scale: float, faces_cfg, steps=None) -> list[FaceTrack]:
    """Shot cuts, detection on the scheduled frames, tracks in source pixels (`steps`: a `Steps`
    that gets the seconds of each part)."""
    fc = faces_cfg
    t = time.perf_counter()
    cuts = shot_cuts(frames, fc.shot_cut_threshold)
    t = steps.tick("shots", t) if steps else t
    todo = detection_frames(len(frames), fc.detect_every, cuts)
    found = detector.detect([frames[k] for k in todo])
    detections: list[Optional[np.ndarray]] = [None] * len(frames)
    for k, d in zip(todo, found):
        detections[k] = d
    if steps:
        steps.counts["detected_frames"] += len(todo)
        t = steps.tick("detect", t)
    tracks = track_faces(detections, cuts, iou_threshold=fc.iou_threshold, max_gap=fc.max_gap, smooth_frames=fc.smooth_frames,
                         min_track_frames=fc.min_track_frames, scale=scale)
    if steps:
        steps.tick("track", t)
    return tracks
