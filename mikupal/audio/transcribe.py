"""faster-whisper on the speech regions only, with word timestamps in source seconds.

Regions are cut into clips of at most 30 s (a longer region is split at its quietest frame
near the limit, so the split falls between words). The plain model transcribes clip by clip,
each with its own language detection; the batched pipeline (GPU default) transcribes groups of
clips in one call, with one language detection per group. Audio is read clip by clip from a
file when given a path, so memory does not grow with the length of the video.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import numpy as np

from .. import media
from ..config import AsrConfig
from ..errors import UserError
from ..models_dir import is_offline, whisper_model
from ..records import SpeechRegion, Word, join_words
from .packing import Placed, Window, plan_windows

SAMPLE_RATE = 16000
MAX_CLIP_SECONDS = 30.0  # whisper's window
SPLIT_SEARCH_SECONDS = 8.0  # a long region is split at the quietest frame in its last 8 s before the limit
GROUP_CLIPS_PER_BATCH = 4  # batched mode: clips per call = batch_size * this (bounds feature memory)

log = logging.getLogger(__name__)

AudioSource = Union[np.ndarray, str, os.PathLike]


@dataclass
class WhisperSegment:
    start: float
    end: float
    text: str
    words: list[Word]
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0


@dataclass
class RegionTranscript:
    """What whisper heard in one clip of one speech region (times in source seconds)."""

    region_index: int
    start: float
    end: float
    language: str = ""
    language_probability: float = 0.0
    segments: list[WhisperSegment] = field(default_factory=list)

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words]

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments).strip()


@dataclass
class _Clip:
    region_index: int
    start: float
    end: float


# ---------------------------------------------------------------- audio access


class _Audio:
    """Slices of 16 kHz mono float32 audio from an array or a file (read on demand)."""

    def __init__(self, src: AudioSource):
        self.array: Optional[np.ndarray] = None
        self.path: Optional[str] = None
        if isinstance(src, np.ndarray):
            a = src.astype(np.float32, copy=False)
            self.array = a.mean(axis=0) if a.ndim == 2 else a
            self.n = len(self.array)
        else:
            self.path = str(src)
            info = media.audio_info(self.path)
            if info.sample_rate != SAMPLE_RATE:
                raise ValueError(f"{src}: analysis audio must be {SAMPLE_RATE} Hz, got {info.sample_rate}")
            self.n = int(info.frames)

    @property
    def duration(self) -> float:
        return self.n / SAMPLE_RATE

    def read(self, start: float, end: float) -> np.ndarray:
        a = max(0, min(self.n, int(round(start * SAMPLE_RATE))))
        b = max(a, min(self.n, int(round(end * SAMPLE_RATE))))
        if self.array is not None:
            return self.array[a:b]
        x, _ = media.read_samples(self.path, a, b)
        return x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]


def plan_clips(regions: Sequence[SpeechRegion], audio: Optional[_Audio] = None, max_seconds: float = MAX_CLIP_SECONDS) -> list[_Clip]:
    """Regions as whisper-sized clips: a region over `max_seconds` is split at a quiet frame."""
    clips: list[_Clip] = []
    for idx, r in enumerate(regions):
        s, e = float(r.start), float(r.end)
        if audio is not None:
            e = min(e, audio.duration)
        while e - s > max_seconds:
            cut = s + max_seconds - 0.05
            if audio is not None:
                lo = max(s + 1.0, cut - SPLIT_SEARCH_SECONDS)
                x = audio.read(lo, cut)
                frame = SAMPLE_RATE // 50  # 20 ms
                n = len(x) // frame
                if n > 1:
                    p = (x[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
                    k = int(np.argmin(p[::-1]))  # the latest of equally quiet frames
                    cut = lo + (n - 1 - k + 0.5) * frame / SAMPLE_RATE
            clips.append(_Clip(idx, round(s, 3), round(cut, 3)))
            s = cut
        if e - s > 0.01:
            clips.append(_Clip(idx, round(s, 3), round(e, 3)))
    return clips


# ---------------------------------------------------------------- the transcriber


class Transcriber:
    """Loads faster-whisper once; `transcribe(audio16k, regions) -> list[RegionTranscript]`."""

    def __init__(self, cfg: AsrConfig, models_dir: str | os.PathLike, offline: bool = False, threads: Optional[int] = None):
        self.cfg = cfg
        self.models_dir = Path(models_dir)
        self.offline = offline
        self.threads = threads  # CTranslate2 threads when asr.cpu_threads is 0 (None: its default)
        self.model = None
        self.pipeline = None
        self.model_ref: Optional[str] = None

    def load(self) -> None:
        if self.model is not None:
            return
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        ref = whisper_model(self.models_dir, self.cfg.model, self.offline)
        self.model_ref = ref
        kwargs = dict(
            device=self.cfg.device,
            compute_type=self.cfg.compute_type,
            cpu_threads=int(self.cfg.cpu_threads or self.threads or 0),
            num_workers=1,
            local_files_only=is_offline(self.offline) or Path(ref).is_dir(),
        )
        try:
            self.model = WhisperModel(ref, **kwargs)
        except Exception as e:  # noqa: BLE001 - a model that will not load is a user problem
            raise UserError(f"whisper model {self.cfg.model} could not be loaded ({ref}): {type(e).__name__}: {e}") from None
        if self.cfg.batched:
            self.pipeline = BatchedInferencePipeline(model=self.model)

    @property
    def multilingual(self) -> bool:
        return bool(self.model is not None and self.model.model.is_multilingual)

    @property
    def packs(self) -> bool:
        """Short videos share windows (`audio/packing.py`) only where the language is known: a window
        gets one language detection."""
        return bool(self.cfg.pack) and (bool(self.cfg.language) or not self.multilingual)

    # ------------------------------------------------------------ public

    def transcribe(self, audio16k: AudioSource, regions: Sequence[SpeechRegion]) -> list[RegionTranscript]:
        """Transcribe only the regions; word times are in source seconds, inside each clip."""
        return [rt for group in self.iter_transcribe(audio16k, regions) for rt in group]

    def iter_transcribe(self, audio16k: AudioSource, regions: Sequence[SpeechRegion]) -> Iterator[list[RegionTranscript]]:
        """`transcribe` in time order, a clip (or a batched group of clips) at a time, so that
        utterances can be cut and passed on while the rest of the file is still transcribed."""
        plan = self.plan([Source(audio16k, regions)])
        for done in self.run(plan):
            yield [rt for _, rt in done]

    def shared(self, sources: Sequence["Source"]) -> "SharedTranscription":
        """Several videos transcribed together (short ones packed into shared windows); each video's
        transcripts are read with `for_source(i)`, in the order of `sources`."""
        plan = self.plan(sources)
        return SharedTranscription(self.run(plan), [len(c) for c in plan.clips])

    def plan(self, sources: Sequence["Source"]) -> "CallPlan":
        self.load()
        audios = [_Audio(s.audio) for s in sources]
        clips = [plan_clips(s.regions, a) for s, a in zip(sources, audios)]
        packable = [self.packs and s.duration is not None and s.duration <= MAX_CLIP_SECONDS for s in sources]
        windows = plan_windows([[c.end - c.start for c in cs] for cs in clips], packable, MAX_CLIP_SECONDS)
        return CallPlan(audios, clips, windows)

    def run(self, plan: "CallPlan") -> Iterator[list[tuple[int, RegionTranscript]]]:
        """The plan's windows in order, one at a time (or a batched group at a time): the
        transcripts of the clips each held, tagged with their source's index."""
        if self.pipeline is not None:
            per_call = max(1, int(self.cfg.batch_size) * GROUP_CLIPS_PER_BATCH)
            for g in range(0, len(plan.windows), per_call):
                yield self._batch_group(plan, plan.windows[g : g + per_call])
            return
        for w in plan.windows:
            yield self._transcribe_window(plan, w)

    # ------------------------------------------------------------ plain

    def _options(self) -> dict:
        return dict(
            language=self.cfg.language,
            beam_size=int(self.cfg.beam_size),
            temperature=[float(t) for t in self.cfg.temperature],
            word_timestamps=True,
            vad_filter=False,
            condition_on_previous_text=False,
        )

    def _transcribe_window(self, plan: "CallPlan", window: Window) -> list[tuple[int, RegionTranscript]]:
        x = plan.window_audio(window)
        results = plan.empty(window)
        if len(x) < SAMPLE_RATE // 10:
            return results
        segments, info = self.model.transcribe(x, **self._options())
        _fill(plan, window, results, list(segments), info)
        return results

    # ------------------------------------------------------------ batched

    def _batch_group(self, plan: "CallPlan", group: list[Window]) -> list[tuple[int, RegionTranscript]]:
        """Concatenate the group's windows, transcribe them as clip_timestamps, map times back."""
        parts, stamps = [], []
        pos = 0.0
        for w in group:
            x = plan.window_audio(w)
            parts.append(x)
            dur = len(x) / SAMPLE_RATE
            stamps.append({"start": pos, "end": pos + dur})
            pos += dur
        joined = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        results = [plan.empty(w) for w in group]
        keep = [i for i, st in enumerate(stamps) if st["end"] - st["start"] >= 0.1]
        if not keep:
            return [r for rs in results for r in rs]
        segments, info = self.pipeline.transcribe(
            joined,
            language=self.cfg.language,
            beam_size=int(self.cfg.beam_size),
            temperature=[float(t) for t in self.cfg.temperature],
            word_timestamps=True,
            vad_filter=False,
            clip_timestamps=[stamps[i] for i in keep],
            batch_size=int(self.cfg.batch_size),
        )
        per_window: list[list] = [[] for _ in group]
        for s in segments:
            # whisper's times are on a 20 ms grid: a segment can start a little before its window
            # does, so it belongs to the window holding its middle
            mid = (float(s.start) + float(s.end)) / 2.0
            k = min(keep, key=lambda i: 0.0 if stamps[i]["start"] <= mid <= stamps[i]["end"]
                    else min(abs(mid - stamps[i]["start"]), abs(mid - stamps[i]["end"])))
            per_window[k].append(_Shifted(s, -stamps[k]["start"]))
        for k in keep:
            _fill(plan, group[k], results[k], per_window[k], info)
        return [r for rs in results for r in rs]


