"""Short turns: word-bounded stretches of an utterance whose voice is not the rest's.

The change search (`change.py`) compares runs of 1.5 s windows; it needs about 2 s of each voice
and cannot see the first or last ~1.75 s of an utterance. A reply of half a second ("Yes."), a
back-channel ("mm-hm") or the tail of the previous turn left at an edge are shorter than that.
Here each candidate turn is a run of whisper's words, embedded *exactly* (GE2E on its own audio,
nothing of its neighbours), and compared with the voice of the rest of the utterance:

* candidate spans start at a word that may start a turn (the first word, a word after a pause of
  `CUE_GAP` or after punctuation, any word near the end) and end at any later word end, from
  `min_seconds` to `max_seconds` long. One causal GE2E pass per start gives every end's embedding
  (`VoiceEncoder.embed_prefixes`), so the test costs a few passes per utterance;
* the rest's voice is the mean of the utterance's 1.5 s speech windows that lie (almost) outside
  the span and hold words (`WORDED_FRACTION`), and the exact embeddings of the words before and
  after it where those passes reach. A stretch without words (a laugh, a sob, a scream) is voiced,
  but it is not the person's speaking voice: measured against it, their own words look like
  another voice (benchmarks/short_turns.md, "Laughter and shouting by the same person");
* a span is a **suspect** when its similarity to the rest is below the doubt threshold for its
  length, and **sure** below the sure threshold (both interpolated over `thresholds`, measured in
  `benchmarks/ge2e_windows.py`: a short stretch of one voice is less like that voice than a long
  one). Words that look like a turn (a question mark before the span, or a pause of `CUE_PAUSE`
  at its edge) raise the doubt threshold by `cue_bonus`;
* suspects do not overlap: the most doubtful first.

The voice alone does not cut at a suspect: a laugh or a shout of the same person sounds unlike
their speech too. The vision stage looks at the faces over the suspect (dense ASD) and cuts when
the face that speaks the rest is seen silent there or another face speaks; where the faces cannot
tell, only a sure suspect is cut (`vision/voice_turns.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..records import VoiceSuspect, VoiceWindows, Word

#: a pause this long (s) before a word lets a turn start there
CUE_GAP = 0.1
#: a pause this long (s) at a span's edge, or a question before it, looks like a turn
CUE_PAUSE = 0.3
#: any word starting this close (s) to the end may start a turn (an edge run of the next speaker)
EDGE_SECONDS = 1.0
#: a 1.5 s window may reach this far (s) into a span and still stand for the rest's voice
WINDOW_SPILL = 0.25
#: the rest must hold at least this much voice (s) to be compared with
MIN_REST_SECONDS = 0.75
#: a 1.5 s window stands for the rest's voice only when words cover this share of it: a laugh, a
#: sob or a shout without words is voiced but is not how the person speaks (benchmarks/short_turns.md)
WORDED_FRACTION = 0.5
PUNCTUATION = tuple(".?!,;:。？！，、")


@dataclass
class TurnRules:
    thresholds: Sequence[Sequence[float]]  # (seconds, doubt, sure) rows, by increasing seconds
    min_seconds: float = 0.4
    max_seconds: float = 2.5
    cue_bonus: float = 0.05

    def limits(self, seconds: float) -> tuple[float, float]:
        """(doubt, sure) similarity thresholds for a span of `seconds` (linear between rows, flat beyond)."""
        rows = sorted(self.thresholds)
        xs = [r[0] for r in rows]
        return float(np.interp(seconds, xs, [r[1] for r in rows])), float(np.interp(seconds, xs, [r[2] for r in rows]))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(1e-12, float(np.linalg.norm(v)))


def word_coverage(windows: VoiceWindows, words: Sequence[Word]) -> np.ndarray:
    """The share of each window (source seconds) that whisper's words cover."""
    st, en = np.asarray(windows.starts, dtype=np.float64), np.asarray(windows.ends, dtype=np.float64)
    covered = np.zeros(len(st))
    for w in words:
        covered += np.clip(np.minimum(en, w.end) - np.maximum(st, w.start), 0.0, None)
    return covered / np.maximum(en - st, 1e-9)


def turn_starts(words: Sequence[Word], edge_seconds: float = EDGE_SECONDS) -> list[int]:
    """Indices of the words that may start a turn (see the module docstring)."""
    if not words:
        return []
    end = words[-1].end
    out = [0]
    for k in range(1, len(words)):
        gap = words[k].start - words[k - 1].end
        if gap >= CUE_GAP or words[k - 1].word.strip().endswith(PUNCTUATION) or end - words[k].start <= edge_seconds:
            out.append(k)
    return out


