"""Where the voice changes inside an utterance, from its sliding-window embeddings.

Pure functions of unit-length window embeddings (`VoiceWindows`), so the rules are unit-tested
on numbers. Only windows that are mostly voice take part (pauses say nothing about who talks).

* **Change points**: at each boundary between windows, the mean voice of the few windows before it
  is compared with that of the few after it; boundaries where the two are less similar than
  `change_similarity` are candidates (the most different first, `min_side_windows` apart). Then
  the runs between candidates are compared whole, and a candidate between two runs of the same
  voice is dropped. A local comparison sees A-B-A turns that a single best split of the whole
  utterance would average away; the whole-run check keeps a laugh or a shout from becoming a
  speaker. Each side must hold `min_side_windows` windows.
* **Two voices at once**: within a run of one voice, windows that match none of the runs' voices
  (similarity below `overlap_similarity` to every run) and come three or more in a row. A window
  that merely straddles a change (one voice then the other) is mixed too, but at a clean change at
  most two windows in a row are: three need two voices sounding together for about a second or more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..records import VoiceWindows

#: windows on each side of a boundary whose mean voices are compared (3 x 0.5 s hops of 1.5 s windows:
#: 2.5 s of audio a side, enough for a stable voice, short enough to see two turns in a row)
CONTEXT_WINDOWS = 3
#: consecutive unexplained windows that make an overlap (see the module docstring)
OVERLAP_RUN = 3


@dataclass
class VoiceChanges:
    changes: list[float]  # source seconds where one voice gives way to another
    overlaps: list[tuple[float, float]]  # source seconds where two voices sound at once
    similarity: list[float]  # the similarity of the two sides at each change


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(1e-12, float(np.linalg.norm(v)))


def _local_similarity(e: np.ndarray, context: int, min_side: int, gap: int = 1) -> np.ndarray:
    """[n] similarity of the mean voice of the `context` windows before boundary k and of those
    after it, leaving out the `gap` windows next to k on each side (they straddle the change, and
    two voices overlapping for a moment blur it further); 1.0 where a side has fewer than
    `min_side` windows."""
    n = len(e)
    sims = np.ones(n)
    for k in range(1, n):
        left = e[max(0, k - gap - context) : max(0, k - gap)]
        right = e[min(n, k + gap) : k + gap + context]
        if len(left) >= min_side and len(right) >= min_side:
            sims[k] = float(_unit(left.mean(axis=0)) @ _unit(right.mean(axis=0)))
    return sims


def _candidates(sims: np.ndarray, threshold: float, spacing: int) -> list[int]:
    """Boundaries whose local similarity is below `threshold`, lowest first, `spacing` apart."""
    chosen: list[int] = []
    for k in np.argsort(sims, kind="stable"):
        if sims[k] >= threshold:
            break
        if all(abs(int(k) - c) >= spacing for c in chosen):
            chosen.append(int(k))
    return sorted(chosen)


def _merge_alike(e: np.ndarray, cuts: list[int], threshold: float, min_side: int) -> list[tuple[int, float]]:
    """Drop cuts between runs whose whole mean voices are alike (>= `threshold`), most alike first:
    a local dip (a laugh, a shout) is no change when the voice on both sides is the same. A run
    shorter than `min_side` windows joins the neighbour it is more alike first."""
    cuts = list(cuts)
    while cuts:
        bounds = [0] + cuts + [len(e)]
        voices = [_unit(e[a:b].mean(axis=0)) for a, b in zip(bounds[:-1], bounds[1:])]
        sims = [float(voices[i] @ voices[i + 1]) for i in range(len(cuts))]
        short = [r for r in range(len(voices)) if bounds[r + 1] - bounds[r] < min_side]
        if short:  # cut r-1 is its left edge, cut r its right one
            r = short[0]
            sides = [c for c in (r - 1, r) if 0 <= c < len(cuts)]
            del cuts[max(sides, key=lambda c: sims[c])]
            continue
        i = int(np.argmax(sims))
        if sims[i] < threshold:
            return list(zip(cuts, sims))
        del cuts[i]
    return []


def _locate(e: np.ndarray, centres: np.ndarray, before: np.ndarray, after: np.ndarray, k: int, reach: int) -> float:
    """The time a window is half one voice, half the other, near boundary k: where its similarity
    to the voice before stops exceeding its similarity to the voice after (interpolated between
    window centres; a window's embedding moves with the share of each voice it holds)."""
    lo, hi = max(0, k - reach), min(len(e), k + reach)
    d = e[lo:hi] @ before - e[lo:hi] @ after
    c = centres[lo:hi]
    for i in range(len(d) - 1):
        if d[i] > 0 >= d[i + 1]:
            return float(c[i] + (c[i + 1] - c[i]) * d[i] / (d[i] - d[i + 1]))
    return float((centres[k - 1] + centres[k]) / 2.0)


def find_changes(w: VoiceWindows, change_similarity: float, overlap_similarity: float, min_side_windows: int = 2) -> VoiceChanges:
    """Change points and overlaps of one utterance's windows (see the module docstring)."""
    idx = [i for i, s in enumerate(w.speech) if s]
    if not idx:
        return VoiceChanges([], [], [])
    e = np.asarray([w.embeddings[i] for i in idx], dtype=np.float64)
    starts = np.asarray([w.starts[i] for i in idx])
    ends = np.asarray([w.ends[i] for i in idx])
    side = max(1, min_side_windows)
    local = _local_similarity(e, max(side, CONTEXT_WINDOWS), side)
    # a sharp change leaves low similarity on 2 * gap + 1 boundaries in a row: one candidate among them
    splits = _merge_alike(e, _candidates(local, change_similarity, max(side, 3)), change_similarity, side)
    centres = (starts + ends) / 2.0
    bounds = [0] + [k for k, _ in splits] + [len(e)]
    voices = np.stack([_unit(e[a:b].mean(axis=0)) for a, b in zip(bounds[:-1], bounds[1:])])
    changes = [_locate(e, centres, voices[i], voices[i + 1], k, side + 2) for i, (k, _) in enumerate(splits)]
    fit = (e @ voices.T).max(axis=1)
    overlaps: list[tuple[float, float]] = []
    run: list[int] = []
    for i in range(len(e) + 1):
        if i < len(e) and fit[i] < overlap_similarity:
            run.append(i)
            continue
        if len(run) >= OVERLAP_RUN:
            overlaps.append((float(starts[run[0]]), float(ends[run[-1]])))
        run = []
    return VoiceChanges(changes, overlaps, [s for _, s in splits])