@dataclass
class Source:
    """One video of a call: its 16 kHz audio, the regions to transcribe and its duration (None:
    unknown, never packed)."""

    audio: AudioSource
    regions: Sequence[SpeechRegion]
    duration: Optional[float] = None


@dataclass
class CallPlan:
    """Every clip of a call's videos and the windows they are transcribed in."""

    audios: list["_Audio"]
    clips: list[list[_Clip]]
    windows: list[Window]

    def clip(self, p: Placed) -> _Clip:
        return self.clips[p.source][p.index]

    def window_audio(self, window: Window) -> np.ndarray:
        parts = []
        for k, p in enumerate(window.placed):
            if k:
                parts.append(np.zeros(int(round((p.offset - window.placed[k - 1].end) * SAMPLE_RATE)), np.float32))
            c = self.clip(p)
            parts.append(self.audios[p.source].read(c.start, c.end))
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def empty(self, window: Window) -> list[tuple[int, RegionTranscript]]:
        return [(p.source, RegionTranscript(region_index=self.clip(p).region_index, start=self.clip(p).start,
                                            end=self.clip(p).end)) for p in window.placed]


class SharedTranscription:
    """A call's transcription, read video by video: `for_source(i)` yields video i's transcripts as
    the windows holding its clips are done (windows run in the order of the videos, so a video's
    neighbours' clips are kept until their turn). A window that fails fails every video in it."""

    def __init__(self, windows: Iterator[list[tuple[int, RegionTranscript]]], clips_per_source: list[int]):
        self._windows = windows
        self._left = list(clips_per_source)
        self._ready: dict[int, list[list[RegionTranscript]]] = {i: [] for i in range(len(clips_per_source))}
        self._error: Optional[BaseException] = None

    def for_source(self, i: int) -> Iterator[list[RegionTranscript]]:
        while True:
            while self._ready[i]:
                yield self._ready[i].pop(0)
            if self._left[i] <= 0:
                return
            if self._error is not None:
                raise self._error
            try:
                done = next(self._windows)
            except StopIteration:
                return
            except Exception as e:  # noqa: BLE001 - raised for every video the window held
                self._error = e
                raise
            by_source: dict[int, list[RegionTranscript]] = {}
            for s, rt in done:
                by_source.setdefault(s, []).append(rt)
            for s, rts in by_source.items():
                self._ready[s].append(rts)
                self._left[s] -= len(rts)


