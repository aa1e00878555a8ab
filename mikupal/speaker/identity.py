"""Speaker identity within a video: which kept segments are the same person.

Everything known goes in, as proof where it is proof and as evidence where it is not:

* **cannot-link** (never one id, whatever the voices say):
  - two segments that overlap in time by more than `OVERLAP_SECONDS` (two people talking at once);
  - a shot with two or more faces where each segment's speaker sits at a place that holds another,
    silent face in the other segment: both people are on screen at once, at two places.
* **must-link** (one id, unless a cannot-link says otherwise: a cannot-link always wins):
  - the same face track spoke in two pieces of one utterance (`speaker_face`, set by the vision stage);
  - the same face track goes on across the pause between two segments: the speaking face was last
    seen in one and first seen in the next at most `CONTINUED_SECONDS` apart, at the same place
    (IoU >= `SAME_PLACE_IOU`), in frames that look like one shot (histogram distance at most
    `shot_cut_threshold`, the tracker's own test for a cut): a track the tracker would have joined;
  - the same place speaks in the same multi-face layout (a static two-shot), however the voices sound.
  A single face on screen proves nothing (close-ups in an edited scene all sit in the middle).
* **voices** (unit GE2E embeddings), clustered in three steps (`speaker/linkage.py`, constrained):
  1. segments, or must-linked groups, with at least `min_support_seconds` of speech: average
     linkage at `cluster_similarity`;
  2. each shorter one joins the supported speaker whose mean voice is most similar, when that is at
     least `attach_similarity`: a 2 s piece is too short for its pair similarities to stand on their
     own (benchmarks/results/voice_similarity.json; the figures are in conf/speaker/ge2e.yaml);
  3. what is left (no supported speaker is near, or nobody has that much speech) is clustered among
     itself at `pair_similarity`: the similarity of two short pieces runs lower than a piece's to a
     whole voice, so the bar for a pair is lower too (the figures are in conf/speaker/ge2e.yaml).

Ids are `<video_id>_S<k>`, numbered by first appearance: the same items give the same ids (the
segments are sorted by time first), so a killed-and-resumed run (which redoes a whole video)
writes the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..records import FaceEnds
from .linkage import average_linkage, broken, resolve_must_links

SAME_PLACE_IOU = 0.3
#: overlap in time that proves two voices (more than the padding two neighbours may share)
OVERLAP_SECONDS = 0.25
#: the longest pause across which one face track goes on from a segment to the next
CONTINUED_SECONDS = 1.0


@dataclass(frozen=True)
class IdentityRules:
    """The thresholds of `speaker.*` that identity uses (conf/speaker/ge2e.yaml says why)."""

    cluster_similarity: float = 0.75
    attach_similarity: float = 0.70
    min_support_seconds: float = 4.0
    pair_similarity: float = 0.67
    shot_cut_threshold: float = 0.5  # faces.shot_cut_threshold: two frames further apart are two shots


@dataclass
class SegmentVoice:
    """What identity needs of one kept segment."""

    start: float
    end: float
    embedding: list[float]  # unit voice embedding, or [] when voices are off
    speaker_box: list[float]  # median box of the speaker's face (source pixels)
    other_faces: list[list[float]] = field(default_factory=list)  # median boxes of the other faces on screen
    speaker_face: str = ""  # the face track that spoke ("<decode>#<track>"): shared only within one decode
    ends: Optional[FaceEnds] = None  # where, when and in what shot that face was first and last seen

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) < 4 or len(b) < 4:
        return 0.0
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _same_place(box: Sequence[float], places: Sequence[Sequence[float]]) -> bool:
    return any(_iou(box, p) >= SAME_PLACE_IOU for p in places)


def _same_layout(a: SegmentVoice, b: SegmentVoice) -> bool:
    """Both show two or more faces, at the same places."""
    fa, fb = [a.speaker_box] + a.other_faces, [b.speaker_box] + b.other_faces
    if len(fa) < 2 or len(fa) != len(fb):
        return False
    return all(_same_place(x, fb) for x in fa)


def _two_on_screen(a: SegmentVoice, b: SegmentVoice) -> bool:
    """Each one's speaker sits where the other shows a silent face, at another place: two people."""
    if not a.other_faces or not b.other_faces:
        return False
    return (not _same_place(a.speaker_box, [b.speaker_box]) and _same_place(a.speaker_box, b.other_faces)
            and _same_place(b.speaker_box, a.other_faces))


