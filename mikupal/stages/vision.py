"""Vision: find the visible speaker of each utterance and export the clip the labeler sees.

One actor does it all for one utterance, so decoded frames never travel between stages: decode
[start, end) once at 25 fps (the ASD models' rate) -> shot cuts, faces and tracks
(`vision/track.py`) -> ASD (`vision/search.py`: every frame of every face when two or more could
speak or the voice or words suggest a short turn of someone else; else a sample) -> cut where
another face takes over, two speak at once, a voice speaks off screen or a voice suspect is
confirmed (`vision/timeline.py`, `vision/turn_check.py`, `audio/word_cuts.py`) -> per piece, its
speaker (`vision/attribution.py`) -> speaker clip + dataset audio (`vision/clip.py`).
"""

from __future__ import annotations

import math
import time
from typing import Optional

import numpy as np

from ..config import RunConfig
from ..errors import StageError
from ..models_dir import ModelNeed, ensure_file, file_need
from ..speaker.embed import VoiceEncoder, mean_voice, slice_windows
from ..speaker.turns import TurnRules, question_then_reply, stretch_similarity
from ..audio.word_cuts import OVERLAPPING_SPEECH, Removal, split_utterance
from ..vision import clip as clipmod, readers as open_videos, runtime, timeline, track as tracking
from ..vision.asd import VIDEO_FPS, use_bf16
from ..vision.search import SpeakerSearch, Utterance, decode_utterance
from ..vision.steps import Steps
from ..records import FaceTrack, WorkItem
from .base import Stage


class VisionStage(Stage):
    name = "vision"
    holds_model = True
    level = "segment"
    cpu_cost = 0.174  # decode 720p30 at 25 fps + detection, tracks, crops, MFCC, export (benchmarks/README.md)

    def __init__(self, cfg, output_dir, threads=None):
        super().__init__(cfg, output_dir, threads)
        self.search: Optional[SpeakerSearch] = None
        self.voice: Optional[VoiceEncoder] = None  # GE2E, for the voice of what the faces show as a short turn
        self.steps = Steps()  # seconds per step and counts over this worker's items (benchmarks)
        self.detector, self.bf16, self.batching = None, False, None  # batching: merges the model calls of a call's utterances
        self.last_tracks: list[FaceTrack] = []  # the last utterance's scored tracks, for tests: they never travel
        self.readers = open_videos.VideoReaders(keep=max(2, self.items_per_call), threads=threads)  # kept open between utterances

    last_offset = property(lambda self: self.search.last_offset if self.search else 0)  # frames, last item

    resources = property(lambda self: self.cfg.faces.resources.widest(self.cfg.asd.resources))  # the wider of faces' and ASD's

    @classmethod
    def models(cls, cfg: RunConfig) -> list[ModelNeed]:
        det = "onnx" if cfg.faces.kind == "yunet" else "torch"
        voice = [file_need("speaker", cfg.models_dir, cfg.speaker.model, "torch")] if cfg.speaker.kind != "none" else []
        return [file_need("faces", cfg.models_dir, cfg.faces.model, det), file_need("asd", cfg.models_dir, cfg.asd.model, "torch")] + voice

    model_batch = property(lambda self: self.cfg.faces.batch_size if self.cfg.faces.kind == "s3fd" else 1)  # S3FD frames per pass

    def execution(self) -> str:
        return runtime.describe(self.cfg.faces.kind, self.cfg.asd.kind, self.holds_gpu)

    def setup(self) -> None:
        fc, ac, sc = self.cfg.faces, self.cfg.asd, self.cfg.speaker
        det_path, asd_path = (ensure_file(self.cfg.models_dir, m, self.cfg.offline) for m in (fc.model, ac.model))
        device, _ = self.device("vision (S3FD, ASD)"), self.limit_threads()
        self.detector, model, self.bf16, self.batching = runtime.load_models(fc, ac, det_path, asd_path, device, self.threads,
                                                                           batched=self.items_per_call > 1)
        self.search = SpeakerSearch(model, fc, ac, self.bf16, self.steps)
        self.doubt = lambda seconds, rules=TurnRules(sc.turn_thresholds): rules.limits(seconds)[0]
        if sc.kind != "none":
            self.voice = VoiceEncoder.load(ensure_file(self.cfg.models_dir, sc.model, self.cfg.offline), device, use_bf16(sc.precision, device))

    teardown = lambda self: self.readers.close()  # noqa: E731 - the videos left open
    side_by_side = lambda self: self.batching  # noqa: E731 - a call's utterances share detector and ASD passes (vision/batching.py)

    def process(self, item: WorkItem) -> list[WorkItem]:
        d, seg = item.data, item.data.segment
        if seg is None:
            raise StageError("no_segment", "the vision stage needs an utterance (segment-level item)")
        if self.search is None:
            self.start()
        path = d.video.path if d.video else item.source
        u = decode_utterance(path, d.analysis_path or path, seg.start, seg.end, d.video.width if d.video else None,
                             self.detector, self.cfg.faces, self.cfg.asd, self.steps, self.threads, self.readers)
        self.search.score(u, question_then_reply(seg.words), d.voice_suspects, seg.start)
        self.last_tracks = u.tracks
        out = [it if it.status == "dropped" else self.attribute_and_export(it, u, f0, f1)
               for it, f0, f1 in self.cut_at_face_changes(item, u)]
        for it in (x for x in out if x.status != "dropped" and x.data.speaker_track is not None):  # identity's must-link
            it.data.speaker_face = f"{seg.segment_id}#{it.data.speaker_track}"  # track ids hold within this decode only
        return out

    def cut_at_face_changes(self, item: WorkItem, u: Utterance) -> list[tuple[WorkItem, int, int]]:
        """(piece, first frame, end frame) for each piece of the utterance once it is cut where the
        faces show another speaker taking over, two speaking at once, or a short turn."""
        seg, d = item.data.segment, item.data
        turns = self.search.turns(u)
        voice_sim = (lambda a, b: stretch_similarity(self.voice, u.audio, a, b, d.voice, seg.start)) if self.voice else (lambda a, b: None)
        short = self.search.short_turns(u, seg.words, d.voice_suspects, seg.start, self.doubt, voice_sim)
        if not turns.changes and not turns.overlaps and not short.changes:
            return [(item, 0, u.n)]
        removals = [Removal(seg.start + a, seg.start + b, OVERLAPPING_SPEECH, f"two faces seen speaking at once for {b - a:.2f} s")
                    for a, b in turns.overlaps]
        why = ", ".join([f"another face takes over at {seg.start + t:.2f} s" for t in turns.changes] + short.notes)
        changes = [seg.start + t for t in turns.changes + short.changes]
        pieces, rejects = split_utterance(seg, changes, removals, self.cfg.segment, self.name, why)
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
        d, ac, dc = item.data, self.cfg.asd, self.cfg.dataset
        seg = d.segment
        tracks = u.tracks if (f0, f1) == (0, u.n) else [t for t in (timeline.slice_track(tr, f0, f1) for tr in u.tracks) if t is not None]
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
        d.speaking_fraction, d.audio_path, d.clip_path = result.speaking_fraction, paths["audio"], paths["clip"]
        d.other_faces = [timeline.median_box(t) for t in tracks if t.track_id != result.speaker_track and len(t.frames) >= ac.min_coverage * n]
        d.speaker_ends = tracking.face_ends(tracks, result.speaker_track, frames, seg.start, VIDEO_FPS)
        return item