# ---------------------------------------------------------------- helpers


def _clamp(t: float, lo: float, hi: float) -> float:
    return float(min(max(t, lo), hi))


class _Shifted:
    """A faster-whisper segment of a batched group, with its times moved into its own window."""

    def __init__(self, s, shift: float):
        self.start, self.end, self.text = float(s.start) + shift, float(s.end) + shift, s.text
        self.no_speech_prob, self.avg_logprob = s.no_speech_prob, s.avg_logprob
        self.compression_ratio = getattr(s, "compression_ratio", 0.0)
        self.words = [_ShiftedWord(w, shift) for w in s.words or []]


class _ShiftedWord:
    def __init__(self, w, shift: float):
        self.word, self.start, self.end, self.probability = w.word, float(w.start) + shift, float(w.end) + shift, w.probability


def _fill(plan: CallPlan, window: Window, results: list[tuple[int, RegionTranscript]], segments: list, info) -> None:
    """Give each clip of a window its part of whisper's segments (times in window seconds): a word
    belongs to the clip its middle falls in; a segment whose words fall in two clips becomes one
    segment per clip, with its scores and the text of its own words."""
    for s in segments:
        words = list(s.words or [])
        owners = [window.locate((float(w.start) + float(w.end)) / 2.0) for w in words]
        if not words:
            owners_of_segment = [window.locate((float(s.start) + float(s.end)) / 2.0)]
        else:
            owners_of_segment = sorted(set(owners))
        whole = len(owners_of_segment) == 1
        for k in owners_of_segment:
            p = window.placed[k]
            clip = plan.clip(p)
            mine = None if whole else [w for w, o in zip(words, owners) if o == k]
            results[k][1].segments.append(_segment(s, clip.start - p.offset, clip, mine))
    for _, rt in results:
        rt.language = info.language or ""
        rt.language_probability = float(info.language_probability or 0.0)
        _monotonic(rt)


