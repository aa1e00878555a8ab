"""faster-whisper on the speech regions only, with word timestamps in source seconds.

Regions are cut into clips of at most 30 s (a longer region is split at its quietest frame
near the limit, so the split falls between words). The plain model transcribes clip by clip,
each with its own language detection; the batched pipeline (GPU default) transcribes groups of
clips in one call, with one language detection per group. Audio is read clip by clip from a
file when given a path, so memory does not grow with the length of the video.

Several short videos of one stage call share windows (`shared`, `audio/packing.py`): their clips
are laid into 30 s windows with short gaps, the language check reads each such window once, and
each word goes back to its own clip.
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
from ..devices import expose_pip_cuda_libs, fallback
from ..errors import UserError
from ..models_dir import is_offline, whisper_model
from ..records import SpeechRegion, Word, join_words
from .language_id import CallLanguageCheck, Heard, LanguageGuess, LanguageIdentifier, LanguageSchedule, is_mismatch
from .packing import Placed, Window, fits_one_window, plan_windows

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
    mismatch: str = ""  # why the clip was not transcribed: its language is not the ASR model's (language ID)

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
        self.identifier: Optional[LanguageIdentifier] = None
        self._guesses: dict[tuple[float, float], LanguageGuess] = {}  # (clip start, end) -> its language
        self._helper = None  # the language check's thread (`_identified_and_transcribed`), made when first needed

    def load(self) -> None:
        if self.model is not None:
            return
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        ref = whisper_model(self.models_dir, self.cfg.model, self.offline)
        self.model_ref = ref
        if self.cfg.device != "cpu":
            expose_pip_cuda_libs()  # CTranslate2's CUDA 12 cuBLAS from the `gpu` extra (nvidia-cublas-cu12)
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
        self.identifier = self._identifier()

    def _identifier(self) -> Optional[LanguageIdentifier]:
        """Who checks the spoken language against the one the model transcribes in: a multilingual
        whisper for an English-only model, the model itself when a language is forced; nobody when
        the model detects the language itself (or `asr.language_id_model` is null)."""
        if self.multilingual and not self.cfg.language:
            return None
        if not self.multilingual and not self.cfg.language_id_model:
            return None
        target = (self.cfg.language or "en") if self.multilingual else "en"
        if self.multilingual:
            ident = LanguageIdentifier(self.cfg.model, self.models_dir, target, self.offline)
            ident.model = self.model
            return ident
        ident = LanguageIdentifier(self.cfg.language_id_model, self.models_dir, target, self.offline,
                                   compute_type=self.cfg.compute_type, threads=int(self.cfg.cpu_threads or self.threads or 0))
        ident.load()
        return ident

    def check_device(self, gpu: bool, require: bool) -> str:
        """The device CTranslate2 really runs whisper on, logged; a worker holding a GPU whose model
        runs on the CPU (`device: auto` without CUDA) is a `devices.fallback`."""
        device = str(getattr(self.model.model, "device", self.cfg.device)) if self.model is not None else "cpu"
        if gpu and device != "cuda":
            fallback(f"asr (whisper {self.cfg.model})", "cuda", device,
                     "CTranslate2 found no CUDA device (asr.device=auto fell back to the CPU)", require)
        log.info("asr (whisper %s) runs on ctranslate2 %s", self.cfg.model, device)
        return device

    @property
    def multilingual(self) -> bool:
        return bool(self.model is not None and self.model.model.is_multilingual)

    @property
    def packs(self) -> bool:
        """Short videos share windows (`audio/packing.py`) only where the language is known: a
        window gets one language."""
        return bool(self.cfg.pack) and (bool(self.cfg.language) or not self.multilingual)

    @property
    def shares_call(self) -> bool:
        """A call's short videos share work: whisper windows (`packs`) or the language check."""
        return self.packs or self.identifier is not None

    def shared(self, sources: Sequence["Source"]) -> "SharedTranscription":
        """A call's videos transcribed together: the short ones (no longer than a window, their
        clips fitting one) packed into shared windows, or, unpacked, transcribed alone with their
        language checked together (`CallLanguageCheck`); the others each as `iter_transcribe`
        does. Each video's transcripts are read with `for_source(i)`, in the order of `sources`."""
        self.load()
        audios = [_Audio(s.audio) for s in sources]
        clips = [plan_clips(s.regions, a) for s, a in zip(sources, audios)]
        packed = [self.packs and s.duration is not None and 0.0 < s.duration <= MAX_CLIP_SECONDS
                  and fits_one_window([c.end - c.start for c in cs], MAX_CLIP_SECONDS) for s, cs in zip(sources, clips)]
        durations = [[c.end - c.start for c in cs] if p else [] for cs, p in zip(clips, packed)]
        plan = CallPlan(audios, clips, plan_windows(durations, packed, MAX_CLIP_SECONDS))
        checked = [i for i, (s, p) in enumerate(zip(sources, packed)) if not p and clips[i] and self.identifier is not None
                   and s.duration is not None and 0.0 < s.duration <= MAX_CLIP_SECONDS]
        check = CallLanguageCheck(self.identifier, [[audios[i].read(c.start, c.end) for c in clips[i]] for i in checked],
                                  self._helper_pool()) if checked else None
        alone = {i: (lambda s=s: self.iter_transcribe(s.audio, s.regions)) for i, (s, p) in enumerate(zip(sources, packed)) if not p}
        for k, i in enumerate(checked):
            alone[i] = lambda i=i, k=k: self._iter_checked(audios[i], clips[i], check, k)
        return SharedTranscription(self._run_windows(plan), [len(d) for d in durations], alone)

    def _run_windows(self, plan: "CallPlan") -> Iterator[list[tuple[int, "RegionTranscript"]]]:
        """The plan's windows in order, one at a time (or a batched group at a time): the
        transcripts of the clips each held, tagged with their source's index."""
        per_call = max(1, int(self.cfg.batch_size) * GROUP_CLIPS_PER_BATCH) if self.pipeline is not None else 1
        for g in range(0, len(plan.windows), per_call):
            windows = plan.windows[g : g + per_call]
            checked = [self._checked_window(plan, w) for w in windows]
            kept = [w for w, _ in checked]
            done = self._batch_windows(plan, kept) if self.pipeline is not None else [self._transcribe_window(plan, w) for w in kept]
            for window, (let_through, foreign), rts in zip(windows, checked, done):
                found = {**foreign, **(self._rechecked(plan, let_through, rts) if self.identifier is not None else rts)}
                yield [(p.source, found[(p.source, p.index)]) for p in window.placed]

    def _checked_window(self, plan: "CallPlan", window: Window) -> tuple[Window, dict]:
        """The window's clips the language check lets through, laid out again (a foreign clip is
        not transcribed: its `mismatch` transcript), and the foreign clips' transcripts. The check
        reads the clips together (`identify_across`: one identification when it is confidently the
        model's language; none for most windows once the call's are settled; `_rechecked` redoes a
        clip it let through whose text looks invented)."""
        if self.identifier is None:
            return window, {}
        sources = list(dict.fromkeys(p.source for p in window.placed))  # a video's clips share one window
        heard = dict(zip(sources, self.identifier.identify_scheduled([plan.video_clips(window, s) for s in sources], plan.schedule)))
        kept, foreign = Window(), {}
        for p in window.placed:
            h = heard[p.source]
            mismatch = self._mismatch(plan.clip(p), h.guess)
            if mismatch is not None:
                foreign[(p.source, p.index)] = mismatch
                continue
            kept.add(p.source, p.index, p.duration)
            plan.checked[p.source] = h
            if h.guess.language:  # the identified language replaces an English-only model's own claim (en, p=1)
                plan.heard[(p.source, p.index)] = (self.identifier.target, h.guess.target_probability)
        return kept, foreign

    def _rechecked(self, plan: "CallPlan", window: Window, rts: dict) -> dict:
        """The window's transcripts, a video that a shared identification let through but with a
        clip whose text looks invented identified alone (`LanguageIdentifier.recheck`): its clips'
        `mismatch` transcripts if it is foreign after all."""
        for source in dict.fromkeys(p.source for p in window.placed):
            h = plan.checked.get(source)
            if h is None or not h.shared:
                continue
            mine = [p for p in window.placed if p.source == source]
            g = self.identifier.recheck(lambda source=source: plan.video_clips(window, source), h,
                                        [[s.avg_logprob for s in rts[(p.source, p.index)].segments] for p in mine])
            if g is h.guess:
                continue
            for p in mine:
                key = (p.source, p.index)
                rts[key] = self._mismatch(plan.clip(p), g) or _heard(rts[key], self.identifier.target, g)
        return rts

    def _transcribe_window(self, plan: "CallPlan", window: Window) -> dict:
        x = plan.window_audio(window)
        results = plan.empty(window)
        if not window.placed or len(x) < SAMPLE_RATE // 10:
            return results
        segments, info = self.model.transcribe(x, **self._options())
        _fill(plan, window, results, list(segments), info)
        return results

    def _batch_windows(self, plan: "CallPlan", group: list[Window]) -> list[dict]:
        """Concatenate the group's windows, transcribe them as clip_timestamps, map times back."""
        parts, stamps = [], []
        pos = 0.0
        for w in group:
            x = plan.window_audio(w)
            parts.append(x)
            stamps.append({"start": pos, "end": pos + len(x) / SAMPLE_RATE})
            pos += len(x) / SAMPLE_RATE
        results = [plan.empty(w) for w in group]
        keep = [i for i, st in enumerate(stamps) if group[i].placed and st["end"] - st["start"] >= 0.1]
        if not keep:
            return results
        segments, info = self.pipeline.transcribe(
            np.concatenate(parts), language=self.cfg.language, beam_size=int(self.cfg.beam_size),
            temperature=[float(t) for t in self.cfg.temperature], word_timestamps=True, vad_filter=False,
            clip_timestamps=[stamps[i] for i in keep], batch_size=int(self.cfg.batch_size),
        )
        per_window: list[list] = [[] for _ in group]
        for seg in segments:
            # whisper's times are on a 20 ms grid: a segment can start a little before its window
            # does, so it belongs to the window holding its middle
            mid = (float(seg.start) + float(seg.end)) / 2.0
            k = min(keep, key=lambda i: 0.0 if stamps[i]["start"] <= mid <= stamps[i]["end"]
                    else min(abs(mid - stamps[i]["start"]), abs(mid - stamps[i]["end"])))
            per_window[k].append(_Shifted(seg, -stamps[k]["start"]))
        for k in keep:
            _fill(plan, group[k], results[k], per_window[k], info)
        return results

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
                group = clips[g : g + per_call]
                foreign = self._foreign(audio, group)
                done = self._batch_group(audio, [c for c, f in zip(group, foreign) if f is None])
                yield _merge_in_order(group, foreign, done)
            return
        if self.identifier is None:
            for c in clips:
                yield [self._transcribe_clip(audio, c)]
            return
        schedule = LanguageSchedule()
        for window in _windows(clips):
            if schedule.next_window():
                foreign, done = self._identified_and_transcribed(audio, window, schedule)
                for c, f, t in zip(window, foreign, done):
                    yield [f if f is not None else self._relabelled(c, t)]
                continue
            done = [self._transcribe_clip(audio, c) for c in window]
            for t in done:  # a settled video: the language its identified windows were heard in
                t.language, t.language_probability = self.identifier.target, round(schedule.settled_probability, 4)
            if schedule.suspect([s.avg_logprob for t in done for s in t.segments]):
                foreign = self._foreign(audio, window, schedule)
                done = [f if f is not None else self._relabelled(c, t) for c, f, t in zip(window, foreign, done)]
            for t in done:
                yield [t]

    def _identified_and_transcribed(self, audio: _Audio, window: list[_Clip], schedule: LanguageSchedule
                                    ) -> tuple[list[Optional[RegionTranscript]], list[RegionTranscript]]:
        """A window's language check (`_foreign`) on a helper thread while this one transcribes its
        clips: at a video's start both are on the path to its first utterance, and the second core
        would wait. The same results as one after the other (the clips' languages are set from the
        check once it is done); a clip the check finds foreign was transcribed for nothing (rare)."""
        check = self._helper_pool().submit(self._foreign, audio, window, schedule)
        try:
            done = [self._transcribe_clip(audio, c) for c in window]
        finally:
            foreign = check.result()  # its error, if any, is the window's
        return foreign, done

    def _helper_pool(self):
        """The language check's thread (one: checks run in the order they are asked for)."""
        if self._helper is None:
            from concurrent.futures import ThreadPoolExecutor

            self._helper = ThreadPoolExecutor(1, thread_name_prefix="mikupal-language-id")
        return self._helper

    def _foreign(self, audio: _Audio, clips: list[_Clip], schedule: Optional[LanguageSchedule] = None) -> list[Optional[RegionTranscript]]:
        """For each clip: None when it is to be transcribed, else its `mismatch` transcript (no
        words: its language is not the one the model transcribes in)."""
        if self.identifier is None:
            return [None] * len(clips)
        guesses = self.identifier.identify_clips([audio.read(c.start, c.end) for c in clips])
        if schedule is not None:
            schedule.record(guesses, self.identifier.target)
        self._guesses = {(c.start, c.end): g for c, g in zip(clips, guesses)}
        return [self._mismatch(c, g) for c, g in zip(clips, guesses)]

    def _mismatch(self, c: _Clip, g: LanguageGuess) -> Optional[RegionTranscript]:
        """The clip's `mismatch` transcript when the check heard another language in it, else None."""
        if not g.language or not is_mismatch(g, self.cfg.language_id_min_probability):
            return None
        why = (f"{self.identifier.name} hears {g.language} (p={g.probability:.2f}; {self.identifier.target} "
               f"p={g.target_probability:.2f}): model {self.cfg.model} transcribes {self.identifier.target} only")
        return RegionTranscript(region_index=c.region_index, start=c.start, end=c.end, language=g.language,
                                language_probability=round(g.probability, 4), mismatch=why)

    def _iter_checked(self, audio: _Audio, clips: list[_Clip], check: CallLanguageCheck, source: int) -> Iterator[list[RegionTranscript]]:
        """A short video's clips transcribed alone (its text does not depend on its neighbours),
        with the language its call's check (`CallLanguageCheck`) heard in the video: a foreign
        video's clips get their `mismatch` transcripts. The clips are transcribed before the guess
        is waited for, so the check runs beside the first video's transcription (a video found
        foreign was transcribed for nothing: rare)."""
        if self.pipeline is not None:
            done = self._batch_group(audio, clips)
        else:
            done = [self._transcribe_clip(audio, c) for c in clips]
        g = check.guess(source, [[s.avg_logprob for s in t.segments] for t in done])
        for c, t in zip(clips, done):
            yield [self._mismatch(c, g) or _heard(t, self.identifier.target, g)]

    def _relabelled(self, clip: _Clip, out: RegionTranscript) -> RegionTranscript:
        """A transcript made before its window was identified, with the identified language."""
        self._identified(clip, out)
        return out

    def _identified(self, clip: _Clip, out: RegionTranscript) -> None:
        """The language a checked clip was identified in replaces the model's own claim (an
        English-only model always says en, p=1)."""
        g = self._guesses.get((clip.start, clip.end))
        if g is not None:
            _heard(out, self.identifier.target, g)

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
        self._identified(clip, out)
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
        for c, r in zip(group, results):
            r.language = info.language or ""
            r.language_probability = float(info.language_probability or 0.0)
            self._identified(c, r)
            _monotonic(r)
        return results


