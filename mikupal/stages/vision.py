"""Vision: find the visible speaker of each utterance and export the clip the labeler sees.

One actor does it all for one utterance, so decoded frames never travel between stages: decode
[start, end) once at 25 fps (the ASD models' rate) -> shot cuts, faces and tracks
(`vision/track.py`) -> ASD (`vision/speaker.py`: every frame of every face that could be the
speaker when there are two or more, else a sample) -> cut where another face takes over or two
speak at once (`vision/timeline.py`, `speaker/split.py`) -> per piece, its speaker
(`vision/attribution.py`) -> speaker clip + dataset audio (`vision/clip.py`).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Optional

import numpy as np

from ..config import Resources
from ..errors import StageError
from ..models_dir import ensure_file
from ..speaker.embed import mean_voice, slice_windows
from ..speaker.split import OVERLAPPING_SPEECH, Removal, split_utterance
from ..vision import clip as clipmod
from ..vision import timeline
from ..vision.steps import Steps
from ..records import FaceTrack, WorkItem
from .base import Stage

if TYPE_CHECKING:  # torch comes with them: imported where the worker uses them, never by the driver
    from ..vision.speaker import SpeakerSearch, Utterance


class VisionStage(Stage):
    name = "vision"
    holds_model = True
    level = "segment"

    def __init__(self, cfg, output_dir, threads=None):
        super().__init__(cfg, output_dir, threads)
        self.detector = None
        self.search: Optional[SpeakerSearch] = None
        self.steps = Steps()  # seconds per step and counts over this worker's items (benchmarks)
        self.bf16 = False
        #: the face tracks (with ASD scores) of the last utterance this worker saw: for tests and
        #: benchmarks in the same process; they never travel with the item
        self.last_tracks: list[FaceTrack] = []

    timings = property(lambda self: self.steps.timings)
    counts = property(lambda self: self.steps.counts)
    last_offset = property(lambda self: self.search.last_offset if self.search else 0)  # frames, last item

    @property
    def resources(self) -> Resources:
        return self.cfg.faces.resources.widest(self.cfg.asd.resources)

    def setup(self) -> None:
        from ..vision.asd import ActiveSpeakerModel, use_bf16
        from ..vision.faces import load_face_detector
        from ..vision.speaker import SpeakerSearch

        fc, ac = self.cfg.faces, self.cfg.asd
        det_path = ensure_file(self.cfg.models_dir, fc.model, self.cfg.offline)
        asd_path = ensure_file(self.cfg.models_dir, ac.model, self.cfg.offline)
        device = self.device()
        self.limit_threads()
        if fc.kind == "yunet":
            self.detector = load_face_detector("yunet", det_path, score_threshold=fc.score_threshold, input_width=fc.input_width)
        else:
            scale = min(1.0, fc.input_width / float(fc.work_width))
            self.detector = load_face_detector(fc.kind, det_path, device=device, scale=scale, score_threshold=fc.score_threshold)
        self.bf16 = use_bf16(ac.precision, device)
        # bf16 runs the torch encoders (faster than ONNX Runtime's fp32 there): skip the ONNX export
        model = ActiveSpeakerModel.load(ac.kind, asd_path, device=device, runtime="torch" if self.bf16 else "auto", threads=self.threads)
        self.search = SpeakerSearch(model, fc, ac, self.bf16, self.steps)

    def process(self, item: WorkItem) -> list[WorkItem]:
        d, seg = item.data, item.data.segment
        if seg is None:
            raise StageError("no_segment", "the vision stage needs an utterance (segment-level item)")
        if self.search is None:
            self.setup()
        path = d.video.path if d.video else item.source
        from ..vision.speaker import decode_utterance

        u = decode_utterance(path, d.analysis_path or path, seg.start, seg.end, d.video.width if d.video else None,
                             self.detector, self.cfg.faces, self.cfg.asd, self.steps, self.threads)
        self.search.score(u)
        self.last_tracks = u.tracks
        return [it if it.status == "dropped" else self.attribute_and_export(it, u, f0, f1)
                for it, f0, f1 in self.cut_at_face_changes(item, u)]

    def cut_at_face_changes(self, item: WorkItem, u: Utterance) -> list[tuple[WorkItem, int, int]]:
        """(piece, first frame, end frame) for each piece of the utterance once it is cut where the
        faces show another speaker taking over, or two speaking at once."""
        from ..vision.asd import VIDEO_FPS

        seg = item.data.segment
        turns = self.search.turns(u)
        if not turns.changes and not turns.overlaps:
            return [(item, 0, u.n)]
        removals = [Removal(seg.start + a, seg.start + b, OVERLAPPING_SPEECH, f"two faces seen speaking at once for {b - a:.2f} s")
                    for a, b in turns.overlaps]
        why = ", ".join(f"another face takes over at {seg.start + t:.2f} s" for t in turns.changes)
        pieces, rejects = split_utterance(seg, [seg.start + t for t in turns.changes], removals, self.cfg.segment, self.name, why)
        self.steps.counts["face_splits"] += 1
        out = []
        for it in item.pieces(pieces, rejects):
            p = it.data.segment
            f0 = max(0, int(round((p.start - seg.start) * VIDEO_FPS)))
            f1 = min(u.n, max(f0 + 1, int(math.ceil((p.end - seg.start) * VIDEO_FPS - 1e-6))))
            if it.status != "dropped" and it.data.voice is not None and len(pieces) > 1:
                it.data.voice = slice_windows(it.data.voice, p.start, p.end)
                it.data.speaker_embedding = mean_voice(it.data.voice)
            out.append((it, f0, f1))
        return out

    def attribute_and_export(self, item: WorkItem, u: Utterance, f0: int, f1: int) -> WorkItem:
        """The speaker of one (piece of an) utterance, and its clip and audio when there is one."""
        from ..vision.asd import VIDEO_FPS

        d, ac, dc = item.data, self.cfg.asd, self.cfg.dataset
        seg = d.segment
        whole = (f0, f1) == (0, u.n)
        tracks = u.tracks if whole else [t for t in (timeline.slice_track(tr, f0, f1) for tr in u.tracks) if t is not None]
        frames, n = u.frames[f0:f1], f1 - f0
        result = self.search.find_speaker(tracks, n, u.voiced[f0:f1])
        paths = clipmod.relative_paths(item.video_id or seg.video_id, seg.segment_id)
        vocals = None
        if result.ok or dc.debug_render:
            t = time.perf_counter()
            source = d.video.path if d.video else item.source
            vocals = clipmod.cut_audio(d.vocals_path or source, seg.start, seg.end, dc.sample_rate)
            self.steps.tick("audio", t)
        if dc.debug_render:
            label = (f"speaker #{result.speaker_track}" if result.ok else str(result.reason)) + f"  av offset {self.last_offset:+d}"
            clipmod.write_debug_clip(self.output_dir / paths["debug"], frames, u.scale, tracks, result.speaker_track, vocals,
                                     dc.sample_rate, VIDEO_FPS, label)
        if not result.ok:
            return item.reject(self.name, result.reason, result.message)
        t = time.perf_counter()
        clipmod.export(self.output_dir, paths, frames, u.scale, np.asarray(result.boxes), vocals, dc, threads=self.threads)
        self.steps.tick("export", t)
        d.speaker_track, d.speaker_boxes = result.speaker_track, result.boxes
        d.asd_score = float(result.asd_score) if result.asd_score is not None and math.isfinite(result.asd_score) else None
        d.speaking_fraction = result.speaking_fraction
        d.audio_path, d.clip_path = paths["audio"], paths["clip"]
        d.other_faces = [timeline.median_box(t) for t in tracks if t.track_id != result.speaker_track and len(t.frames) >= ac.min_coverage * n]
        return item
