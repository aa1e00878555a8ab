"""ASR: the fan-out. Transcribe the speech regions, cut utterances, one item per utterance.

Utterances are passed on as each whisper clip is transcribed (a generator), so the vision pool
starts on a video's first utterances while the rest of it is still being transcribed. Whisper
clips never cross a region boundary and utterances never cross a clip, so cutting clip by clip
gives the same utterances as cutting the whole file at once."""

from __future__ import annotations

from collections import Counter
from typing import Iterator, Optional

from .. import media
from ..audio.segmentation import cut_utterances, video_reject_reason
from ..audio.transcribe import Transcriber
from ..config import Resources, RunConfig
from ..models_dir import ModelNeed, whisper_models, whisper_need
from ..records import Reject, SpeechSegment
from ..records import WorkItem
from .base import Stage


class AsrStage(Stage):
    name = "asr"
    holds_model = True
    level = "video"  # consumes videos, emits segments
    fans_out = True

    transcriber: Optional[Transcriber] = None

    @property
    def resources(self) -> Resources:
        return self.cfg.asr.resources

    @classmethod
    def models(cls, cfg: RunConfig) -> list[ModelNeed]:
        return [whisper_need(cfg.models_dir, name, component) for component, name in whisper_models(cfg)]

    @property
    def model_batch(self) -> Optional[int]:
        return self.cfg.asr.batch_size if self.cfg.asr.batched else 1

    def execution(self) -> str:
        a = self.cfg.asr
        device = a.device if a.device != "auto" else ("cuda" if self.holds_gpu else "cpu")
        return f"faster-whisper {a.model}: ctranslate2 {device} {a.compute_type}"

    def setup(self) -> None:
        self.transcriber = Transcriber(self.cfg.asr, self.cfg.models_dir, offline=self.cfg.offline, threads=self.threads)
        self.transcriber.load()
        self.transcriber.check_device(self.holds_gpu, self.cfg.engine.require_gpu)

    def _too_short(self, item: WorkItem) -> list[Reject]:
        min_s = self.cfg.segment.min_seconds
        return [
            item.span_reject(self.name, "too_short", f"speech region of {r.end - r.start:.2f} s < min_seconds {min_s:g}", r.start, r.end)
            for r in item.data.regions
            if r.end - r.start < min_s - 1e-9
        ]

    def process(self, item: WorkItem) -> Iterator[WorkItem]:
        if self.transcriber is None:
            self.start()
        assert self.transcriber is not None
        if not item.data.regions:
            yield item.reject(self.name, "no_speech", "no speech regions to transcribe")
            return
        # a region shorter than the shortest utterance cannot yield one: do not spend whisper on it
        min_s = self.cfg.segment.min_seconds
        regions = item.data.regions
        long_enough = [r for r in regions if r.end - r.start >= min_s - 1e-9]
        # video-level accounting (earlier rejects and stage times) travels once, on the first item;
        # rejects found while transcribing ride on the next utterance passed on (or the last one)
        rejects: list[Reject] = list(item.rejects) + self._too_short(item)
        all_rejects: list[Reject] = list(rejects)
        template = item.model_copy(update={"data": item.data.model_copy(update={"regions": []}), "rejects": [], "times": []})
        held: Optional[WorkItem] = None
        n = 0
        if long_enough:
            audio = item.data.analysis_path or media.decode_audio(item.data.video.path if item.data.video else item.source)
            for transcripts in self.transcriber.iter_transcribe(audio, long_enough):
                segments, cut_rejects = cut_utterances(item.video_id, item.source, transcripts, self.cfg.segment, regions)
                rejects.extend(cut_rejects)
                all_rejects.extend(cut_rejects)
                for seg in segments:
                    if held is not None:
                        yield held
                    held = self._utterance(template, seg, regions, first=n == 0, item=item)
                    held.rejects, rejects = rejects, []
                    n += 1
        if held is None:
            found = sorted(all_rejects[len(item.rejects) :], key=lambda r: r.start if r.start is not None else -1.0)
            item.rejects.extend(found)
            counts = Counter(r.reason for r in found)
            summary = ", ".join(f"{c} {r}" for r, c in counts.most_common()) or "nothing transcribed"
            yield item.reject(self.name, video_reject_reason(found), f"no utterance survived ({summary})")
            return
        held.rejects = held.rejects + rejects
        yield held

    @staticmethod
    def _utterance(template: WorkItem, seg: SpeechSegment, regions, first: bool, item: WorkItem) -> WorkItem:
        it = template.model_copy(deep=True)
        it.status = "segment"
        it.data.segment = seg
        it.data.regions = [r.model_copy() for r in regions if r.end > seg.start and r.start < seg.end]
        if first:
            it.times = list(item.times)
        return it