@dataclass
class Source:
    """One video of a call: its 16 kHz audio, the regions to transcribe and its duration (None:
    unknown, never packed)."""

    audio: AudioSource
    regions: Sequence[SpeechRegion]
    duration: Optional[float] = None


@dataclass
class CallPlan:
    """Every clip of a call's packed videos and the windows they are transcribed in."""

    audios: list[_Audio]
    clips: list[list[_Clip]]
    windows: list[Window]
    #: (source, clip index) -> the language the check heard it in (target, its probability)
    heard: dict[tuple[int, int], tuple[str, float]] = field(default_factory=dict)
    #: source -> what the check heard in a video it let through
    checked: dict[int, Heard] = field(default_factory=dict)
    #: which of the call's windows the language check identifies (`LanguageSchedule`)
    schedule: LanguageSchedule = field(default_factory=LanguageSchedule)

    def clip(self, p: Placed) -> _Clip:
        return self.clips[p.source][p.index]

    def video_clips(self, window: Window, source: int) -> list[np.ndarray]:
        """The audio of one video's clips in a window (a packed video's clips all lie in one)."""
        return [self.audios[source].read(self.clip(p).start, self.clip(p).end) for p in window.placed if p.source == source]

    def window_audio(self, window: Window) -> np.ndarray:
        parts = []
        for k, p in enumerate(window.placed):
            if k:
                parts.append(np.zeros(int(round((p.offset - window.placed[k - 1].end) * SAMPLE_RATE)), np.float32))
            c = self.clip(p)
            parts.append(self.audios[p.source].read(c.start, c.end))
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def empty(self, window: Window) -> dict[tuple[int, int], RegionTranscript]:
        return {(p.source, p.index): RegionTranscript(region_index=self.clip(p).region_index, start=self.clip(p).start,
                                                      end=self.clip(p).end) for p in window.placed}