def _cue(words: Sequence[Word], i: int, j: int) -> bool:
    """The words around span [i, j] look like a turn: a question just before it, or a long pause at an edge."""
    before = words[i - 1] if i > 0 else None
    after = words[j + 1] if j + 1 < len(words) else None
    if before is not None and (before.word.strip().endswith(("?", "？")) or words[i].start - before.end >= CUE_PAUSE):
        return True
    return after is not None and after.start - words[j].end >= CUE_PAUSE


@dataclass
class _Pass:
    """A prefix pass: `emb[t]` embeds mel frames `frame0 .. frame0 + t` (frames from the utterance's start)."""

    frame0: int
    emb: np.ndarray

    def at(self, last_frame: int) -> Optional[np.ndarray]:
        t = last_frame - self.frame0
        return self.emb[t].astype(np.float64) if 0 <= t < len(self.emb) else None


class _Voice:
    """One utterance as the test reads it: its words, loud 10 ms frames, speech windows and passes."""

    def __init__(self, words: Sequence[Word], loud: np.ndarray, windows: VoiceWindows, passes: dict[int, _Pass], t0: float):
        worded = word_coverage(windows, words) >= WORDED_FRACTION
        keep = [i for i, s in enumerate(windows.speech) if s and worded[i]]
        self.starts = np.asarray([windows.starts[i] for i in keep], dtype=np.float64)
        self.ends = np.asarray([windows.ends[i] for i in keep], dtype=np.float64)
        self.emb = _rows(windows.embeddings, keep)
        self.words, self.passes, self.t0 = words, passes, t0
        self.loud = np.asarray(loud, dtype=bool)
        self.cum = np.concatenate([[0], np.cumsum(self.loud)])

    def frame(self, t: float) -> int:
        return int(np.clip(round((t - self.t0) * 100), 0, len(self.loud)))

    def voiced(self, i: int, j: int) -> tuple[float, int]:
        """(loud seconds of words[i..j], the last loud frame in them, or -1)."""
        a, b = self.frame(self.words[i].start), self.frame(self.words[j].end)
        on = np.flatnonzero(self.loud[a:b])
        return (self.cum[b] - self.cum[a]) / 100.0, (a + int(on[-1]) if len(on) else -1)

    def exact(self, i: int, j: int) -> Optional[np.ndarray]:
        """Embedding of words[i..j] (to their last loud frame), from the pass that starts at word i."""
        p = self.passes.get(i)
        seconds, last = self.voiced(i, j)
        return p.at(last) if p is not None and last >= 0 and seconds > 0 else None

    def rest(self, i: int, j: int) -> Optional[np.ndarray]:
        """The voice of the utterance but words[i..j]: its speech windows (almost) outside them, and
        where those are too few, the words before and after, embedded exactly."""
        a, b = self.words[i].start, self.words[j].end
        inside = np.minimum(self.ends, b) - np.maximum(self.starts, a)
        outside = self.emb[inside <= WINDOW_SPILL]
        parts = [outside] if len(outside) else []
        seconds = 1.5 * len(outside)
        if len(outside) < 2:
            for lo, hi in ((0, i - 1), (j + 1, len(self.words) - 1)):
                e = self.exact(lo, hi) if hi >= lo else None
                if e is not None and self.voiced(lo, hi)[0] >= 0.4:
                    parts.append(e[None])
                    seconds += self.voiced(lo, hi)[0]
        if not parts or seconds < MIN_REST_SECONDS:
            return None
        return _unit(np.concatenate(parts).mean(axis=0))


def find_short_turns(v: _Voice, rules: TurnRules) -> list[VoiceSuspect]:
    """The suspects of one utterance (see the module docstring)."""
    words = v.words
    found: list[tuple[float, VoiceSuspect]] = []
    for i in sorted(v.passes):
        for j in range(i, len(words)):
            if words[j].end - words[i].start > rules.max_seconds:
                break
            seconds, _ = v.voiced(i, j)
            if seconds < rules.min_seconds or (i == 0 and j == len(words) - 1):
                continue
            emb, voice = v.exact(i, j), v.rest(i, j)
            if emb is None or voice is None:
                continue
            sim = float(emb @ voice)
            doubt, sure = rules.limits(seconds)
            limit = doubt + (rules.cue_bonus if _cue(words, i, j) else 0.0)
            if sim < limit:
                found.append((limit - sim, VoiceSuspect(start=words[i].start, end=words[j].end, similarity=round(sim, 4),
                                                        doubt=round(limit, 4), sure=sim < sure, words=j - i + 1)))
    chosen: list[VoiceSuspect] = []
    for _, s in sorted(found, key=lambda x: -x[0]):
        if all(s.end <= c.start or s.start >= c.end for c in chosen):
            chosen.append(s)
    return sorted(chosen, key=lambda s: s.start)