def look_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Bhattacharyya distance of two L1-normalised histograms (0 = same colours, 1 = disjoint), as
    OpenCV's HISTCMP_BHATTACHARYYA that finds the tracker's shot cuts."""
    if len(a) != len(b) or not len(a):
        return 1.0
    bc = float(np.sqrt(np.clip(np.asarray(a, dtype=np.float64) * np.asarray(b, dtype=np.float64), 0, None)).sum())
    return float(np.sqrt(max(0.0, 1.0 - bc)))


def continued(a: SegmentVoice, b: SegmentVoice, cut: float) -> bool:
    """`b`'s speaking face is `a`'s face track going on across the pause between them (`a` first)."""
    x, y = a.ends, b.ends
    if x is None or y is None:
        return False
    return (0.0 <= y.first_time - x.last_time <= CONTINUED_SECONDS and _iou(x.last_box, y.first_box) >= SAME_PLACE_IOU
            and look_distance(x.last_look, y.first_look) <= cut)


def similarities(segs: Sequence[SegmentVoice]) -> np.ndarray:
    """[n, n] cosine similarity of the voices. No voices at all: one person unless the faces say
    otherwise (1 everywhere). A segment without a voice among voiced ones is neutral to all
    (`nan`: it joins by its links alone, or the nearest speaker that may take it)."""
    n = len(segs)
    has = np.array([len(s.embedding) > 0 for s in segs], dtype=bool)
    if not has.any():
        return np.ones((n, n))
    dim = len(segs[int(np.argmax(has))].embedding)
    e = np.zeros((n, dim))
    e[has] = np.asarray([s.embedding for s in segs if len(s.embedding)], dtype=np.float64)
    e[has] /= np.maximum(1e-12, np.linalg.norm(e[has], axis=1, keepdims=True))
    sim = e @ e.T
    sim[~np.outer(has, has)] = np.nan
    np.fill_diagonal(sim, 1.0)
    return sim


def constraints(segs: Sequence[SegmentVoice], cut: float = IdentityRules.shot_cut_threshold) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(cannot [n, n] bool, must-link pairs, surest first) from time and faces (see the module doc);
    `segs` in time order, `cut` the shot-cut threshold."""
    n = len(segs)
    cannot = np.zeros((n, n), dtype=bool)
    track_links: list[tuple[int, int]] = []
    place_links: list[tuple[int, int]] = []
    for i in range(n):
        a = segs[i]
        for j in range(i + 1, n):
            b = segs[j]
            if min(a.end, b.end) - max(a.start, b.start) > OVERLAP_SECONDS or _two_on_screen(a, b):
                cannot[i, j] = cannot[j, i] = True
            elif (a.speaker_face and a.speaker_face == b.speaker_face) or continued(a, b, cut):
                track_links.append((i, j))
            elif _same_layout(a, b) and _same_place(a.speaker_box, [b.speaker_box]):
                place_links.append((i, j))
    return cannot, track_links + place_links


