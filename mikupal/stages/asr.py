"""ASR: the fan-out. Transcribe the speech regions, cut utterances, one item per utterance.

Utterances are passed on as each whisper clip is transcribed (a generator), so the vision pool
starts on a video's first utterances while the rest of it is still being transcribed. Whisper
clips never cross a region boundary and utterances never cross a clip, so cutting clip by clip
gives the same utterances as cutting the whole file at once.

A call holds `asr.resources.items_per_call` videos: short ones share whisper windows
(`audio/packing.py`), each video's utterances still passed on as soon as its clips are done."""

from __future__ import annotations

from collections import Counter
from typing import Iterator, Optional

from .. import media
from ..audio.segmentation import cut_utterances, video_reject_reason
from ..audio.transcribe import MAX_CLIP_SECONDS, SharedTranscription, Source, Transcriber
from ..committed import VideoSummary
from ..config import AsrConfig, Resources, RunConfig
from ..models_dir import ModelNeed, english_only, whisper_models, whisper_need
from ..records import Reject, SpeechSegment
from ..records import WorkItem
from .base import Stage


def shares_call(asr: AsrConfig) -> bool:
    """The short videos of a call share work: packed whisper windows (`asr.pack`), or the language
    check of an English-only model or a forced language (read together across videos)."""
    return bool(asr.pack) or bool(asr.language) or (english_only(asr.model) and bool(asr.language_id_model))


class AsrStage(Stage):
    name = "asr"
    holds_model = True
    level = "video"  # consumes videos, emits segments
    fans_out = True

    transcriber: Optional[Transcriber] = None
    #: the current call's videos transcribed together (video id -> its index there), or None
    _call: Optional[tuple[SharedTranscription, dict[str, int]]] = None

    @property
    def resources(self) -> Resources:
        return self.cfg.asr.resources

    @classmethod
    def models(cls, cfg: RunConfig) -> list[ModelNeed]:
        return [whisper_need(cfg.models_dir, name, component) for component, name in whisper_models(cfg)]

    @property
    def items_per_call(self) -> int:
        """Videos per call: `resources.items_per_call` where short videos share work (whisper
        windows, or the language check), else one. A group that shares nothing only delays each
        video's commit to the group's end (the sequential engine takes each group through every
        stage) and holds its items at once."""
        return super().items_per_call if shares_call(self.cfg.asr) else 1

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

    def iter_items(self, items: list[WorkItem]) -> Iterator[WorkItem]:
        """The call's videos transcribed together (short ones packed), then each cut and passed on
        in order, as its windows are done."""
        self.start()
        if not self.transcriber.shares_call:  # nothing is shared: each video read and transcribed in its turn
            yield from super().iter_items(items)
            return
        live, sources = [], []
        for it in items:
            if it.passes_through or not self._long_enough(it) or not self._packable(it):
                continue  # a longer video's windows are its own: read when its turn comes, not held meanwhile
            try:
                audio = self._audio(it)
            except Exception:  # noqa: BLE001 - a video that cannot be read fails alone, in process()
                continue
            live.append(it)
            sources.append(Source(audio, self._long_enough(it), it.data.video.duration))
        self._call = None
        if live:
            try:
                self._call = (self.transcriber.shared(sources), {it.video_id: k for k, it in enumerate(live)})
            except Exception:  # noqa: BLE001 - each video is then transcribed alone, and fails alone
                self._call = None
        try:
            for it in items:
                yield from self.iter_item(it)
        finally:
            self._call = None

    def depends_on_call(self, video: VideoSummary) -> bool:
        """A short video's text depends on the videos packed with it (`audio/packing.py`), and
        its language check on those checked with it (`audio/language_id.py: CallLanguageCheck`)."""
        return self.items_per_call > 1 and shares_call(self.cfg.asr) and 0.0 < video.duration <= MAX_CLIP_SECONDS

    @staticmethod
    def _packable(item: WorkItem) -> bool:
        """Short enough to share a window (`Transcriber.shared` checks its clips fit one too)."""
        return item.data.video is not None and 0.0 < item.data.video.duration <= MAX_CLIP_SECONDS

    def _long_enough(self, item: WorkItem) -> list:
        """The regions worth whisper: one shorter than the shortest utterance cannot yield one."""
        min_s = self.cfg.segment.min_seconds
        return [r for r in item.data.regions if r.end - r.start >= min_s - 1e-9]

    @staticmethod
    def _audio(item: WorkItem):
        return item.data.analysis_path or media.decode_audio(item.data.video.path if item.data.video else item.source)

    def _transcripts(self, item: WorkItem, regions: list):
        if self._call is not None and item.video_id in self._call[1]:
            return self._call[0].for_source(self._call[1][item.video_id])
        return self.transcriber.iter_transcribe(self._audio(item), regions)

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
        regions = item.data.regions
        long_enough = self._long_enough(item)
        # video-level accounting (earlier rejects and stage times) travels once, on the first item;
        # rejects found while transcribing ride on the next utterance passed on (or the last one)
        rejects: list[Reject] = list(item.rejects) + self._too_short(item)
        all_rejects: list[Reject] = list(rejects)
        template = item.model_copy(update={"data": item.data.model_copy(update={"regions": []}), "rejects": [], "times": []})
        held: Optional[WorkItem] = None
        n = 0
        if long_enough:
            for transcripts in self._transcripts(item, long_enough):
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