def _segment(s, offset: float, clip: _Clip, part: Optional[list] = None) -> WhisperSegment:
    """A faster-whisper Segment in source seconds, clamped inside its clip (`part`: only these of
    its words, the segment's share of a packed window)."""
    words = []
    for w in (s.words or []) if part is None else part:
        text = w.word or ""  # whisper's own spacing (a leading space in spaced scripts)
        if not text.strip():
            continue
        a = _clamp(float(w.start) + offset, clip.start, clip.end)
        b = _clamp(float(w.end) + offset, clip.start, clip.end)
        words.append(Word(word=text, start=round(a, 3), end=round(max(a, b), 3), probability=float(w.probability)))
    if part is not None:
        return WhisperSegment(
            start=words[0].start if words else clip.start, end=words[-1].end if words else clip.start,
            text=join_words(words), words=words, no_speech_prob=float(s.no_speech_prob or 0.0),
            avg_logprob=float(s.avg_logprob or 0.0), compression_ratio=float(getattr(s, "compression_ratio", 0.0) or 0.0),
        )
    return WhisperSegment(
        start=round(_clamp(float(s.start) + offset, clip.start, clip.end), 3),
        end=round(_clamp(float(s.end) + offset, clip.start, clip.end), 3),
        text=(s.text or "").strip(),
        words=words,
        no_speech_prob=float(s.no_speech_prob or 0.0),
        avg_logprob=float(s.avg_logprob or 0.0),
        compression_ratio=float(getattr(s, "compression_ratio", 0.0) or 0.0),
    )


def _monotonic(rt: RegionTranscript) -> None:
    """Word times never go back: each word starts at or after the previous one ended."""
    prev_end = rt.start
    for seg in rt.segments:
        for w in seg.words:
            if w.start < prev_end:
                w.start = prev_end
            if w.end < w.start:
                w.end = w.start
            prev_end = w.end
        if seg.words:
            seg.start = min(seg.start, seg.words[0].start)
            seg.end = max(seg.end, seg.words[-1].end)


__all__ = ["Transcriber", "RegionTranscript", "WhisperSegment", "Source", "SharedTranscription", "plan_clips"]
