"""Conversations with exact ground truth, built from the real single-speaker clips.

Each of ../shared/media/vr_face1-5.mp4 is one person talking. A *script* of turns puts several of
them in one video: side by side (one panel per person, as in a seated talk show) or edited with
shot cuts (the camera on whoever speaks, as in a film). While one person talks, the others are
listeners: a held frame (`still`), or their own video playing with its sound muted (`moving`: lips
that move out of sync with the voice, the hard case for active speaker detection). Two turns may
overlap (both talk at once), gaps between turns may be tight (0.15-0.5 s, which ASR merges), and a
music bed may run under everything.

Because we place every turn, the ground truth is exact: who is audible when (`voiced`, from each
clip's own loud frames), and where each person sits on screen. The benchmark
(`benchmarks/speakers.py`) and the speaker tests score the pipeline's output against it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

SHARED_MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
FPS = 25.0
RATE = 44100
PANEL = 360  # panel side in pixels


@dataclass
class Turn:
    """`person` (1-5: vr_face<person>.mp4) says [clip_start, clip_end) of their clip, `gap` seconds
    after the previous turn ended (negative: overlapping it)."""

    person: int
    clip_start: float = 0.0
    clip_end: Optional[float] = None
    gap: float = 0.3


@dataclass
class Truth:
    duration: float
    persons: list[int]
    layout: str
    turns: list[dict] = field(default_factory=list)  # person, start, end (video seconds)
    voiced: list[dict] = field(default_factory=list)  # person, start, end: when their voice is audible
    panels: dict = field(default_factory=dict)  # person -> [x1, x2] in pixels (side-by-side layout)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1, default=float))

    @classmethod
    def load(cls, path: Path) -> "Truth":
        return cls(**json.loads(path.read_text()))

    # ---------------------------------------------------------------- scoring

    def voiced_by(self, start: float, end: float) -> dict[int, float]:
        """Seconds each person is audible within [start, end)."""
        out: dict[int, float] = {}
        for v in self.voiced:
            d = min(end, v["end"]) - max(start, v["start"])
            if d > 0:
                out[v["person"]] = out.get(v["person"], 0.0) + d
        return out

    def purity(self, start: float, end: float) -> float:
        """Share of the voiced time in [start, end) that belongs to its main person (1.0 when silent)."""
        by = self.voiced_by(start, end)
        total = sum(by.values())
        return max(by.values()) / total if total > 0 else 1.0

    def main_person(self, start: float, end: float) -> Optional[int]:
        by = self.voiced_by(start, end)
        return max(by, key=by.get) if by else None

    def person_at(self, box: list[float]) -> Optional[int]:
        """The person whose panel holds the centre of `box` (side-by-side layout)."""
        cx = (box[0] + box[2]) / 2.0
        for p, (x1, x2) in self.panels.items():
            if x1 <= cx < x2:
                return int(p)
        return None

    def voiced_seconds(self) -> float:
        return float(sum(v["end"] - v["start"] for v in self.voiced))


# ---------------------------------------------------------------- sources


@dataclass
class Person:
    frames: list[np.ndarray]  # BGR PANEL x PANEL at 25 fps
    audio: np.ndarray  # mono float32 at RATE
    voiced: list[tuple[float, float]]  # clip seconds where the voice is audible

    @property
    def duration(self) -> float:
        return min(len(self.frames) / FPS, len(self.audio) / RATE)


def _voiced_intervals(audio: np.ndarray, rate: int, hop_s: float = 0.02, below_peak_db: float = 30.0,
                      min_gap_s: float = 0.2) -> list[tuple[float, float]]:
    """Where a clip's own voice is audible: 20 ms frames within 30 dB of its loud frames, short gaps closed."""
    hop = int(rate * hop_s)
    n = len(audio) // hop
    e = 10 * np.log10(np.mean(audio[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-12)
    on = e > max(-55.0, float(np.percentile(e, 95)) - below_peak_db)
    out: list[list[float]] = []
    for k in np.flatnonzero(on):
        t0, t1 = k * hop_s, (k + 1) * hop_s
        if out and t0 - out[-1][1] <= min_gap_s:
            out[-1][1] = t1
        else:
            out.append([t0, t1])
    return [(a, b) for a, b in out if b - a >= 0.1]


def load_person(person: int, media_dir: Path = SHARED_MEDIA) -> Person:
    import cv2

    from mikupal import media

    path = media_dir / f"vr_face{person}.mp4"
    dur = media.probe(path).duration
    frames = media.decode_video(path, 0.0, dur, FPS).frames
    frames = [cv2.resize(f, (PANEL, PANEL), interpolation=cv2.INTER_AREA) for f in frames]
    audio = media.decode_audio(path, sample_rate=RATE)
    return Person(frames, audio, _voiced_intervals(audio, RATE))


# ---------------------------------------------------------------- building


def _music(n: int, rate: int, seed: int = 7) -> np.ndarray:
    """A synthetic music bed: a chord progression of harmonic tones with a pulse, RMS-normalised."""
    t = np.arange(n) / rate
    chords = [(220.0, 277.2, 329.6), (196.0, 246.9, 293.7), (174.6, 220.0, 261.6), (196.0, 246.9, 329.6)]
    out = np.zeros(n)
    bar = 2.0
    for k, chord in enumerate(chords * int(math.ceil(n / rate / bar / len(chords)) + 1)):
        a, b = int(k * bar * rate), int((k + 1) * bar * rate)
        if a >= n:
            break
        tt = t[a:b]
        for f in chord:
            for h in (1, 2, 3):
                out[a:b] += np.sin(2 * np.pi * f * h * tt) / h
    out *= 0.6 + 0.4 * (np.sin(2 * np.pi * 2.0 * t) > 0)  # a pulse at 120 bpm
    return (out / (np.sqrt(np.mean(out**2)) + 1e-9)).astype(np.float32)


def build(
    path: Path,
    script: list[Turn],
    layout: str = "side",
    listener: str = "still",
    music_db: Optional[float] = None,
    lead_in: float = 0.5,
    tail: float = 0.6,
    media_dir: Path = SHARED_MEDIA,
) -> Truth:
    """Write the conversation of `script` to `path` (MP4, 25 fps, AAC) and return its ground truth.

    layout: "side" (one panel per person, left to right in order of first appearance), "cuts"
    (one full panel, cut to whoever starts a turn; overlapping turns keep the earlier speaker) or
    "offscreen" (only the panel of the person who talks longest: the others are voices off screen,
    as in an interview shot over the interviewer's shoulder).
    listener: "still" (held frame) or "moving" (their own video, muted). music_db: a music bed this
    many dB relative to the speech RMS (None: no music).
    """
    from mikupal import media

    persons = list(dict.fromkeys(t.person for t in script))
    src = {p: load_person(p, media_dir) for p in persons}
    # place the turns on the timeline
    placed = []  # (person, video start, clip start, clip end)
    t = lead_in
    for i, turn in enumerate(script):
        p = src[turn.person]
        c0, c1 = turn.clip_start, min(turn.clip_end if turn.clip_end is not None else p.duration, p.duration)
        start = t + (turn.gap if i else 0.0)
        placed.append((turn.person, max(0.0, start), c0, c1))
        t = max(t, start + (c1 - c0))
    duration = t + tail
    n_frames = int(math.ceil(duration * FPS))
    n_samples = int(round(duration * RATE))
    audio = np.zeros(n_samples, dtype=np.float32)
    truth = Truth(duration=duration, persons=persons, layout=layout)
    # who is on screen when, and which of their frames they show
    show: dict[int, list[Optional[int]]] = {p: [None] * n_frames for p in persons}
    speaking_frames: dict[int, np.ndarray] = {p: np.zeros(n_frames, bool) for p in persons}
    for person, start, c0, c1 in placed:
        p = src[person]
        a = int(round(start * RATE))
        piece = p.audio[int(round(c0 * RATE)) : int(round(c1 * RATE))]
        audio[a : a + len(piece)] += piece[: max(0, n_samples - a)]
        truth.turns.append({"person": person, "start": start, "end": start + (c1 - c0)})
        for v0, v1 in p.voiced:
            lo, hi = max(v0, c0), min(v1, c1)
            if hi > lo:
                truth.voiced.append({"person": person, "start": start + lo - c0, "end": start + hi - c0})
        f0 = int(round(start * FPS))
        for k in range(int(round((c1 - c0) * FPS))):
            if f0 + k < n_frames:
                show[person][f0 + k] = min(len(p.frames) - 1, int(round(c0 * FPS)) + k)
                speaking_frames[person][f0 + k] = True
    # listeners: a held frame, or their own video running on (muted)
    for person in persons:
        p, seq = src[person], show[person]
        last = 0
        for k in range(n_frames):
            if seq[k] is not None:
                last = seq[k]
            elif listener == "moving":
                seq[k] = k % len(p.frames)
            else:
                seq[k] = last
    if music_db is not None:
        speech_rms = float(np.sqrt(np.mean(audio[audio != 0] ** 2))) if np.any(audio) else 0.05
        audio += _music(n_samples, RATE) * speech_rms * (10 ** (music_db / 20.0))
    peak = float(np.max(np.abs(audio))) or 1.0
    if peak > 0.99:
        audio *= 0.99 / peak
    frames = []
    if layout == "side":
        for i, person in enumerate(persons):
            truth.panels[str(person)] = [i * PANEL, (i + 1) * PANEL]
        for k in range(n_frames):
            frames.append(np.concatenate([src[p].frames[show[p][k]] for p in persons], axis=1))
    elif layout == "offscreen":
        talker = max(persons, key=lambda p: sum(t["end"] - t["start"] for t in truth.turns if t["person"] == p))
        truth.panels[str(talker)] = [0, PANEL]
        frames = [src[talker].frames[show[talker][k]] for k in range(n_frames)]
    else:
        current = persons[0]
        for k in range(n_frames):
            talking = [p for p in persons if speaking_frames[p][k]]
            if talking and current not in talking:
                current = talking[0]
            frames.append(src[current].frames[show[current][k]])
    truth.voiced.sort(key=lambda v: v["start"])
    media.write_clip(path, frames, FPS, audio, RATE, crf=20)
    truth.save(path.with_suffix(".json"))
    return Truth.load(path.with_suffix(".json"))  # plain Python numbers, as a later load gives


# ---------------------------------------------------------------- the constructed set

#: short stretches of the clips (clip seconds, cut in their pauses) and what whisper hears there
PIECES = {
    "weakness": (1, 0.0, 2.45),  # "My biggest weaknesses is asking for help when I need it."
    "better": (1, 3.06, 4.62),  # "I'd like to do better at that."
    "heart": (2, 0.15, 2.12),  # "In the heart of my California congressional district,"
    "dreams": (2, 2.6, 4.0),  # "where I chase my own dreams"
    "growing_up": (2, 4.4, 5.0),  # "Growing up." (0.6 s)
    "everyone": (3, 0.0, 3.17),  # "Everyone here today endeavoring towards a better"
    "future": (3, 3.9, 4.55),  # "future." (0.65 s)
    "sign": (4, 0.0, 0.82),  # "Sign element." (0.8 s)
    "bank": (4, 1.12, 2.88),  # "It represents the European Central Bank."
    "symbolizes": (4, 2.9, 4.25),  # "And it symbolizes"
    "reforms": (5, 0.0, 2.74),  # "Bringing in reforms to tighten that regulation."
    "crisis": (5, 3.65, 4.897),  # "And this latest crisis."
}


def piece(name: str, gap: float = 0.25) -> Turn:
    person, a, b = PIECES[name]
    return Turn(person, a, b, gap)


#: conversations whose turns are 0.5-2 s: a reply at either edge of an utterance, a back-channel
#: inside one, a fast exchange; "side" (both faces on screen) or "offscreen" (one face, the other
#: person a voice off screen)
SHORT_TURNS = {
    "reply_at_end": [piece("weakness", 0), piece("better", 0.5), piece("growing_up", 0.2)],
    "reply_at_start": [piece("future", 0), piece("bank", 0.2), piece("symbolizes", 0.1)],
    "backchannel": [piece("reforms", 0), piece("sign", 0.25), piece("crisis", 0.25)],
    "fast_exchange": [piece("better", 0), piece("sign", 0.2), piece("weakness", 0.2), piece("bank", 0.25),
                      piece("growing_up", 0.4), piece("heart", 0.2)],
}


def short_turn_set(out_dir: Path, layouts: tuple[str, ...] = ("side", "offscreen"), media_dir: Path = SHARED_MEDIA,
                   names: Optional[list[str]] = None) -> dict[str, Truth]:
    """The SHORT_TURNS conversations in each layout, as (video, truth.json) pairs in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    truths = {}
    for name in names or list(SHORT_TURNS):
        for layout in layouts:
            video = out_dir / f"{name}_{layout}.mp4"
            if video.is_file() and video.with_suffix(".json").is_file():
                truths[video.stem] = Truth.load(video.with_suffix(".json"))
            else:
                truths[video.stem] = build(video, SHORT_TURNS[name], layout=layout, media_dir=media_dir)
    return truths


def standard_set(out_dir: Path, media_dir: Path = SHARED_MEDIA) -> dict[str, Truth]:
    """The cases the speaker tests and benchmark share, each a (video, truth.json) pair in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cases = {
        # two people, alternating turns with tight gaps (ASR merges them into one utterance)
        "duo_tight": dict(script=[Turn(1, gap=0), Turn(4, gap=0.2), Turn(1, gap=0.3), Turn(4, gap=0.15)]),
        # the same, the listener's own video running (lips out of sync with the voice)
        "duo_moving_listener": dict(script=[Turn(2, gap=0), Turn(3, gap=0.25), Turn(2, gap=0.4)], listener="moving"),
        # three people round robin
        "trio_round_robin": dict(script=[Turn(1, gap=0), Turn(3, gap=0.3), Turn(5, gap=0.2), Turn(1, gap=0.5)]),
        # both talking at once for ~2 s in the middle
        "duo_overlap": dict(script=[Turn(4, gap=0), Turn(5, gap=-2.0), Turn(4, gap=0.4)]),
        # edited film style: the camera cuts to whoever talks
        "duo_cuts": dict(script=[Turn(2, gap=0), Turn(5, gap=0.3), Turn(2, gap=0.25)], layout="cuts"),
        # a music bed under a two-person talk
        "duo_music": dict(script=[Turn(3, gap=0), Turn(1, gap=0.3), Turn(3, gap=0.3)], music_db=-12.0),
        # one person, several turns with pauses: one speaker id expected
        "solo": dict(script=[Turn(4, gap=0), Turn(4, gap=0.8), Turn(4, gap=0.6)]),
    }
    truths = {}
    for name, kw in cases.items():
        video = out_dir / f"{name}.mp4"
        if video.is_file() and video.with_suffix(".json").is_file():
            truths[name] = Truth.load(video.with_suffix(".json"))
        else:
            truths[name] = build(video, media_dir=media_dir, **kw)
    return truths
