"""Pure measures of a run on real footage against the manifest and reference turns (no I/O).

A reference turn is (start, end, speaker) in seconds of the source file. Overlapping turns are
allowed (both people talk): a second of overlap counts once for each of them.

* `segment_purity`: of the reference speech inside a kept segment, the share of its majority speaker;
* `cluster_scores`: cluster purity / inverse purity (completeness) of predicted ids against true
  speakers, weighted by seconds;
* `ovrl_curve`: seconds each DNSMOS OVRL floor would keep;
* `parse_ovrl`: the OVRL a `low_quality` reject message names.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Optional

OVRL_FLOORS = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5)
PURE_SHARE = 0.9  # a segment "holds one voice" when >= 90% of its reference speech is one speaker's


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: str


def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def speech_by_speaker(turns: Iterable[Turn], start: float, end: float) -> dict[str, float]:
    """Seconds of each reference speaker's speech inside [start, end)."""
    out: dict[str, float] = defaultdict(float)
    for t in turns:
        s = overlap(start, end, t.start, t.end)
        if s > 0:
            out[t.speaker] += s
    return dict(out)


@dataclass(frozen=True)
class Purity:
    speaker: Optional[str]  # the majority speaker; None when the segment holds no reference speech
    share: float  # the majority speaker's share of the reference speech in the segment
    speech_s: float  # reference speech in the segment (overlaps counted once per speaker)


def segment_purity(turns: Iterable[Turn], start: float, end: float) -> Purity:
    by = speech_by_speaker(turns, start, end)
    total = sum(by.values())
    if total <= 0:
        return Purity(None, 0.0, 0.0)
    speaker = max(by, key=by.get)
    return Purity(speaker, by[speaker] / total, total)


def cluster_scores(pairs: Iterable[tuple[str, str, float]]) -> tuple[float, float]:
    """(purity, completeness) of predicted ids against true speakers over (predicted, true, seconds):
    purity = sum over predicted ids of its largest true speaker's seconds / all seconds; completeness
    (inverse purity) = sum over true speakers of its largest predicted id's seconds / all seconds."""
    by_pred: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    by_true: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    total = 0.0
    for pred, true, w in pairs:
        by_pred[pred][true] += w
        by_true[true][pred] += w
        total += w
    if total <= 0:
        return 0.0, 0.0
    purity = sum(max(v.values()) for v in by_pred.values()) / total
    completeness = sum(max(v.values()) for v in by_true.values()) / total
    return purity, completeness


_OVRL = re.compile(r"dnsmos_ovrl\s+([0-9.]+)")


def parse_ovrl(message: str) -> Optional[float]:
    """The OVRL score in a `low_quality` reject message ('dnsmos_ovrl 2.41 < 3.00'), else None."""
    m = _OVRL.search(message or "")
    return float(m.group(1)) if m else None


def ovrl_curve(scored: Iterable[tuple[float, float]], floors: Iterable[float] = OVRL_FLOORS) -> dict[str, float]:
    """Seconds kept at each OVRL floor (score >= floor) over (ovrl, seconds) pairs."""
    scored = list(scored)
    return {f"{f:.1f}": round(sum(s for o, s in scored if o >= f), 2) for f in floors}


def share(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole > 0 else 0.0


def language_matches(detected: str, expected: Iterable[str]) -> bool:
    """A segment's detected language against the file's languages ('zh' matches 'zh', 'en' 'en-US')."""
    d = (detected or "").split("-")[0].lower()
    return any(d == e.split("-")[0].lower() for e in expected)


def seconds_by(rows: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Sum seconds by key, largest first."""
    out: dict[str, float] = defaultdict(float)
    for key, s in rows:
        out[key] += s
    return {k: round(v, 2) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}
