"""Utterance segmentation: whisper words -> dataset utterances of `min_seconds`..`max_seconds`.

A pure function of the transcripts. Whisper segments that are not usable speech are dropped
first, each with a reason:

- `music`: only music symbols or tags ("♪", "[Music]"),
- `no_speech`: no words, only non-speech tags ("[BLANK_AUDIO]"), or no_speech_prob above
  `max_no_speech_prob`,
- `low_confidence`: avg_logprob below `min_avg_logprob`,
- `language_not_allowed`: the clip's language is not in `languages` (when that list is set).
- `language_mismatch`: language ID heard another language than the model transcribes (a `*.en` model).

The words of consecutive kept segments form runs (a silence of `split_pause_seconds` always
ends a run). Each run is cut between words, never inside one, by a small dynamic programme
that prefers sentence ends followed by a pause, then sentence ends, then pauses, then clause
punctuation, and avoids cutting between words that run together; every piece must be at most
`max_seconds` long and pieces under `min_seconds` are dropped (`too_short`). A single word
longer than `max_seconds` cannot be cut (`unsplittable`).

Every second of a transcribed clip ends in an utterance or a reject span: what no whisper
segment, utterance or other reject covers (whisper returned no words there, or the pause between
two utterances) becomes a `no_transcript` span, so the report's funnel reconciles with VAD.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Optional, Sequence

from ..config import SegmentConfig
from ..records import Reject, SpeechRegion, SpeechSegment, Word, join_words, segment_id
from .transcribe import RegionTranscript, WhisperSegment

STAGE = "asr"

_SENTENCE_END = re.compile(r"[.!?。！？…]+[\"'”’)\]]*$")
_CLAUSE_END = re.compile(r"[,;:，；：、—–-]+[\"'”’)\]]*$")
_MUSIC_CHARS = set("♪♫♬♩🎵🎶")
_TAG = re.compile(r"^[\[\(\*<](.*?)[\]\)\*>]$")
_MUSIC_WORDS = ("music", "singing", "sings", "song", "instrumental", "melody")
_ALNUM = re.compile(r"\w", re.UNICODE)

# boundary scores of the cut search (lower = better place to cut)
_COST_SENTENCE_PAUSE = -4.0
_COST_SENTENCE = -2.0
_COST_PAUSE = -1.5
_COST_CLAUSE_PAUSE = -1.0
_COST_CLAUSE = 1.0
_COST_RUN_ON = 5.0
_COST_SHORT_PIECE = 20.0  # plus _COST_SHORT_PER_SECOND per second of speech thrown away
_COST_SHORT_PER_SECOND = 5.0
MIN_GAP_SECONDS = 0.01  # an uncovered stretch shorter than this is rounding, not speech


# ---------------------------------------------------------------- classification


def _tags_only(text: str) -> Optional[str]:
    """'music' / 'no_speech' when the text is nothing but music symbols or bracketed tags, else None."""
    t = text.strip()
    if not t:
        return "no_speech"
    tokens = re.findall(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|<[^>]*>|\S+", t)
    music = False
    for tok in tokens:
        stripped = tok.strip(" .,!?-–—")
        if not stripped:
            continue
        if all(ch in _MUSIC_CHARS for ch in stripped):
            music = True
            continue
        m = _TAG.match(stripped)
        if m:
            inner = m.group(1).lower()
            music = music or any(w in inner for w in _MUSIC_WORDS) or any(ch in _MUSIC_CHARS for ch in inner)
            continue
        if not _ALNUM.search(stripped):
            continue
        return None
    return "music" if music else "no_speech"


def classify_segment(seg: WhisperSegment, cfg: SegmentConfig) -> tuple[Optional[str], str]:
    """(reason, message) for a whisper segment that is not usable speech; (None, '') when it is."""
    tag = _tags_only(seg.text)
    if tag == "music":
        return "music", f"music only: {seg.text.strip()[:60]!r}"
    if tag == "no_speech" or not any(_ALNUM.search(w.word) for w in _lexical(seg.words)):
        return "no_speech", f"no words recognised{': ' + repr(seg.text.strip()[:60]) if seg.text.strip() else ''}"
    if seg.no_speech_prob > cfg.max_no_speech_prob:
        return "no_speech", f"no_speech_prob {seg.no_speech_prob:.2f} > {cfg.max_no_speech_prob:.2f}"
    if seg.avg_logprob < cfg.min_avg_logprob:
        return "low_confidence", f"avg_logprob {seg.avg_logprob:.2f} < {cfg.min_avg_logprob:.2f}"
    return None, ""


def _lexical(words: Sequence[Word]) -> list[Word]:
    """The words of speech: without music symbols and bracketed tags ("♪", "[Music]", "(laughs)")."""
    out = []
    for w in words:
        t = w.word.strip().strip(" .,!?")
        if t and (all(ch in _MUSIC_CHARS for ch in t) or _TAG.match(t)):
            continue
        out.append(w)
    return out


# ---------------------------------------------------------------- cutting


def _boundary_cost(left: Word, right: Word, cfg: SegmentConfig) -> float:
    gap = max(0.0, right.start - left.end)
    paused = gap >= cfg.pause_seconds
    if _SENTENCE_END.search(left.word):
        return _COST_SENTENCE_PAUSE if paused else _COST_SENTENCE
    if paused:
        return _COST_PAUSE
    if _CLAUSE_END.search(left.word):
        return _COST_CLAUSE_PAUSE if gap >= cfg.pause_seconds / 2 else _COST_CLAUSE
    # words that run together: cut only when nothing better fits; a longer gap is less bad
    frac = min(1.0, gap / cfg.pause_seconds) if cfg.pause_seconds > 0 else 1.0
    return _COST_RUN_ON * (1.0 - 0.5 * frac)


def _padded_bounds(words: Sequence[Word], lo: float, hi: float, pad: float) -> tuple[list[float], list[float]]:
    """Start/end of a piece beginning/ending at each word: padded, never past half the gap to a neighbour."""
    n = len(words)
    ps, pe = [0.0] * n, [0.0] * n
    for i, w in enumerate(words):
        left_room = (w.start - words[i - 1].end) / 2 if i > 0 else w.start - lo
        right_room = (words[i + 1].start - w.end) / 2 if i + 1 < n else hi - w.end
        ps[i] = w.start - max(0.0, min(pad, left_room))
        pe[i] = w.end + max(0.0, min(pad, right_room))
    return ps, pe


def cut_run(words: Sequence[Word], cfg: SegmentConfig, lo: float, hi: float) -> list[tuple[int, int, float, float]]:
    """Pieces (i, j, start, end) covering words[i:j], every one at most max_seconds unless one word.

    `lo`/`hi` bound the padding (the clip the words came from).
    """
    n = len(words)
    if n == 0:
        return []
    ps, pe = _padded_bounds(words, lo, hi, cfg.pad_seconds)
    bcost = [_boundary_cost(words[k], words[k + 1], cfg) for k in range(n - 1)]
    inf = float("inf")
    best = [inf] * (n + 1)
    back = [-1] * (n + 1)
    best[0] = 0.0
    for j in range(1, n + 1):
        end = pe[j - 1]
        for i in range(j - 1, -1, -1):
            dur = end - ps[i]
            if dur > cfg.max_seconds + 1e-9 and j - i > 1:
                break  # longer pieces only grow as i decreases
            if best[i] == inf:
                continue
            cost = best[i]
            if dur < cfg.min_seconds - 1e-9 or (j - i) < cfg.min_words:
                cost += _COST_SHORT_PIECE + _COST_SHORT_PER_SECOND * dur
            if j < n:
                cost += bcost[j - 1]
            if cost < best[j]:
                best[j], back[j] = cost, i
    pieces = []
    j = n
    while j > 0:
        i = back[j]
        pieces.append((i, j, max(lo, round(ps[i], 3)), min(hi, round(pe[j - 1], 3))))
        j = i
    return pieces[::-1]


# ---------------------------------------------------------------- the whole video


def _reject(video_id: str, source: str, reason: str, message: str, start: float, end: float) -> Reject:
    return Reject.span(video_id, source, STAGE, reason, message, round(start, 3), round(end, 3))


def cut_utterances(
    video_id: str,
    source: str,
    transcripts: Sequence[RegionTranscript],
    cfg: SegmentConfig,
    regions: Optional[Sequence[SpeechRegion]] = None,
) -> tuple[list[SpeechSegment], list[Reject]]:
    """Utterances (sorted by start) and a reject for every stretch of speech that did not become one."""
    segments: list[SpeechSegment] = []
    rejects: list[Reject] = []
    allowed = {lang.lower() for lang in cfg.languages}
    for rt in transcripts:
        n_seg, n_rej = len(segments), len(rejects)  # what this clip adds, for the gap check
        snr = None
        if regions is not None and 0 <= rt.region_index < len(regions):
            reg = regions[rt.region_index]
            snr = reg.snr_db_after if reg.snr_db_after is not None else reg.snr_db_before
        if rt.mismatch:
            rejects.append(_reject(video_id, source, "language_mismatch", rt.mismatch, rt.start, rt.end))
            continue
        if not rt.segments:
            rejects.append(_reject(video_id, source, "no_speech", "whisper heard no words in this speech region", rt.start, rt.end))
            continue
        if allowed and (rt.language or "").lower() not in allowed:
            rejects.append(
                _reject(
                    video_id, source, "language_not_allowed",
                    f"language {rt.language or '?'} (p={rt.language_probability:.2f}) not in {sorted(allowed)}",
                    rt.start, rt.end,
                )
            )
            continue
        # keep / drop each whisper segment; consecutive drops with one reason become one reject
        runs: list[list[WhisperSegment]] = [[]]
        pending: Optional[list] = None  # [reason, message, start, end]
        for seg in rt.segments:
            reason, message = classify_segment(seg, cfg)
            if reason is None:
                if pending:
                    rejects.append(_reject(video_id, source, *pending))
                    pending = None
                runs[-1].append(seg)
                continue
            if runs[-1]:
                runs.append([])
            if pending and pending[0] == reason:
                pending[3] = max(pending[3], seg.end)
            else:
                if pending:
                    rejects.append(_reject(video_id, source, *pending))
                pending = [reason, message, seg.start, seg.end]
        if pending:
            rejects.append(_reject(video_id, source, *pending))
        for run in runs:
            if run:
                _cut_segments(video_id, source, rt, run, cfg, snr, segments, rejects)
        covered = [(x.start, x.end) for x in segments[n_seg:]] + [(r.start, r.end) for r in rejects[n_rej:]]
        rejects.extend(_uncovered(video_id, source, rt, covered))
    segments.sort(key=lambda s: s.start)
    rejects.sort(key=lambda r: (r.start if r.start is not None else -1.0))
    return segments, rejects


def _uncovered(video_id: str, source: str, rt: RegionTranscript, covered: list[tuple[float, float]]) -> list[Reject]:
    """`no_transcript` spans for the stretches of the clip that nothing above accounts for."""
    out, pos = [], rt.start
    for a, b in sorted(covered) + [(rt.end, rt.end)]:
        if a - pos >= MIN_GAP_SECONDS:
            out.append(_reject(video_id, source, "no_transcript",
                               "no words transcribed in this stretch of detected speech (a pause or an untranscribed sound)",
                               pos, min(a, rt.end)))
        pos = max(pos, b)
    return out


def _cut_segments(
    video_id: str,
    source: str,
    rt: RegionTranscript,
    run: list[WhisperSegment],
    cfg: SegmentConfig,
    snr: Optional[float],
    out: list[SpeechSegment],
    rejects: list[Reject],
) -> None:
    # (word, whisper segment) in time order; a long silence always ends a sub-run
    tagged = [(w, s) for s in run for w in _lexical(s.words)]
    if not tagged:
        return
    subruns: list[list[tuple[Word, WhisperSegment]]] = [[tagged[0]]]
    for prev, cur in zip(tagged, tagged[1:]):
        if cur[0].start - prev[0].end >= cfg.split_pause_seconds:
            subruns.append([])
        subruns[-1].append(cur)
    for k, sub in enumerate(subruns):
        words = [w for w, _ in sub]
        # padding may reach into the silence around the sub-run, never past the clip
        lo = rt.start if k == 0 else max(rt.start, subruns[k - 1][-1][0].end)
        hi = rt.end if k == len(subruns) - 1 else min(rt.end, subruns[k + 1][0][0].start)
        for i, j, start, end in cut_run(words, cfg, lo, hi):
            dur = end - start
            piece = words[i:j]
            if dur > cfg.max_seconds + 1e-9:
                rejects.append(_reject(video_id, source, "unsplittable", f"one word spans {dur:.1f} s > {cfg.max_seconds:g} s", start, end))
                continue
            if dur < cfg.min_seconds - 1e-9 or len(piece) < cfg.min_words:
                rejects.append(
                    _reject(video_id, source, "too_short", f"{dur:.2f} s, {len(piece)} words < {cfg.min_seconds:g} s / {cfg.min_words} words", start, end)
                )
                continue
            segs = {id(s): s for _, s in sub[i:j]}.values()
            text = join_words(piece)
            out.append(
                SpeechSegment(
                    segment_id=segment_id(video_id, start),
                    video_id=video_id,
                    source=source,
                    start=start,
                    end=end,
                    text=text,
                    language=rt.language,
                    language_probability=round(rt.language_probability, 4),
                    words=list(piece),
                    no_speech_prob=round(max(s.no_speech_prob for s in segs), 4),
                    avg_logprob=round(sum(s.avg_logprob for s in segs) / len(segs), 4),
                    snr_db=snr,
                )
            )


def video_reject_reason(rejects: Sequence[Reject]) -> str:
    """The reason a video gave no utterance: the one that dropped the most seconds (no_speech if none)."""
    seconds: Counter = Counter()
    for r in rejects:
        if r.start is not None and r.end is not None:
            seconds[r.reason] += max(0.0, r.end - r.start)
        else:
            seconds[r.reason] += 0.0
    if not seconds:
        return "no_speech"
    return seconds.most_common(1)[0][0]


__all__ = ["cut_utterances", "cut_run", "classify_segment", "video_reject_reason"]
