"""Linking per-video speakers into global speakers (`G<k>`): the rule, over the registry.

See `speaker/registry.py` for what is kept between runs. Here: each new per-video speaker is
compared, by exact average linkage, with the global speakers its nearest indexed voices belong to,
and joins the most similar one at `global_similarity` or more that holds no speaker of its own
video; a speaker that joins none is a new global speaker. Ids once given are never changed.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .. import atomic, layout
from .registry import NEIGHBOURS, Registry, sync
from .voice_index import VoiceIndex


class GlobalSpeakers:
    """Each global speaker as the sum of its members' voices, their count and their videos: the
    exact average similarity of a unit voice v to global speaker g is `sums[g] . v / counts[g]`."""

    def __init__(self, reg: Registry, extra: int):
        size = reg.next_global + extra + 1
        self.sums = np.zeros((size, max(reg.dim, 1)), dtype=np.float32)
        self.counts = np.zeros(size, dtype=np.int64)
        self.videos: set[tuple[int, str]] = set()
        have = reg.gids > 0
        np.add.at(self.sums, reg.gids[have], reg.voices[have])
        np.add.at(self.counts, reg.gids[have], 1)
        self.videos.update(zip(reg.gids[have].tolist(), (v for v, h in zip(reg.video_ids, have) if h)))

    def join(self, g: int, voice: np.ndarray, video: str) -> None:
        self.sums[g] += voice
        self.counts[g] += 1
        self.videos.add((g, video))


def link(reg: Registry, rows: np.ndarray, similarity: float, neighbours: int = NEIGHBOURS) -> None:
    """Give every row in `rows` (new, without a global id) one, in the order given, a video at a time."""
    voiced = np.asarray([r for r in rows if reg.labels[r] >= 0], dtype=np.int64)
    if not len(voiced):
        return
    if reg.index is None:
        reg.index = VoiceIndex(reg.dim)
    reg.index.add(reg.labels[voiced], reg.voices[voiced])
    near = reg.index.search(reg.voices[voiced], neighbours)
    row_of = np.full(reg.next_label, -1, dtype=np.int64)
    row_of[reg.labels[reg.labels >= 0]] = np.flatnonzero(reg.labels >= 0)
    state = GlobalSpeakers(reg, len(voiced))
    start = 0
    while start < len(voiced):  # rows of one video are contiguous (sync and callers group them)
        end = start + 1
        while end < len(voiced) and reg.video_ids[voiced[end]] == reg.video_ids[voiced[start]]:
            end += 1
        _link_video(reg, voiced[start:end], near[start:end], row_of, state, similarity)
        start = end


def _link_video(reg: Registry, rows: np.ndarray, near: np.ndarray, row_of: np.ndarray, state: GlobalSpeakers,
                similarity: float) -> None:
    """The speakers of one video: best pairs first, one global speaker each, never one for two."""
    video = reg.video_ids[rows[0]]
    offers = []
    for r, keys in zip(rows.tolist(), near):
        cand = row_of[keys[keys >= 0]]
        gids = np.unique(reg.gids[cand[cand >= 0]])
        gids = gids[gids > 0]
        if not len(gids):
            continue
        sims = state.sums[gids] @ reg.voices[r] / state.counts[gids]
        offers += [(-float(s), r, int(g)) for s, g in zip(sims, gids) if s >= similarity and (int(g), video) not in state.videos]
    offers.sort()
    for _, r, g in offers:
        if reg.gids[r] == 0 and (g, video) not in state.videos:
            reg.gids[r] = g
            state.join(g, reg.voices[r], video)
    for r in rows.tolist():
        if reg.gids[r] == 0:
            reg.gids[r] = reg.next_global
            reg.next_global += 1
            state.join(int(reg.gids[r]), reg.voices[r], video)


def write_global_speakers(out_root, global_similarity: float) -> int:
    """Bring the registry up to date with every committed video's speakers, link the new ones,
    and rewrite `global_speakers.parquet`; returns how many global speakers it names."""
    paths = layout.OutputPaths(out_root)
    reg = Registry.load(paths)
    fresh = reg.generation == 0
    rows, changed = sync(reg, paths)
    if fresh and paths.global_speakers.is_file():
        rows = seed(reg, rows, paths.global_speakers)
    link(reg, rows, global_similarity)
    if changed:
        reg.save(paths)
    if not len(reg):
        paths.global_speakers.unlink(missing_ok=True)
        return 0
    atomic.write_parquet(reg.mapping(), paths.global_speakers)
    return len(set(reg.gids[reg.gids > 0].tolist()))


def seed(reg: Registry, rows: np.ndarray, mapping) -> np.ndarray:
    """An output linked before the registry existed keeps the ids its global_speakers.parquet gave
    (where they keep two speakers of one video apart: the old clustering did not always); returns
    the rows still to link."""
    import pyarrow.parquet as pq

    old = {r["speaker_id"]: r["global_speaker_id"] for r in pq.read_table(mapping, columns=["speaker_id", "global_speaker_id"]).to_pylist()}
    taken: set[tuple[str, int]] = set()
    for r in rows.tolist():
        g = old.get(reg.speaker_ids[r]) or ""
        number = int(g[1:]) if g[:1] == "G" and g[1:].isdigit() else 0
        if number and reg.labels[r] >= 0 and (reg.video_ids[r], number) not in taken:
            reg.gids[r] = number
            taken.add((reg.video_ids[r], number))
            reg.next_global = max(reg.next_global, number + 1)
    if reg.index is None and reg.dim:
        reg.index = VoiceIndex(reg.dim)
    done = np.asarray([r for r in rows.tolist() if reg.gids[r] > 0], dtype=np.int64)
    if len(done):
        reg.index.add(reg.labels[done], reg.voices[done])
    return np.asarray([r for r in rows.tolist() if reg.gids[r] == 0], dtype=np.int64)


def link_across_videos(speakers: Sequence[tuple[str, Sequence[float]]], global_similarity: float) -> dict[str, Optional[str]]:
    """`global_speaker_id` per `<video>_S<k>` speaker id, linked in the order given (no registry on
    disk: for tests and one-off use)."""
    reg = Registry()
    dim = next((len(e) for _, e in speakers if len(e)), 0)
    reg.dim, reg.voices = dim, np.zeros((0, dim), dtype=np.float32)
    order = sorted(range(len(speakers)), key=lambda i: speakers[i][0].rsplit("_S", 1)[0])  # a video's speakers together
    vec = np.zeros((len(speakers), dim), dtype=np.float32)
    for j, i in enumerate(order):
        if len(speakers[i][1]):
            v = np.asarray(speakers[i][1], dtype=np.float32)
            vec[j] = v / max(1e-12, float(np.linalg.norm(v)))
    sids = [speakers[i][0] for i in order]
    reg.add(sids, sids, [s.rsplit("_S", 1)[0] for s in sids], vec, np.zeros(len(sids), dtype=np.int64))
    link(reg, np.arange(len(reg)), global_similarity)
    return {sid: (f"G{g}" if g else None) for sid, g in zip(reg.speaker_ids, reg.gids.tolist())}
