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
from ..records import SpeechRegion, Word

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

    # ------------------------------------------------------------ public

    def transcribe(self, audio16k: AudioSource, regions: Sequence[SpeechRegion]) -> list[RegionTranscript]:
        """Transcribe only the regions; word times are in source seconds, inside each clip."""
        return [rt for group in self.iter_transcribe(audio16k, regions) for rt in group]

    def iter_transcribe(self, audio16k: AudioSource, regions: Sequence[SpeechRegion]) -> Iterator[list[RegionTranscript]]:
        """`transcribe` in time order, a clip (or a batched group of clips) at a time, so that
        utterances can be cut and passed on while the rest of the file is still transcribed."""
        self.load()
        audio = _Audio(audio16k)
        clips = plan_clips(regions, audio)
        if self.pipeline is not None:
            per_call = max(1, int(self.cfg.batch_size) * GROUP_CLIPS_PER_BATCH)
            for g in range(0, len(clips), per_call):
                yield self._batch_group(audio, clips[g : g + per_call])
            return
        for c in clips:
            yield [self._transcribe_clip(audio, c)]

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

    def _transcribe_clip(self, audio: _Audio, clip: _Clip) -> RegionTranscript:
        x = audio.read(clip.start, clip.end)
        out = RegionTranscript(region_index=clip.region_index, start=clip.start, end=clip.end)
        if len(x) < SAMPLE_RATE // 10:
            return out
        segments, info = self.model.transcribe(x, **self._options())
        out.language = info.language or ""
        out.language_probability = float(info.language_probability or 0.0)
        out.segments = [_segment(s, clip.start, clip) for s in segments]
        _monotonic(out)
        return out

    # ------------------------------------------------------------ batched

    def _batch_group(self, audio: _Audio, group: list[_Clip]) -> list[RegionTranscript]:
        """Concatenate the group's clips, transcribe them as clip_timestamps, map times back."""
        parts, offsets, stamps = [], [], []
        pos = 0.0
        for c in group:
            x = audio.read(c.start, c.end)
            parts.append(x)
            offsets.append(pos)
            dur = len(x) / SAMPLE_RATE
            stamps.append({"start": pos, "end": pos + dur})
            pos += dur
        joined = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        results = [RegionTranscript(region_index=c.region_index, start=c.start, end=c.end) for c in group]
        keep = [i for i, st in enumerate(stamps) if st["end"] - st["start"] >= 0.1]
        if not keep:
            return results
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
        starts = np.array([stamps[i]["start"] for i in keep])
        for s in segments:
            k = keep[max(0, int(np.searchsorted(starts, float(s.start) + 1e-3, side="right")) - 1)]
            c = group[k]
            results[k].segments.append(_segment(s, c.start - offsets[k], c))
        for r in results:
            r.language = info.language or ""
            r.language_probability = float(info.language_probability or 0.0)
            _monotonic(r)
        return results


# ---------------------------------------------------------------- helpers


def _clamp(t: float, lo: float, hi: float) -> float:
    return float(min(max(t, lo), hi))


def _segment(s, offset: float, clip: _Clip) -> WhisperSegment:
    """A faster-whisper Segment in source seconds, clamped inside its clip."""
    words = []
    for w in s.words or []:
        text = w.word or ""  # whisper's own spacing (a leading space in spaced scripts)
        if not text.strip():
            continue
        a = _clamp(float(w.start) + offset, clip.start, clip.end)
        b = _clamp(float(w.end) + offset, clip.start, clip.end)
        words.append(Word(word=text, start=round(a, 3), end=round(max(a, b), 3), probability=float(w.probability)))
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


__all__ = ["Transcriber", "RegionTranscript", "WhisperSegment", "plan_clips"]