def _mean_voices(members: list[list[int]], e: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Unit mean voice of each group, its segments weighted by their seconds."""
    out = np.zeros((len(members), e.shape[1]))
    for k, m in enumerate(members):
        v = (e[m] * weights[m, None]).sum(axis=0)
        out[k] = v / max(1e-12, float(np.linalg.norm(v)))
    return out


def cluster(segs: Sequence[SegmentVoice], rules: IdentityRules | float = IdentityRules()) -> list[int]:
    """A cluster number per segment, numbered 0, 1, ... by first appearance in time. No cannot-link
    pair ever shares a number (checked before returning)."""
    if not isinstance(rules, IdentityRules):  # a bare similarity: the other rules at their defaults
        rules = IdentityRules(cluster_similarity=float(rules))
    n = len(segs)
    if n == 0:
        return []
    order = sorted(range(n), key=lambda i: (segs[i].start, segs[i].end, i))
    s = [segs[i] for i in order]
    sim = similarities(s)
    cannot, must = constraints(s, rules.shot_cut_threshold)
    groups = resolve_must_links(n, must, cannot)
    labels = _cluster_groups(s, sim, cannot, groups, rules)
    bad = broken(labels, cannot)
    if bad:  # the clustering's own guarantee: never reached
        raise AssertionError(f"identity joined {len(bad)} cannot-link pairs")
    out = [0] * n
    for pos, i in enumerate(order):
        out[i] = labels[pos]
    return out


def _cluster_groups(s: Sequence[SegmentVoice], sim: np.ndarray, cannot: np.ndarray, groups: list[int],
                    rules: IdentityRules) -> list[int]:
    """The three steps of the module doc, over the must-linked groups; labels by first segment."""
    n = len(s)
    seconds = np.array([x.seconds for x in s])
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    supported = [g for g, m in members.items() if seconds[m].sum() >= rules.min_support_seconds]
    short = [g for g in members if g not in set(supported)]
    if not supported:  # nobody has enough speech to anchor the others: short pieces among themselves
        return average_linkage(np.nan_to_num(sim, nan=rules.pair_similarity), cannot, rules.pair_similarity, groups)
    label = np.full(n, -1)
    pts = [i for g in supported for i in members[g]]
    first = average_linkage(np.nan_to_num(sim[np.ix_(pts, pts)], nan=rules.cluster_similarity), cannot[np.ix_(pts, pts)],
                            rules.cluster_similarity, [groups[i] for i in pts])
    label[pts] = first
    _attach(s, sim, cannot, members, short, label, seconds, rules.attach_similarity)
    rest = [i for i in range(n) if label[i] < 0]
    if rest:
        more = average_linkage(np.nan_to_num(sim[np.ix_(rest, rest)], nan=rules.pair_similarity), cannot[np.ix_(rest, rest)],
                               rules.pair_similarity, [groups[i] for i in rest])
        label[rest] = np.asarray(more) + label.max() + 1
    renumber: dict[int, int] = {}
    return [renumber.setdefault(int(x), len(renumber)) for x in label]


def _attach(s: Sequence[SegmentVoice], sim: np.ndarray, cannot: np.ndarray, members: dict[int, list[int]], short: list[int],
            label: np.ndarray, seconds: np.ndarray, threshold: float) -> None:
    """Step 2: short groups join the supported speaker with the most similar mean voice (most
    similar first), when at least `threshold` alike and no cannot-link lies between them. The
    supported speakers' mean voices are fixed by step 1: short pieces do not move them."""
    has = np.array([len(x.embedding) > 0 for x in s])
    dim = max((len(x.embedding) for x in s), default=0)
    e = np.zeros((len(s), max(dim, 1)))
    if dim:
        e[has] = np.asarray([x.embedding for x in s if len(x.embedding)], dtype=np.float64)
    speakers = sorted(set(int(x) for x in label if x >= 0))
    of = [[i for i in range(len(s)) if label[i] == k] for k in speakers]
    voices = _mean_voices(of, e, seconds)
    support = np.array([seconds[m].sum() for m in of])
    blocked = np.zeros((len(short), len(of)), dtype=bool)
    for r, g in enumerate(short):
        for k, m in enumerate(of):
            blocked[r, k] = cannot[np.ix_(members[g], m)].any()
    score = np.full((len(short), len(of)), -np.inf)
    for r, g in enumerate(short):
        m = [i for i in members[g] if has[i]]
        if not m or not dim:  # no voice: the best-supported speaker that may take it
            score[r] = threshold + 1e-9 * support / max(1e-9, support.max())
            continue
        v = (e[m] * seconds[m, None]).sum(axis=0)
        score[r] = voices @ (v / max(1e-12, float(np.linalg.norm(v))))
    score[blocked] = -np.inf
    while len(short) and np.isfinite(score).any():
        r, k = divmod(int(np.argmax(score)), len(of))
        if not score[r, k] >= threshold:
            break
        label[members[short[r]]] = speakers[k]
        score[r, :] = -np.inf
        for r2, g2 in enumerate(short):  # what joined speaker k now bars whoever it cannot be
            if cannot[np.ix_(members[g2], members[short[r]])].any():
                score[r2, k] = -np.inf


def speaker_ids(video_id: str, segs: Sequence[SegmentVoice], rules: IdentityRules | float = IdentityRules()) -> list[str]:
    return [f"{video_id}_S{k + 1}" for k in cluster(segs, rules)]


def mean_embedding(embeddings: Sequence[Sequence[float]]) -> list[float]:
    rows = [e for e in embeddings if len(e)]
    if not rows:
        return []
    m = np.asarray(rows, dtype=np.float64).mean(axis=0)
    return (m / max(1e-12, float(np.linalg.norm(m)))).astype(np.float32).tolist()
