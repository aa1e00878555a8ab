"""Cut one utterance where its speaker changes, at word boundaries, and account for every stretch.

A pure function shared by the voice check (speaker stage) and the face check (vision stage).
Given the utterance's ASR words, the times where the speaker changes and the stretches to remove
(two voices at once, a face that is not the speaker), it returns the pieces that go on as
utterances and a reject span for everything else:

* a change at time t cuts at the word boundary nearest t, preferring a pause (turns change in
  pauses; a change found from 1.5 s windows is only good to about half a second);
* a removed stretch takes the words whose middle lies in it (`overlapping_speech`, ...);
* a piece too short for the segment rules (`min_seconds`, `min_words`) becomes a reject span
  `speaker_change`: it is the tail of someone else's turn, or too little of one voice.

Reject spans and the stretches that pieces are cut from tile the utterance: each ends where the
next begins, in the middle of the pause between their words (a kept piece keeps `pad_seconds` of
that pause), so every second of speech in it is kept or explained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from ..config import SegmentConfig
from ..records import Reject, SpeechSegment, Word, join_words, segment_id

SPEAKER_CHANGE = "speaker_change"
OVERLAPPING_SPEECH = "overlapping_speech"

#: how far (seconds) from a change time a cut may go to land in a pause
SNAP_SECONDS = 1.0
#: a pause this long (seconds) is worth this much distance: cut in a real pause over a closer run-on
PAUSE_WEIGHT = 1.0


@dataclass
class Removal:
    start: float
    end: float
    reason: str
    message: str


def snap_to_boundary(words: Sequence[Word], t: float) -> Optional[int]:
    """Index k: cut between words[k - 1] and words[k], the boundary nearest `t` with a pause
    counting in its favour; None when there is no boundary."""
    best, best_cost = None, float("inf")
    for k in range(1, len(words)):
        a, b = words[k - 1].end, max(words[k - 1].end, words[k].start)
        dist = 0.0 if a <= t <= b else min(abs(t - a), abs(t - b))
        cost = dist - PAUSE_WEIGHT * (b - a) + (0.0 if dist <= SNAP_SECONDS else 10.0 * dist)
        if cost < best_cost:
            best, best_cost = k, cost
    return best


def _piece(seg: SpeechSegment, words: list[Word], start: float, end: float) -> SpeechSegment:
    return seg.model_copy(update={
        "segment_id": segment_id(seg.video_id, start), "start": start, "end": end, "words": words, "text": join_words(words),
    })


def split_utterance(
    seg: SpeechSegment,
    changes: Sequence[float],
    removals: Sequence[Removal],
    cfg: SegmentConfig,
    stage: str,
    change_message: str = "",
) -> tuple[list[SpeechSegment], list[Reject]]:
    """The pieces of `seg` and the reject spans of what is cut away (see the module docstring)."""
    words = list(seg.words)
    if not changes and not removals:
        return [seg], []
    if not words:
        return [], [Reject.span(seg.video_id, seg.source, stage, SPEAKER_CHANGE, change_message or "no words to cut at",
                                seg.start, seg.end)]
    # label each word with its group: a run number between cuts, or a removal
    removed: list[Optional[Removal]] = [None] * len(words)
    for r in removals:
        for i, w in enumerate(words):
            if r.start <= (w.start + w.end) / 2.0 < r.end:
                removed[i] = r
    cuts = sorted({k for k in (snap_to_boundary(words, t) for t in changes) if k is not None})
    groups: list[tuple[list[int], Optional[Removal]]] = []
    for i in range(len(words)):
        new = not groups or i in cuts or removed[i] is not groups[-1][1]
        if new:
            groups.append(([i], removed[i]))
        else:
            groups[-1][0].append(i)
    # bounds: each group ends where the next begins, in the middle of the pause between them
    bounds = [seg.start]
    for g, nxt in zip(groups[:-1], groups[1:]):
        left, right = words[g[0][-1]], words[nxt[0][0]]
        bounds.append(round((left.end + max(left.end, right.start)) / 2.0, 3))
    bounds.append(seg.end)
    pieces: list[SpeechSegment] = []
    rejects: list[Reject] = []
    for (idx, removal), a, b in zip(groups, bounds[:-1], bounds[1:]):
        ws = [words[i] for i in idx]
        start = max(a, round(ws[0].start - cfg.pad_seconds, 3))
        end = min(b, round(ws[-1].end + cfg.pad_seconds, 3))
        if removal is not None:
            rejects.append(Reject.span(seg.video_id, seg.source, stage, removal.reason, removal.message, a, b))
        elif end - start < cfg.min_seconds - 1e-9 or len(ws) < cfg.min_words:
            msg = f"{end - start:.2f} s of one speaker between speaker changes (< min_seconds {cfg.min_seconds:g})"
            rejects.append(Reject.span(seg.video_id, seg.source, stage, SPEAKER_CHANGE,
                                       f"{change_message}; {msg}" if change_message else msg, a, b))
        else:
            pieces.append(_piece(seg, ws, start, end))
    return pieces, rejects
