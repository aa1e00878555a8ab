"""Which language is spoken, when the ASR model cannot say: a multilingual whisper's language ID.

An English-only whisper (`*.en`) has no language token: it transcribes any speech as English and
invents an English text for Mandarin or Hindi ("Okay, even, I'm gonna kind of work on my eye out.").
Its own scores do not give it away reliably, so a small multilingual whisper (`asr.language_id_model`,
`base` by default) identifies the language first, and the clips that are not in the ASR model's
language are rejected (`language_mismatch`) instead of transcribed.

Whisper's language ID reads a padded 30 s window whatever the speech's length, so short clips are
packed into windows of up to 30 s of speech (consecutive clips, in time order) and identified
together: a monologue's 250 s of speech costs about 9 windows, not one per clip. A window whose
guess is not confident (`CONFIDENT`) may mix languages (a video switching language inside it): its
clips are then identified one by one.

Once `SETTLED_AFTER` windows in a row are confidently the model's language, `LanguageSchedule` skips
identification for most later windows (every `RECHECK_EVERY`th is still identified first), and a
skipped window is identified after all when its transcript looks invented (mean avg_logprob under
`SUSPECT_LOGPROB`: tiny.en's English for Mandarin scored -0.98, real English -0.2 to -0.5). A long
English video then pays for a few windows instead of all of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import UserError
from ..models_dir import is_offline, whisper_model

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
WINDOW_SECONDS = 30.0  # whisper's window: the most speech one identification reads
#: a packed window's guess at least this probable holds for all its clips; below it, each clip is identified alone
CONFIDENT = 0.9
#: windows in a row confidently in the model's language before identification is skipped
SETTLED_AFTER = 2
#: a settled video still has every this-many-th window identified before it is transcribed
RECHECK_EVERY = 4
#: a skipped window whose transcript's mean avg_logprob is under this is identified after all
SUSPECT_LOGPROB = -0.6


@dataclass(frozen=True)
class LanguageGuess:
    language: str  # ISO code of the most likely language
    probability: float  # its probability
    target_probability: float  # the probability of the ASR model's own language


@dataclass(frozen=True)
class Heard:
    """What the check heard in a video, and whether it is a shared window's guess (then `recheck`
    may identify the video alone)."""

    guess: LanguageGuess
    shared: bool = False


def pack_windows(durations: Sequence[float], window_seconds: float = WINDOW_SECONDS) -> list[list[int]]:
    """Consecutive clip indices packed into windows of at most `window_seconds` of audio (a clip
    longer than that is a window of its own)."""
    windows: list[list[int]] = []
    total = 0.0
    for i, d in enumerate(durations):
        if windows and total + d <= window_seconds + 1e-9:
            windows[-1].append(i)
            total += d
        else:
            windows.append([i])
            total = d
    return windows


def is_mismatch(guess: LanguageGuess, min_target_probability: float) -> bool:
    """Not the ASR model's language: another language is the most likely one, and the model's own
    language is less likely than `min_target_probability` (accented speech keeps some of it)."""
    return guess.target_probability < min_target_probability and guess.probability > guess.target_probability


class LanguageSchedule:
    """Which windows of one file to identify before transcribing (see the module docstring)."""

    def __init__(self) -> None:
        self.settled_run = 0  # confident windows in a row
        self.index = -1
        self.settled_probability = 0.0  # the model's language's probability in the last identified window

    def next_window(self) -> bool:
        """Move to the next window: True when it must be identified before it is transcribed."""
        self.index += 1
        return self.settled_run < SETTLED_AFTER or self.index % RECHECK_EVERY == 0

    def record(self, guesses: Sequence[LanguageGuess], target: str) -> None:
        confident = bool(guesses) and all(g.language == target and g.probability >= CONFIDENT for g in guesses)
        self.settled_run = self.settled_run + 1 if confident else 0
        if guesses:
            self.settled_probability = min(g.target_probability for g in guesses)

    @staticmethod
    def suspect(avg_logprobs: Sequence[float]) -> bool:
        """A skipped window's transcript that may be invented: identify it after all."""
        return bool(avg_logprobs) and sum(avg_logprobs) / len(avg_logprobs) < SUSPECT_LOGPROB


