"""What the labeler sees: the speaker's face-centred clip with the separated vocals, plus the dataset audio.

For a kept utterance:
  audio/<video_id>/<segment_id>.flac   the full-band vocals cut to [start, end) (dataset sample rate)
  clips/<video_id>/<segment_id>.mp4    a square crop centred on the speaker's face (side = box side x
                                       (1 + 2 x clip_margin), smoothed), resized to clip_size, muxed
                                       with those vocals (mono AAC)
  debug/<video_id>/<segment_id>.mp4    with `dataset.debug_render`: the full frames with every track's
                                       box and ASD score, the speaker in green (also for rejects)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from .. import layout, media
from ..records import FaceTrack
from .track import moving_average

__all__ = [
    "crop_windows",
    "speaker_frames",
    "cut_audio",
    "write_segment_audio",
    "write_speaker_clip",
    "export",
    "render_debug",
    "write_debug_clip",
    "relative_paths",
]

CLIP_SMOOTH_FRAMES = 9  # extra moving average over the crop window: a steady camera for the labeler


def relative_paths(video_id: str, segment_id: str) -> dict[str, str]:
    """Where a segment's files go, relative to the output dir."""
    return layout.OutputPaths.segment_media(video_id, segment_id)


def crop_windows(boxes_src: np.ndarray, margin: float, smooth: int = CLIP_SMOOTH_FRAMES) -> np.ndarray:
    """[n, 3] (centre x, centre y, side) in source pixels of the square crop around each box, smoothed."""
    b = np.asarray(boxes_src, dtype=np.float64).reshape(-1, 4)
    cx = (b[:, 0] + b[:, 2]) / 2.0
    cy = (b[:, 1] + b[:, 3]) / 2.0
    side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) * (1.0 + 2.0 * margin)
    return moving_average(np.stack([cx, cy, side], axis=1), smooth)


def speaker_frames(
    frames: Sequence[np.ndarray],
    boxes_src: np.ndarray,
    scale: float,
    size: int = 224,
    margin: float = 0.6,
    smooth: int = CLIP_SMOOTH_FRAMES,
) -> list[np.ndarray]:
    """Face-centred square crops (BGR, size x size) of `frames` (source pixels x `scale`); black outside the frame."""
    win = crop_windows(boxes_src, margin, smooth) * float(scale)
    out = []
    for frame, (cx, cy, side) in zip(frames, win):
        side = max(float(side), 1.0)
        step = side / size
        x0, y0 = cx - side / 2.0, cy - side / 2.0
        m = np.array([[step, 0.0, x0 + 0.5 * step - 0.5], [0.0, step, y0 + 0.5 * step - 0.5]], dtype=np.float64)
        out.append(
            cv2.warpAffine(
                frame,
                m,
                (size, size),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=(0, 0, 0),
            )
        )
    return out


def cut_audio(path: str | os.PathLike, start: float, end: float, sample_rate: int) -> np.ndarray:
    """[channels, n] float32 of [start, end) at `sample_rate`: an exact sample cut when the file is
    already at that rate (the vocals are), else decoded and resampled."""
    try:
        info = media.audio_info(path)
        if info.sample_rate == sample_rate:
            a = max(0, int(round(start * sample_rate)))
            b = max(a, int(round(end * sample_rate)))
            data, _ = media.read_samples(path, a, min(b, info.frames))
            return np.ascontiguousarray(data.T)
        mono = info.channels == 1
    except Exception:  # noqa: BLE001 - not a sound file (e.g. the video itself): use the decoder
        mono = False
    audio = media.decode_audio(path, start, end, sample_rate=sample_rate, mono=mono)
    return audio[None, :] if audio.ndim == 1 else audio


def write_segment_audio(out_path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> None:
    media.write_audio(out_path, audio, sample_rate)


def _mono(audio: Optional[np.ndarray]) -> Optional[np.ndarray]:
    if audio is None:
        return None
    return audio if audio.ndim == 1 else audio.mean(axis=0)


def write_speaker_clip(
    out_path: str | os.PathLike,
    frames: Sequence[np.ndarray],
    scale: float,
    boxes_src: np.ndarray,
    audio: Optional[np.ndarray],
    sample_rate: int,
    *,
    fps: float = 25.0,
    size: int = 224,
    margin: float = 0.6,
    threads: Optional[int] = None,
) -> None:
    """The speaker clip: face-centred crops of `frames` muxed with `audio` ([n] or [channels, n])."""
    crops = speaker_frames(frames, boxes_src, scale, size, margin)
    media.write_clip(out_path, crops, fps, _mono(audio), sample_rate, threads=threads)


def export(out_dir, paths: dict[str, str], frames: Sequence[np.ndarray], scale: float, boxes_src: np.ndarray,
           vocals: Optional[np.ndarray], dataset_cfg, threads: Optional[int] = None, fps: float = 25.0) -> None:
    """The dataset audio and the speaker clip of one segment (`paths` from `relative_paths`); the
    clip at `dataset.clip_fps`: every `fps` frame, else the nearest one."""
    dc = dataset_cfg
    write_segment_audio(Path(out_dir) / paths["audio"], vocals, dc.sample_rate)
    n = len(frames)
    pick = np.arange(n)
    if abs(dc.clip_fps - fps) > 1e-6:
        m = int(math.ceil(n * dc.clip_fps / fps))
        pick = np.minimum(n - 1, np.round(np.arange(m) * fps / dc.clip_fps).astype(int))
    write_speaker_clip(Path(out_dir) / paths["clip"], [frames[k] for k in pick], scale, np.asarray(boxes_src)[pick], vocals,
                       dc.sample_rate, fps=dc.clip_fps, size=dc.clip_size, margin=dc.clip_margin, threads=threads)


def render_debug(
    frames: Sequence[np.ndarray],
    scale: float,
    tracks: Sequence[FaceTrack],
    speaker_track: Optional[int] = None,
    label: str = "",
) -> list[np.ndarray]:
    """Copies of `frames` with every track's box, id and ASD score drawn (speaker green, others orange)."""
    per_frame: dict[int, list[tuple[FaceTrack, int]]] = {}
    for t in tracks:
        for i, f in enumerate(t.frames):
            per_frame.setdefault(f, []).append((t, i))
    out = []
    for k, frame in enumerate(frames):
        img = frame.copy()
        for t, i in per_frame.get(k, []):
            x1, y1, x2, y2 = (int(round(v * scale)) for v in t.boxes[i])
            colour = (0, 200, 0) if t.track_id == speaker_track else (0, 140, 255)
            cv2.rectangle(img, (x1, y1), (x2, y2), colour, 2)
            s = t.asd_scores[i] if i < len(t.asd_scores) else math.nan
            text = f"#{t.track_id} " + ("--" if not math.isfinite(s) else f"{s:+.1f}")
            cv2.putText(img, text, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
        if label:
            cv2.putText(img, label, (6, img.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        out.append(img)
    return out


def write_debug_clip(
    out_path: str | os.PathLike,
    frames: Sequence[np.ndarray],
    scale: float,
    tracks: Sequence[FaceTrack],
    speaker_track: Optional[int],
    audio: Optional[np.ndarray],
    sample_rate: int,
    fps: float = 25.0,
    label: str = "",
) -> None:
    media.write_clip(Path(out_path), render_debug(frames, scale, tracks, speaker_track, label), fps, _mono(audio), sample_rate)