def short_turns(encoder, frames, windows: VoiceWindows, words: Sequence[Word], t0: float, rules: TurnRules,
                edge_seconds: float = EDGE_SECONDS) -> list[VoiceSuspect]:
    """The suspects of one utterance whose audio began at source second `t0`: `frames` is its
    `VoiceFrames`, `windows` its 1.5 s windows (source seconds), `encoder` a `VoiceEncoder`. Each
    pass starts at its word's first loud frame and runs at most `max_seconds` or to the end."""
    starts = turn_starts(words, edge_seconds)
    if len(words) < 2:
        return []
    v = _Voice(words, frames.loud, windows, {}, t0)
    first, length = [], []
    for k in starts:
        a, b = v.frame(words[k].start), v.frame(words[k].end)
        on = np.flatnonzero(v.loud[a:b])
        first.append(a + int(on[0]) if len(on) else a)
        length.append(min(int(round(rules.max_seconds * 100)) + 1, len(v.loud) - first[-1]))
    for group in _by_length(length):  # passes of similar length batched: the cost is the frames run
        out = encoder.embed_prefixes(frames, np.asarray([first[g] for g in group]), max(length[g] for g in group))
        for g, emb in zip(group, out):
            v.passes[starts[g]] = _Pass(first[g], emb[: length[g]])
    return find_short_turns(v, rules)


def _by_length(length: list[int], ratio: float = 1.5) -> list[list[int]]:
    """Indices grouped so that each group's longest is at most `ratio` times its shortest."""
    order = sorted(range(len(length)), key=lambda i: length[i])
    groups: list[list[int]] = []
    for i in order:
        if groups and length[i] <= ratio * max(1, length[groups[-1][0]]):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _rows(embeddings: Sequence[Sequence[float]], keep: Sequence[int]) -> np.ndarray:
    """The kept windows' embeddings as rows: (0, dim) when none is kept (a short utterance whose
    windows are all silence or wordless), which `reshape(0, -1)` cannot give."""
    dim = len(embeddings[0]) if len(embeddings) else 0
    if not keep:
        return np.zeros((0, dim), dtype=np.float64)
    return np.asarray([embeddings[i] for i in keep], dtype=np.float64).reshape(len(keep), dim)


def question_then_reply(words: Sequence[Word]) -> bool:
    """A question mark inside the utterance with words after it: the words look like an exchange."""
    return any(w.word.strip().endswith(("?", "？")) for w in words[:-1])


def stretch_similarity(encoder, audio: np.ndarray, a: float, b: float, windows: Optional[VoiceWindows], t0: float,
                       rate: int = 16000) -> Optional[float]:
    """Similarity of the voice of audio[a, b) (seconds from its start, source second `t0`) to the
    mean of the utterance's speech `windows` that lie (almost) outside it; None when no window does
    or [a, b) holds too little voice (`MIN_REST_SECONDS` of windows, 0.3 s of voice)."""
    if windows is None or not windows.embeddings:
        return None
    keep = [i for i, s in enumerate(windows.speech) if s]
    st = np.asarray([windows.starts[i] for i in keep], dtype=np.float64) - t0
    en = np.asarray([windows.ends[i] for i in keep], dtype=np.float64) - t0
    emb = _rows(windows.embeddings, keep)
    outside = emb[np.minimum(en, b) - np.maximum(st, a) <= WINDOW_SPILL]
    piece = np.asarray(audio[int(a * rate) : int(b * rate)], dtype=np.float32)
    if 1.5 * len(outside) < MIN_REST_SECONDS or len(piece) < 0.3 * rate:
        return None
    vf = encoder.analyse(piece)
    on = np.flatnonzero(vf.loud)
    if len(on) < 30:
        return None
    e = encoder.embed_prefixes(vf, np.asarray([on[0]]), int(on[-1] - on[0] + 1))[0, -1]
    return float(e.astype(np.float64) @ _unit(outside.mean(axis=0)))