class SharedTranscription:
    """A call's transcription, read video by video: `for_source(i)` yields video i's transcripts as
    the windows holding its clips are done (windows run in the order of the videos, so a video's
    neighbours' clips are kept until their turn); a video that is not packed is transcribed alone
    at its turn. A window that fails fails every video in it."""

    def __init__(self, windows: Iterator[list[tuple[int, RegionTranscript]]], clips_per_source: list[int],
                 alone: Optional[dict] = None):
        self._windows = windows
        self._left = list(clips_per_source)
        self._alone = alone or {}
        self._ready: dict[int, list[list[RegionTranscript]]] = {i: [] for i in range(len(clips_per_source))}
        self._error: Optional[BaseException] = None

    def for_source(self, i: int) -> Iterator[list[RegionTranscript]]:
        if i in self._alone:
            yield from self._alone[i]()
            return
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


def _fill(plan: CallPlan, window: Window, results: dict, segments: list, info) -> None:
    """Give each clip of a window its part of whisper's segments (times in window seconds): a word
    belongs to the clip its middle falls in; a segment whose words fall in two clips becomes one
    segment per clip, with its scores and the text of its own words."""
    for s in segments:
        words = list(s.words or [])
        owners = [window.locate((float(w.start) + float(w.end)) / 2.0) for w in words]
        mine = sorted(set(owners)) if words else [window.locate((float(s.start) + float(s.end)) / 2.0)]
        for k in mine:
            p = window.placed[k]
            clip = plan.clip(p)
            part = None if len(mine) == 1 else [w for w, o in zip(words, owners) if o == k]
            results[(p.source, p.index)].segments.append(_segment(s, clip.start - p.offset, clip, part))
    for p in window.placed:
        rt = results[(p.source, p.index)]
        rt.language, rt.language_probability = plan.heard.get((p.source, p.index),
                                                              (info.language or "", float(info.language_probability or 0.0)))
        _monotonic(rt)


def _heard(t: RegionTranscript, target: str, g: LanguageGuess) -> RegionTranscript:
    """The language the check heard replaces an English-only model's own claim (en, p=1)."""
    if g.language:
        t.language, t.language_probability = target, g.target_probability
    return t


def _windows(clips: list[_Clip]) -> list[list[_Clip]]:
    """Clips in the 30 s windows language ID packs them into (see audio/language_id.py)."""
    from .language_id import pack_windows

    return [[clips[i] for i in w] for w in pack_windows([c.end - c.start for c in clips])]


def _merge_in_order(group: list[_Clip], foreign: list[Optional[RegionTranscript]], done: list[RegionTranscript]) -> list[RegionTranscript]:
    """The group's transcripts in clip order: the foreign clips' and the transcribed ones'."""
    it = iter(done)
    return [f if f is not None else next(it) for f in foreign]


def _clamp(t: float, lo: float, hi: float) -> float:
    return float(min(max(t, lo), hi))


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
