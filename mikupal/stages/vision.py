"""Vision: find the visible speaker of each utterance and export the clip the labeler sees.

One actor does it all for one utterance, so decoded frames never travel between stages:
decode [start, end) once at 25 fps (the ASD models' rate) scaled to `faces.work_width` ->
shot cuts (HSV histograms) -> face detection on every `faces.detect_every`-th frame (the detector
shrinks to `faces.input_width`) -> IoU tracking with gap filling and smoothing -> 112 px face crops
-> ASD on at most `asd.max_scored_seconds` of each candidate track, at the audio/video offset
(within `asd.max_offset_frames`) where the best face looks most in sync -> attribution (speaker or
a reject reason) -> speaker clip + dataset audio (+ debug render).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Optional

import numpy as np

from .. import media
from ..config import Resources
from ..errors import StageError
from ..models_dir import ensure_file
from ..records import FaceTrack
from ..vision import attribution as attr
from ..vision import clip as clipmod
from ..speaker.embed import mean_voice, slice_windows
from ..speaker.split import OVERLAPPING_SPEECH, Removal, split_utterance
from ..vision import timeline
from ..vision import track as trk
from .base import Stage, WorkItem

VIDEO_FPS = 25.0
MFCC_PER_FRAME = 4
OFFSET_PENALTY = 0.01  # speaking fraction an audio/video offset must gain per frame of shift


def _larger(a: Resources, b: Resources) -> Resources:
    """Field-wise max of two resource requests ("auto" wins over a number)."""
    if a.concurrency == "auto" or b.concurrency == "auto":
        conc = "auto"
    else:
        conc = max(int(a.concurrency), int(b.concurrency))
    sizes = [x for x in (a.batch_size, b.batch_size) if x is not None]
    return Resources(
        num_cpus=max(a.num_cpus, b.num_cpus),
        num_gpus=max(a.num_gpus, b.num_gpus),
        concurrency=conc,
        batch_size=max(sizes) if sizes else None,
    )


def _window_frames(t: int, seconds: float) -> int:
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return t
    return max(1, min(t, int(round(seconds * VIDEO_FPS))))


def use_bf16(precision: str, device: str) -> bool:
    """bf16 autocast for ASD: asked for, or "auto" on a CPU that computes bf16 natively."""
    if precision == "bf16":
        return True
    if precision != "auto" or device != "cpu":
        return False
    import torch

    cpu = torch.cpu
    try:  # native bf16 only: where oneDNN emulates it, it is no faster than fp32
        return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):
        return False


def score_offsets(
    model,
    mfcc: np.ndarray,
    first_row: int,
    crops: np.ndarray,
    offsets: Sequence[int],
    windows: Sequence[float] = (0.0,),
    bf16: bool = False,
) -> np.ndarray:
    """ASD scores [len(offsets), T] of T face crops against audio shifted by each offset (frames).

    `mfcc` rows (4 per frame) hold the audio; `first_row` is the row of the crops' first frame.
    Offset o pairs video frame i with the audio of frame i + o. The visual encoder (the expensive
    part) runs once; only the cheap audio encoder and temporal backend run per offset. A model
    without separable encoders (TalkNet) is scored at offset 0 only (every row the same).
    `bf16`: run under CPU bf16 autocast.
    """
    import contextlib

    import torch

    t = len(crops)
    offsets = list(offsets)
    out = np.zeros((len(offsets), t), dtype=np.float32)
    if t == 0:
        return out
    net = model.net
    k = max(abs(o) for o in offsets)
    lo, hi = first_row - MFCC_PER_FRAME * k, first_row + MFCC_PER_FRAME * (t + k)
    idx = np.clip(np.arange(lo, hi), 0, max(0, len(mfcc) - 1))  # edge rows stand in past either end
    rows = np.asarray(mfcc, dtype=np.float32)[idx] if len(mfcc) else np.zeros((hi - lo, 13), np.float32)
    amp = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    if not getattr(model, "shared_encoders", False) or not hasattr(net, "encode_visual"):
        a0 = rows[MFCC_PER_FRAME * k : MFCC_PER_FRAME * (k + t)]
        with amp:
            s = model.score(a0, crops, windows=list(windows))
        out[:, : len(s)] = s[None, :]
        return out
    dev = model.device
    enc = net if bf16 else getattr(model, "encoders", net)  # ONNX Runtime's fp32 encoders where exported
    with torch.inference_mode():
        with amp:  # the encoders are the cost; the small backend runs in fp32 (bf16 is slower there)
            ea = enc.encode_audio(torch.from_numpy(np.ascontiguousarray(rows))[None].to(dev))[0].to(dev).float()
            ev = enc.encode_visual(torch.from_numpy(np.ascontiguousarray(crops)).to(dev, torch.float32)[None])[0].to(dev).float()
        for j, o in enumerate(offsets):
            a = ea[k + o : k + o + t]
            total = torch.zeros(t, device=dev)
            for w in windows:
                wf = _window_frames(t, w)
                parts = [net.backend(a[s : s + wf][None], ev[s : s + wf][None])[0, :, 1] for s in range(0, t, wf)]
                total += torch.cat(parts)
            out[j] = (total / len(windows)).float().cpu().numpy()
    return out


class VisionStage(Stage):
    name = "vision"
    level = "segment"

    def __init__(self, cfg, output_dir, threads=None):
        super().__init__(cfg, output_dir, threads)
        self.detector = None
        self.asd = None
        #: seconds spent per step and counts, summed over the items this worker processed (benchmarks)
        self.timings: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)
        self.last_offset: int = 0  # the audio/video offset chosen for the last item (frames)
        self.bf16 = False

    @property
    def resources(self) -> Resources:
        return _larger(self.cfg.faces.resources, self.cfg.asd.resources)

    def _device(self) -> str:
        if self.resources.num_gpus > 0:
            import torch

            if torch.cuda.is_available():
                return "cuda"
        return "cpu"

    def setup(self) -> None:
        from ..asd import ActiveSpeakerModel
        from ..faces import load_face_detector

        fc, ac = self.cfg.faces, self.cfg.asd
        det_path = ensure_file(self.cfg.models_dir, fc.model, self.cfg.offline)
        asd_path = ensure_file(self.cfg.models_dir, ac.model, self.cfg.offline)
        device = self._device()
        self.limit_threads()
        if fc.kind == "yunet":
            self.detector = load_face_detector("yunet", det_path, score_threshold=fc.score_threshold, input_width=fc.input_width)
        else:
            scale = min(1.0, fc.input_width / float(fc.work_width))
            self.detector = load_face_detector(fc.kind, det_path, device=device, scale=scale, score_threshold=fc.score_threshold)
        self.bf16 = use_bf16(ac.precision, device)
        # bf16 runs the torch encoders (faster than ONNX Runtime's fp32 there): skip the ONNX export
        self.asd = ActiveSpeakerModel.load(ac.kind, asd_path, device=device, runtime="torch" if self.bf16 else "auto", threads=self.threads)

    # ------------------------------------------------------------------ steps

    def _tick(self, step: str, t0: float) -> float:
        t = time.perf_counter()
        self.timings[step] += t - t0
        return t

    def detect_and_track(self, frames: list[np.ndarray], scale: float) -> tuple[list[FaceTrack], list[int]]:
        """Shot cuts, detection on the scheduled frames, tracks in source pixels."""
        fc = self.cfg.faces
        t = time.perf_counter()
        cuts = trk.shot_cuts(frames, fc.shot_cut_threshold)
        t = self._tick("shots", t)
        todo = trk.detection_frames(len(frames), fc.detect_every, cuts)
        found = self.detector.detect([frames[k] for k in todo])
        detections: list[Optional[np.ndarray]] = [None] * len(frames)
        for k, d in zip(todo, found):
            detections[k] = d
        self.counts["detected_frames"] += len(todo)
        t = self._tick("detect", t)
        tracks = trk.track_faces(
            detections,
            cuts,
            iou_threshold=fc.iou_threshold,
            max_gap=fc.max_gap,
            smooth_frames=fc.smooth_frames,
            min_track_frames=fc.min_track_frames,
            scale=scale,
        )
        self._tick("track", t)
        return tracks, cuts

    def score_tracks(
        self,
        tracks: list[FaceTrack],
        frames: list[np.ndarray],
        scale: float,
        mfcc: np.ndarray,
        row0: int,
        n_frames: int,
        voiced: Optional[np.ndarray] = None,
        budget_seconds: Optional[float] = None,
        dense: bool = False,
    ) -> int:
        """Fill `asd_scores` (NaN where not scored) of the tracks that could be the speaker; returns the offset used.

        Tracks with too small a face or on screen for too little of the utterance are not scored;
        the others on at most `asd.max_scored_seconds` (or `budget_seconds`, in one window), in
        windows spread over their voiced frames. `mfcc` row `row0 + 4k` is the audio of utterance frame k.
        """
        from ..crops import face_crops

        fc, ac = self.cfg.faces, self.cfg.asd
        max_frames = None if not ac.max_scored_seconds or dense else int(round(ac.max_scored_seconds * VIDEO_FPS))
        win_frames = max(1, int(round(ac.scored_window_seconds * VIDEO_FPS)))
        if budget_seconds and not dense:
            max_frames = win_frames = max(1, int(round(budget_seconds * VIDEO_FPS)))
        windows = list(ac.windows) or [0.0]
        offsets = list(range(-ac.max_offset_frames, ac.max_offset_frames + 1))
        focus = np.ones(n_frames, dtype=bool) if voiced is None else np.asarray(voiced, dtype=bool)
        pieces: list[tuple[FaceTrack, int, int, np.ndarray]] = []  # track, a, b, scores [offsets, b - a]
        for tr in tracks:
            tr.asd_scores = [math.nan] * len(tr.frames)
            if not self.could_speak(tr, n_frames):
                continue
            boxes = np.asarray(tr.boxes, dtype=np.float64) * scale
            fr = np.asarray(tr.frames)
            for a, b in attr.scored_windows(len(fr), max_frames, win_frames, focus[fr]):
                t = time.perf_counter()
                crops = face_crops([frames[f] for f in fr[a:b]], boxes[a:b])
                t = self._tick("crops", t)
                s = score_offsets(self.asd, mfcc, row0 + MFCC_PER_FRAME * int(fr[a]), crops, offsets, windows, self.bf16)
                pieces.append((tr, a, b, s))
                self.counts["scored_frames"] += b - a
                self._tick("asd", t)
        if not pieces:
            return 0
        # one offset for the whole utterance (a property of the file, not of a face): the one at
        # which the most in-sync face is seen speaking on the most voiced frames, each frame of
        # shift costing OFFSET_PENALTY of that fraction (a flat curve stays at 0 instead of
        # drifting to the edge of the search on noise), then the higher mean score
        thr = ac.threshold
        best_j, best = len(offsets) // 2, (-math.inf, -math.inf)
        for j, o in enumerate(offsets):
            per_track: dict[int, list[np.ndarray]] = defaultdict(list)
            for tr, a, b, s in pieces:
                m = focus[np.asarray(tr.frames[a:b])]
                per_track[tr.track_id].append(s[j][m] if m.any() else s[j])
            top = max(
                (round(float((v > thr).mean()) - OFFSET_PENALTY * abs(o), 4), float(v.mean()))
                for v in (np.concatenate(x) for x in per_track.values())
            )
            if top > best:
                best_j, best = j, top
        for tr, a, b, s in pieces:
            scores = list(tr.asd_scores)
            scores[a:b] = [float(x) for x in s[best_j]]
            tr.asd_scores = scores
        return offsets[best_j]

    def could_speak(self, track: FaceTrack, n_frames: int) -> bool:
        """A face big enough and on screen long enough to be the speaker (only those are scored)."""
        return attr.face_size(track) >= self.cfg.faces.min_face_px and len(track.frames) >= self.cfg.asd.min_coverage * n_frames

    def score_one_face(self, tracks, frames, scale, mfcc, row0: int, n: int, voiced) -> None:
        """ASD on a sample of the one candidate face: a short first pass, the full
        `asd.max_scored_seconds` only when that leaves the speaker in doubt."""
        fc, ac = self.cfg.faces, self.cfg.asd
        first = ac.first_pass_seconds
        short = bool(first) and (not ac.max_scored_seconds or first < ac.max_scored_seconds)
        self.last_offset = self.score_tracks(tracks, frames, scale, mfcc, row0, n, voiced, budget_seconds=first if short else None)
        if not short:
            return
        result = attr.attribute_with(tracks, n, fc, ac, voiced)
        if self.clear_speaker(result, self.last_offset):
            self.counts["early_stops"] += 1
        else:  # the first pass left the speaker in doubt: the full budget
            self.last_offset = self.score_tracks(tracks, frames, scale, mfcc, row0, n, voiced)

    def clear_speaker(self, result: attr.Attribution, offset: int = 0) -> bool:
        """After the short first pass: one face seen speaking on at least `asd.early_stop_fraction`
        of the voice and every other face below `asd.min_evidence_fraction`: more scoring would not
        change the answer. Anything else (a reject, a close call, a second face that might talk)
        gets the full budget, and so does a best audio/video offset at the edge of the search: on a
        short window the best of the offsets can be fitted to noise."""
        ac = self.cfg.asd
        if not result.ok or (result.speaking_fraction or 0.0) < ac.early_stop_fraction:
            return False
        if ac.max_offset_frames and abs(offset) >= ac.max_offset_frames:
            return False
        others = [s for s in result.stats if s.track_id != result.speaker_track]
        return all(s.speaking_fraction < ac.min_evidence_fraction for s in others)

    # ------------------------------------------------------------------ process

    def process(self, item: WorkItem) -> list[WorkItem]:
        seg = item.segment
        if seg is None:
            raise StageError("no_segment", "the vision stage needs an utterance (segment-level item)")
        path = item.video.path if item.video else item.source
        fc, ac, dc = self.cfg.faces, self.cfg.asd, self.cfg.dataset
        t = time.perf_counter()
        decoded = media.decode_video(
            path, seg.start, seg.end, VIDEO_FPS, fc.work_width, item.video.width if item.video else None, threads=self.threads
        )
        frames, scale = decoded.frames, decoded.scale
        n = len(frames)
        self.counts["frames"] += n
        self.counts["items"] += 1
        t = self._tick("decode", t)
        if n == 0:
            raise StageError("video_decode_failed", f"no video frame in [{seg.start:.2f}, {seg.end:.2f}) s")

        tracks, _cuts = self.detect_and_track(frames, scale)

        t = time.perf_counter()
        from ..asd import audio_mfcc

        # the analysis audio with room for the offset search on both sides
        pad_frames = min(ac.max_offset_frames, int(math.floor(seg.start * VIDEO_FPS + 1e-6)))
        pad = pad_frames / VIDEO_FPS
        audio16 = media.decode_audio(item.analysis_path or path, seg.start - pad, seg.end + ac.max_offset_frames / VIDEO_FPS, media.ANALYSIS_RATE)
        head = int(round(pad * media.ANALYSIS_RATE))
        mfcc = audio_mfcc(audio16)
        row0 = pad_frames * MFCC_PER_FRAME
        voiced = attr.voiced_frames(audio16[head : head + int(round(n / VIDEO_FPS * media.ANALYSIS_RATE))], n, VIDEO_FPS)
        self._tick("mfcc", t)
        if sum(self.could_speak(tr, n) for tr in tracks) >= 2:
            # several faces: who speaks when must be seen on every frame (a turn change between
            # sampled windows would go unseen)
            self.counts["dense_items"] += 1
            self.last_offset = self.score_tracks(tracks, frames, scale, mfcc, row0, n, voiced, dense=True)
        else:  # one face: whether it speaks, from a sample; the voice check sees a second voice
            self.score_one_face(tracks, frames, scale, mfcc, row0, n, voiced)
        item.tracks = tracks
        out = []
        for it, f0, f1 in self.cut_at_face_changes(item, tracks, n, voiced):
            if it.status == "dropped":
                out.append(it)
                continue
            if (f0, f1) == (0, n):
                out.append(self.attribute_and_export(it, frames, scale, tracks, voiced))
                continue
            sub = [t for t in (timeline.slice_track(tr, f0, f1) for tr in tracks) if t is not None]
            out.append(self.attribute_and_export(it, frames[f0:f1], scale, sub, voiced[f0:f1]))
        return out

    def cut_at_face_changes(self, item: WorkItem, tracks: list[FaceTrack], n: int, voiced: np.ndarray):
        """(piece, first frame, end frame) for each piece of the utterance once it is cut where the
        faces show another speaker taking over, or two speaking at once (`vision/timeline.py`)."""
        seg, ac = item.segment, self.cfg.asd
        turns = timeline.face_turns(tracks, n, ac.threshold, voiced, VIDEO_FPS, max(1, int(round(ac.min_turn_seconds * VIDEO_FPS))))
        if not turns.changes and not turns.overlaps:
            return [(item, 0, n)]
        removals = [Removal(seg.start + a, seg.start + b, OVERLAPPING_SPEECH,
                            f"two faces seen speaking at once for {b - a:.2f} s") for a, b in turns.overlaps]
        why = ", ".join(f"another face takes over at {seg.start + t:.2f} s" for t in turns.changes)
        pieces, rejects = split_utterance(seg, [seg.start + t for t in turns.changes], removals, self.cfg.segment, self.name, why)
        self.counts["face_splits"] += 1
        out = []
        for it in item.pieces(pieces, rejects):
            if it.status == "dropped":
                out.append((it, 0, n))
                continue
            p = it.segment
            f0 = max(0, int(round((p.start - seg.start) * VIDEO_FPS)))
            f1 = min(n, max(f0 + 1, int(math.ceil((p.end - seg.start) * VIDEO_FPS - 1e-6))))
            if it.voice is not None and len(pieces) > 1:
                it.voice = slice_windows(it.voice, p.start, p.end)
                it.speaker_embedding = mean_voice(it.voice)
            out.append((it, f0, f1))
        return out

    def attribute_and_export(self, item: WorkItem, frames: list[np.ndarray], scale: float, tracks: list[FaceTrack],
                             voiced: np.ndarray) -> WorkItem:
        """The speaker of one (piece of an) utterance, and its clip and audio when there is one."""
        seg, fc, ac, dc = item.segment, self.cfg.faces, self.cfg.asd, self.cfg.dataset
        path = item.video.path if item.video else item.source
        n = len(frames)
        result = attr.attribute_with(tracks, n, fc, ac, voiced)
        paths = clipmod.relative_paths(item.video_id or seg.video_id, seg.segment_id)
        vocals = None
        if result.ok or dc.debug_render:
            t = time.perf_counter()
            vocals = clipmod.cut_audio(item.vocals_path or path, seg.start, seg.end, dc.sample_rate)
            self._tick("audio", t)
        if dc.debug_render:
            t = time.perf_counter()
            label = f"speaker #{result.speaker_track}" if result.ok else str(result.reason)
            label += f"  av offset {self.last_offset:+d}"
            clipmod.write_debug_clip(
                self.output_dir / paths["debug"], frames, scale, tracks, result.speaker_track, vocals, dc.sample_rate, VIDEO_FPS, label
            )
            self._tick("debug", t)
        if not result.ok:
            return item.reject(self.name, result.reason, result.message)

        item.speaker_track = result.speaker_track
        item.speaker_boxes = result.boxes
        item.asd_score = float(result.asd_score) if result.asd_score is not None and math.isfinite(result.asd_score) else None
        item.speaking_fraction = result.speaking_fraction
        t = time.perf_counter()
        clipmod.write_segment_audio(self.output_dir / paths["audio"], vocals, dc.sample_rate)
        # the clip at dataset.clip_fps: every 25 fps frame, else the nearest one
        pick = np.arange(n)
        if abs(dc.clip_fps - VIDEO_FPS) > 1e-6:
            m = int(math.ceil(n * dc.clip_fps / VIDEO_FPS))
            pick = np.minimum(n - 1, np.round(np.arange(m) * VIDEO_FPS / dc.clip_fps).astype(int))
        clipmod.write_speaker_clip(
            self.output_dir / paths["clip"],
            [frames[k] for k in pick],
            scale,
            np.asarray(result.boxes)[pick],
            vocals,
            dc.sample_rate,
            fps=dc.clip_fps,
            size=dc.clip_size,
            margin=dc.clip_margin,
            threads=self.threads,
        )
        self._tick("export", t)
        item.audio_path = paths["audio"]
        item.clip_path = paths["clip"]
        item.other_faces = [timeline.median_box(t) for t in tracks
                            if t.track_id != result.speaker_track and len(t.frames) >= ac.min_coverage * n]
        return item
