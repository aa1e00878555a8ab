"""Speaker identity within a video: which kept segments are the same person.

Voices alone confuse similar people, and faces alone say nothing across shot cuts; together:

* segment voices (unit GE2E embeddings) are clustered by average linkage on cosine distance,
  merging while clusters are at least `cluster_similarity` alike;
* the face layout adds what a camera shows: when two segments show the same faces at the same
  places (a static two-shot) the person speaking from the same place is the same person (their
  distance becomes 0), and the people in two different places are two people (distance 2: never
  merged). A single face on screen says nothing (close-ups in an edited scene all sit in the
  middle), so segments with one face rely on the voice.

Ids are `<video_id>_S<k>`, numbered by first appearance: the same items give the same ids, so a
killed-and-resumed run (which redoes a whole video) writes the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

SAME_PLACE_IOU = 0.3


@dataclass
class SegmentVoice:
    """What identity needs of one kept segment."""

    start: float
    end: float
    embedding: list[float]  # unit voice embedding, or [] when voices are off
    speaker_box: list[float]  # median box of the speaker's face (source pixels)
    other_faces: list[list[float]] = field(default_factory=list)  # median boxes of the other faces on screen


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) < 4 or len(b) < 4:
        return 0.0
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _same_layout(a: SegmentVoice, b: SegmentVoice) -> bool:
    """Both show two or more faces, at the same places."""
    fa, fb = [a.speaker_box] + a.other_faces, [b.speaker_box] + b.other_faces
    if len(fa) < 2 or len(fa) != len(fb):
        return False
    return all(any(_iou(x, y) >= SAME_PLACE_IOU for y in fb) for x in fa)


def distances(segs: Sequence[SegmentVoice]) -> np.ndarray:
    """[n, n] cosine distance of the voices, overridden by what the face layout proves."""
    n = len(segs)
    have_voice = all(len(s.embedding) for s in segs)
    if have_voice:
        e = np.asarray([s.embedding for s in segs], dtype=np.float64)
        e /= np.maximum(1e-12, np.linalg.norm(e, axis=1, keepdims=True))
        d = 1.0 - e @ e.T
    else:  # no voices: one person per video unless the layout says otherwise
        d = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            if _same_layout(segs[i], segs[j]):
                d[i, j] = d[j, i] = 0.0 if _iou(segs[i].speaker_box, segs[j].speaker_box) >= SAME_PLACE_IOU else 2.0
    np.fill_diagonal(d, 0.0)
    return np.clip(d, 0.0, 2.0)


def cluster(segs: Sequence[SegmentVoice], cluster_similarity: float) -> list[int]:
    """A cluster number per segment, numbered 0, 1, ... by first appearance in time."""
    n = len(segs)
    if n == 0:
        return []
    if n == 1:
        return [0]
    from sklearn.cluster import AgglomerativeClustering

    labels = AgglomerativeClustering(
        n_clusters=None, metric="precomputed", linkage="average", distance_threshold=1.0 - cluster_similarity
    ).fit_predict(distances(segs))
    order = sorted(range(n), key=lambda i: (segs[i].start, i))
    renumber: dict[int, int] = {}
    for i in order:
        renumber.setdefault(int(labels[i]), len(renumber))
    return [renumber[int(x)] for x in labels]


def speaker_ids(video_id: str, segs: Sequence[SegmentVoice], cluster_similarity: float) -> list[str]:
    return [f"{video_id}_S{k + 1}" for k in cluster(segs, cluster_similarity)]


def mean_embedding(embeddings: Sequence[Sequence[float]]) -> list[float]:
    rows = [e for e in embeddings if len(e)]
    if not rows:
        return []
    m = np.asarray(rows, dtype=np.float64).mean(axis=0)
    return (m / max(1e-12, float(np.linalg.norm(m)))).astype(np.float32).tolist()


def link_across_videos(speakers: Sequence[tuple[str, Sequence[float]]], global_similarity: float) -> dict[str, Optional[str]]:
    """`global_speaker_id` per speaker id: speakers of different videos whose mean voices are at
    least `global_similarity` alike (average linkage) share one (`G<k>`, by sorted speaker id)."""
    with_voice = sorted((sid, e) for sid, e in speakers if len(e))
    out: dict[str, Optional[str]] = {sid: None for sid, _ in speakers}
    if not with_voice:
        return out
    if len(with_voice) == 1:
        return {**out, with_voice[0][0]: "G1"}
    from sklearn.cluster import AgglomerativeClustering

    e = np.asarray([x for _, x in with_voice], dtype=np.float64)
    e /= np.maximum(1e-12, np.linalg.norm(e, axis=1, keepdims=True))
    d = np.clip(1.0 - e @ e.T, 0.0, 2.0)
    video = [sid.rsplit("_S", 1)[0] for sid, _ in with_voice]
    d[np.equal.outer(video, video)] = 2.0  # two speakers of one video are two people
    np.fill_diagonal(d, 0.0)
    labels = AgglomerativeClustering(
        n_clusters=None, metric="precomputed", linkage="average", distance_threshold=1.0 - global_similarity
    ).fit_predict(d)
    renumber: dict[int, int] = {}
    for (sid, _), lab in zip(with_voice, labels):
        out[sid] = f"G{renumber.setdefault(int(lab), len(renumber) + 1)}"
    return out


def write_global_speakers(out_root, global_similarity: float) -> int:
    """Link every committed video's speakers by voice into `global_speakers.parquet`; returns how
    many global speakers there are. Recomputed from all `speakers/*.parquet` at the end of each run,
    so it always covers the whole dataset."""
    import pyarrow.parquet as pq

    from ..records import GlobalSpeaker, Speaker

    from .. import layout

    paths = layout.OutputPaths(out_root)
    files = sorted(paths.dir(layout.SPEAKERS).glob("*.parquet"))
    rows = [s for f in files for s in Speaker.from_table(pq.read_table(f))]
    target = paths.global_speakers
    if not rows:
        target.unlink(missing_ok=True)
        return 0
    links = link_across_videos([(s.speaker_id, s.embedding) for s in rows], global_similarity)
    table = GlobalSpeaker.to_table([GlobalSpeaker(speaker_id=s.speaker_id, video_id=s.video_id, global_speaker_id=links[s.speaker_id] or "")
                                    for s in rows])
    from .. import atomic

    atomic.write_parquet(table, target)
    return len({g for g in links.values() if g})
