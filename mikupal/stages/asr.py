"""ASR: the fan-out. Transcribe the speech regions, cut utterances, one item per utterance."""

from __future__ import annotations

from collections import Counter
from typing import Optional

from .. import media
from ..audio.segmentation import cut_utterances, video_reject_reason
from ..audio.transcribe import Transcriber
from ..config import Resources
from ..records import Reject, segment_id
from .base import Stage, WorkItem


class AsrStage(Stage):
    name = "asr"
    level = "video"  # consumes videos, emits segments

    transcriber: Optional[Transcriber] = None

    @property
    def resources(self) -> Resources:
        return self.cfg.asr.resources

    def setup(self) -> None:
        self.transcriber = Transcriber(self.cfg.asr, self.cfg.models_dir, offline=self.cfg.offline)
        self.transcriber.load()

    def process(self, item: WorkItem) -> list[WorkItem]:
        if self.transcriber is None:
            self.setup()
        assert self.transcriber is not None
        if not item.regions:
            return [item.reject(self.name, "no_speech", "no speech regions to transcribe")]
        # a region shorter than the shortest utterance cannot yield one: do not spend whisper on it
        min_s = self.cfg.segment.min_seconds
        regions = [r for r in item.regions if r.end - r.start >= min_s - 1e-9]
        rejects: list[Reject] = [
            Reject(
                item_id=segment_id(item.video_id, r.start),
                video_id=item.video_id,
                source=item.source,
                stage=self.name,
                reason="too_short",
                message=f"speech region of {r.end - r.start:.2f} s < min_seconds {min_s:g}",
                start=r.start,
                end=r.end,
            )
            for r in item.regions
            if r.end - r.start < min_s - 1e-9
        ]
        segments = []
        if regions:
            audio = item.analysis_path or media.decode_audio(item.video.path if item.video else item.source)
            transcripts = self.transcriber.transcribe(audio, regions)
            segments, cut_rejects = cut_utterances(item.video_id, item.source, transcripts, self.cfg.segment, regions)
            rejects = sorted(rejects + cut_rejects, key=lambda r: r.start if r.start is not None else -1.0)
        if not segments:
            item.rejects.extend(rejects)
            counts = Counter(r.reason for r in rejects)
            summary = ", ".join(f"{n} {r}" for r, n in counts.most_common()) or "nothing transcribed"
            item.fanout_total = 1
            return [item.reject(self.name, video_reject_reason(rejects), f"no utterance survived ({summary})")]
        out: list[WorkItem] = []
        base_rejects = list(item.rejects) + rejects
        regions = item.regions
        item.regions = []  # each utterance carries only the regions it overlaps
        for k, seg in enumerate(segments):
            it = item.model_copy(deep=True)
            it.status = "segment"
            it.segment = seg
            it.fanout_total = len(segments)
            it.regions = [r.model_copy() for r in regions if r.end > seg.start and r.start < seg.end]
            # video-level accounting (rejects, earlier stage times) travels once, on the first item
            it.rejects = base_rejects if k == 0 else []
            if k > 0:
                it.times = []
            out.append(it)
        return out
