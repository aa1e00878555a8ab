"""The same speech twice: a re-upload, a clip cut from a longer video of the same input, a
compilation. Found from the words, their timing and the voice, so a re-encoded, re-scaled or
re-cut copy matches while the same person saying the same words again does not.

Two kept segments are one utterance when

- **words**: at least `min_words` of their normalised words (case, punctuation and accents ignored)
  line up in order (`difflib`), covering at least `min_coverage` of the shorter segment's words;
- **timing**: the matched words keep their spacing: the middle of each word in one segment minus
  the middle in the other is one constant offset, give or take `max_timing_s`, for at least 80% of
  the matched words (a copy replays the same audio; a person repeating a sentence does not hit the
  same 0.2 s grid over several words);
- **voice**: where both have a voice embedding, their cosine is at least `min_voice_similarity`
  (two speakers who say the same line in sync are not one copy).

Which copy is kept is decided by a fixed order, never by which video finished first: the copy whose
source path sorts first, then the earlier in its video (`Utterance.key`). So the same input keeps the
same copy, however the videos were scheduled (`engine/duplicates.py` applies it at commit).
"""

from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np

DUPLICATE_SEGMENT = "duplicate_segment"
IN_STEP_FRACTION = 0.8  # of the matched words that must keep the common offset


@dataclass(frozen=True)
class DuplicateRules:
    min_words: int = 4
    min_coverage: float = 0.8
    max_timing_s: float = 0.2
    min_voice_similarity: float = 0.8


def normalise(word: str) -> str:
    """A word as compared: NFKD without accents, casefolded, punctuation and symbols dropped."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if unicodedata.category(c)[0] in "LN")


@dataclass(frozen=True)
class Utterance:
    """What the check needs of one kept segment (source times)."""

    segment_id: str
    video_id: str
    source: str
    start: float
    end: float
    tokens: tuple[str, ...]
    middles: tuple[float, ...]  # the middle of each token's word, source seconds
    voice: Optional[np.ndarray] = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, float, str]:
        """The order that decides which copy is kept: source path, then start."""
        return (self.source, self.start, self.segment_id)


def utterance(row: Mapping[str, Any]) -> Utterance:
    """From a segment row (`DatasetSegment` fields as a dict)."""
    tokens, middles = [], []
    for w in row.get("words") or []:
        t = normalise(w["word"])
        if t:
            tokens.append(t)
            middles.append((float(w["start"]) + float(w["end"])) / 2.0)
    emb = row.get("speaker_embedding")
    voice = None
    if emb is not None and len(emb):
        v = np.asarray(emb, dtype=np.float64)
        n = float(np.linalg.norm(v))
        voice = v / n if n > 0 else None
    return Utterance(segment_id=row["segment_id"], video_id=row["video_id"], source=str(row["source"]),
                     start=float(row["start"]), end=float(row["end"]), tokens=tuple(tokens), middles=tuple(middles),
                     voice=voice)


@dataclass(frozen=True)
class Match:
    """Evidence that two segments are one utterance."""

    kept: Utterance
    copy: Utterance
    words: int  # matched words
    of: int  # words of the shorter segment
    timing_s: float  # the matched words' spread around their common offset (80th percentile)
    voice: Optional[float]  # cosine of the voices; None without embeddings

    def message(self) -> str:
        k = self.kept
        voice = f", voice similarity {self.voice:.2f}" if self.voice is not None else ""
        return (f"same speech as {k.segment_id} ({k.source} {k.start:.2f}-{k.end:.2f} s): {self.words} of "
                f"{self.of} words in step within {self.timing_s:.2f} s{voice}")


def compare(a: Utterance, b: Utterance, rules: DuplicateRules = DuplicateRules()) -> Optional[Match]:
    """The match of two segments, or None; `kept` is the one first in `Utterance.key` order."""
    if a.segment_id == b.segment_id:
        return None
    shorter = min(len(a.tokens), len(b.tokens))
    if shorter < rules.min_words:
        return None
    blocks = difflib.SequenceMatcher(None, a.tokens, b.tokens, autojunk=False).get_matching_blocks()
    pairs = [(i + k, j + k) for i, j, n in blocks for k in range(n)]
    if len(pairs) < rules.min_words or len(pairs) < rules.min_coverage * shorter:
        return None
    offsets = np.array([a.middles[i] - b.middles[j] for i, j in pairs])
    spread = np.abs(offsets - np.median(offsets))
    timing = float(np.quantile(spread, IN_STEP_FRACTION))
    if timing > rules.max_timing_s:
        return None
    voice = None
    if a.voice is not None and b.voice is not None and a.voice.shape == b.voice.shape:
        voice = float(np.dot(a.voice, b.voice))
        if voice < rules.min_voice_similarity:
            return None
    kept, copy = (a, b) if a.key <= b.key else (b, a)
    return Match(kept=kept, copy=copy, words=len(pairs), of=shorter, timing_s=round(timing, 3),
                 voice=None if voice is None else round(voice, 3))


class DuplicateIndex:
    """Kept segments, found again by any run of three words they hold."""

    def __init__(self, rules: DuplicateRules = DuplicateRules()):
        self.rules = rules
        self.items: dict[str, Utterance] = {}
        self._by_gram: dict[tuple[str, ...], set[str]] = {}

    @staticmethod
    def _grams(u: Utterance) -> set[tuple[str, ...]]:
        return {u.tokens[i:i + 3] for i in range(max(0, len(u.tokens) - 2))}

    def add(self, u: Utterance) -> None:
        self.items[u.segment_id] = u
        for g in self._grams(u):
            self._by_gram.setdefault(g, set()).add(u.segment_id)

    def remove(self, segment_id: str) -> None:
        u = self.items.pop(segment_id, None)
        if u is not None:
            for g in self._grams(u):
                self._by_gram.get(g, set()).discard(segment_id)

    def matches(self, u: Utterance) -> list[Match]:
        """Every indexed segment that is `u` again, in the keep order of the other copy."""
        ids: set[str] = set()
        for g in self._grams(u):
            ids |= self._by_gram.get(g, set())
        found = [m for sid in ids if (m := compare(u, self.items[sid], self.rules)) is not None]
        return sorted(found, key=lambda m: (m.kept.key if m.copy is u else m.copy.key))


def first_copies(rows: Sequence[Utterance], rules: DuplicateRules = DuplicateRules()) -> dict[str, Match]:
    """Within one set of segments: each that repeats one before it in keep order -> its match."""
    index = DuplicateIndex(rules)
    out: dict[str, Match] = {}
    for u in sorted(rows, key=lambda x: x.key):
        found = index.matches(u)
        if found:
            out[u.segment_id] = found[0]
        else:
            index.add(u)
    return out