class LanguageIdentifier:
    """A multilingual whisper, loaded once, used only for its language ID."""

    def __init__(self, name: str, models_dir: str | Path, target: str, offline: bool = False,
                 device: str = "auto", compute_type: str = "default", threads: int = 0):
        self.name, self.target = name, target
        self.models_dir, self.offline = Path(models_dir), offline
        self.device, self.compute_type, self.threads = device, compute_type, threads
        self.model = None

    def load(self) -> None:
        if self.model is not None:
            return
        from faster_whisper import WhisperModel

        ref = whisper_model(self.models_dir, self.name, self.offline)
        try:
            self.model = WhisperModel(ref, device=self.device, compute_type=self.compute_type, cpu_threads=int(self.threads or 0),
                                      local_files_only=is_offline(self.offline) or Path(ref).is_dir())
        except Exception as e:  # noqa: BLE001 - a model that will not load is a user problem
            raise UserError(f"language ID model {self.name} could not be loaded ({ref}): {type(e).__name__}: {e}") from None
        if not self.model.model.is_multilingual:
            raise UserError(f"asr.language_id_model={self.name} is English-only: language ID needs a multilingual whisper (e.g. base)")

    def identify(self, audio16k: np.ndarray) -> LanguageGuess:
        """The language of up to 30 s of 16 kHz speech."""
        self.load()
        language, probability, ranked = self.model.detect_language(audio16k)
        target = next((p for code, p in ranked if code == self.target), 0.0)
        return LanguageGuess(language, float(probability), float(target))

    def identify_clips(self, clips: Sequence[np.ndarray]) -> list[LanguageGuess]:
        """One guess per clip: clips packed into 30 s windows, each window identified once."""
        guesses: list[LanguageGuess] = []
        for window in pack_windows([len(c) / SAMPLE_RATE for c in clips]):
            guesses.extend(self.identify_window([clips[i] for i in window]))
        return guesses

    def identify_window(self, clips: Sequence[np.ndarray]) -> list[LanguageGuess]:
        """One guess per clip of a window (clips of at most 30 s together): the window's guess when
        it is confident or holds one clip, else each clip's own (the window may mix languages)."""
        guess = self.identify(_joined(clips))
        if len(clips) > 1 and guess.probability < CONFIDENT:
            return [self.identify(c.astype(np.float32, copy=False)) for c in clips]
        return [guess] * len(clips)

    def identify_across(self, videos: Sequence[Sequence[np.ndarray]]) -> list[Heard]:
        """One `Heard` per video of a window holding several videos' clips (`CallLanguageCheck`,
        packed whisper windows): the window's guess holds for them only when it is confidently the
        target language, else each video is identified alone (its clips together)."""
        guess = self.identify(_joined([c for v in videos for c in v]))
        if len(videos) == 1:
            return [Heard(guess)]
        if guess.language == self.target and guess.probability >= CONFIDENT:
            return [Heard(guess, True)] * len(videos)
        return [Heard(self.identify(_joined(v))) for v in videos]

    def identify_scheduled(self, videos: Sequence[Sequence[np.ndarray]], schedule: LanguageSchedule) -> list[Heard]:
        """`identify_across` for the next window of a call, or, once the call's windows are settled
        in the target language (`LanguageSchedule`), nothing for most windows: their videos are let
        through as the settled windows were (shared: `recheck` still identifies a video whose text
        looks invented)."""
        if not schedule.next_window():
            p = schedule.settled_probability
            return [Heard(LanguageGuess(self.target, p, p), True)] * len(videos)
        heard = self.identify_across(videos)
        schedule.record([h.guess for h in heard], self.target)
        return heard

    def recheck(self, video: Callable[[], Sequence[np.ndarray]], heard: Heard, clip_logprobs: Sequence[Sequence[float]]) -> LanguageGuess:
        """A video's guess, identified alone (its clips' audio, `video()`, read only then) when a
        shared window let it through and a clip's transcript looks invented
        (`LanguageSchedule.suspect`: the mean avg_logprob of its segments)."""
        if heard.shared and any(LanguageSchedule.suspect(lp) for lp in clip_logprobs):
            return self.identify(_joined(video()))
        return heard.guess


def _joined(clips: Sequence[np.ndarray]) -> np.ndarray:
    """Clips one after another, at most a window of them, as whisper's input."""
    return np.concatenate(list(clips))[: int(WINDOW_SECONDS * SAMPLE_RATE)].astype(np.float32, copy=False)


class CallLanguageCheck:
    """The language check of a stage call's short videos, read together: the videos, in the call's
    order, are packed whole into 30 s windows (`pack_windows` over each video's clips together) and
    each window is identified once, on `executor`'s thread, while the caller transcribes. A short
    video alone would cost a whole padded window of the identifying model (base: ~0.8 CPU s for a
    4 s clip, more than tiny.en's transcription of it).

    Videos of a corpus may differ in language, so a window's guess holds for its videos only when it
    is confidently the model's own language; otherwise each video is identified alone, its clips
    together as before (a window of two English videos and 6 s of Spanish was heard as Spanish,
    p=0.92: the English would have been rejected). A short foreign video can hide in an English
    window (1.5 s of Spanish in 25 s of English: English, p=0.95-0.99), so a video with a clip whose
    transcript looks invented (`suspect`) is identified alone after all (`recheck`):
    tiny.en's English for 1.5-3 s of Spanish or German scored -0.89 to -1.8, real English clips -0.1
    to -0.83. A video is identified whole, never clip by clip: 1.4 s of Mandarin alone was heard as
    German (p=0.28; English 0.26, kept), its video's 3.6 s as Mandarin (p=0.99). Once the call's
    windows are settled in the model's language, most later windows are not identified
    (`LanguageSchedule`, as in one long video): their videos are let through, and rechecked, as a
    settled window's are. The guesses of a video depend on its call's videos, which the engine keeps
    the same run after run."""

    def __init__(self, identifier: LanguageIdentifier, videos: Sequence[Sequence[np.ndarray]], executor) -> None:
        self._videos = videos
        self._where: dict[int, tuple[int, int]] = {}  # video -> (its window, its place there)
        self._windows = []
        self._identifier = identifier
        windows = pack_windows([sum(len(c) for c in v) / SAMPLE_RATE for v in videos])
        schedule = LanguageSchedule()  # windows run in order on the executor's one thread
        for w, window in enumerate(windows):
            for pos, i in enumerate(window):
                self._where[i] = (w, pos)
            self._windows.append(executor.submit(identifier.identify_scheduled, [videos[i] for i in window], schedule))

    def heard(self, video: int) -> Heard:
        """What the check heard in a video (waiting for its window); an identification error is
        raised for every video its window held."""
        w, pos = self._where[video]
        return self._windows[w].result()[pos]

    def guess(self, video: int, clip_logprobs: Sequence[Sequence[float]]) -> LanguageGuess:
        """A video's guess given its clips' transcripts' segment scores: what its window heard,
        or, when a shared window let it through and a clip's text looks invented, the video
        identified alone (`LanguageIdentifier.recheck`)."""
        return self._identifier.recheck(lambda: self._videos[video], self.heard(video), clip_logprobs)


__all__ = ["CallLanguageCheck", "Heard", "LanguageIdentifier", "LanguageGuess", "LanguageSchedule", "pack_windows", "is_mismatch"]
