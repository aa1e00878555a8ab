"""Global speaker ids across videos: incremental, stable, and never two speakers of one video.

A registry in the output dir remembers every per-video speaker it has linked, with its mean voice
and the global id (`G<k>`) it was given. At the end of each run only what changed is read (the
`speakers/<key>.parquet` files whose size or time differ from what the registry saw), and only new
speakers are linked: an id, once given, never changes, and a number is never given twice. A redone
video (a resumed run) whose speakers come back with the same voices keeps their ids.

Linking a new speaker is average linkage against the global speakers near it: a nearest-neighbour
index (`speaker/voice_index.py`) over all linked per-video voices gives candidates, the exact average
similarity to each candidate's members is `sum(members) . v / n` (unit vectors), and the speaker
joins the most similar one at `global_similarity` or more that holds no speaker of its own video
(a cannot-link: two speakers of one video are two people); otherwise it is a new person. Speakers
of one video are placed most-similar-first, so the best match wins a contested global speaker.

Files (`layout.OutputPaths`): `global_speakers/registry.json` names the current generation of
`voices.<gen>.parquet` (RegistryVoice rows) and `index.<gen>.usearch`; the manifest is replaced
last, so a crash at any point leaves the previous generation whole. `global_speakers.parquet`
(speaker_id, video_id, global_speaker_id) is rewritten from the registry after every update.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa

from .. import atomic, layout
from ..records import GlobalSpeaker, RegistryVoice
from .voice_index import VoiceIndex

log = logging.getLogger("mikupal")

FORMAT = 1
#: candidates per new speaker from the index (its recall at this size: benchmarks/identity_scale.py)
NEIGHBOURS = 32
#: a known speaker whose voice is at least this alike when its video is redone keeps its global id
SAME_VOICE = 0.999


@dataclass
class Registry:
    """The registry in memory: one row per per-video speaker, columns as arrays."""

    dim: int = 0
    generation: int = 0
    next_global: int = 1  # the number of the next new global speaker (never reused)
    next_label: int = 0  # the next index key (never reused)
    files: dict[str, str] = field(default_factory=dict)  # key -> "mtime_ns:size" of speakers/<key>.parquet seen
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    keys: list[str] = field(default_factory=list)
    speaker_ids: list[str] = field(default_factory=list)
    video_ids: list[str] = field(default_factory=list)
    gids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # 0: no voice, no global id
    voices: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    index: Optional[VoiceIndex] = None

    def __len__(self) -> int:
        return len(self.speaker_ids)

    # ---------------------------------------------------------------- files

    @classmethod
    def load(cls, paths: layout.OutputPaths) -> "Registry":
        """The registry as last saved. Empty (generation 0) when there is none: a new output dir,
        one linked before the registry existed, or a registry damaged by hand (then the ids of
        global_speakers.parquet are taken over: `global_ids.seed`)."""
        if not paths.global_registry.is_file():
            return cls()
        try:
            return cls._read(paths)
        except Exception as e:  # noqa: BLE001 - a damaged registry is rebuilt, never a failed run
            log.warning("the global speaker registry in %s is unreadable (%s): starting it again from %s",
                        paths.global_registry.parent, e, paths.global_speakers.name)
            return cls()

    @classmethod
    def _read(cls, paths: layout.OutputPaths) -> "Registry":
        meta = json.loads(paths.global_registry.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, not {FORMAT}")
        reg = cls(dim=int(meta["dim"]), generation=int(meta["generation"]), next_global=int(meta["next_global"]),
                  next_label=int(meta["next_label"]), files=dict(meta["files"]))
        import pyarrow.parquet as pq

        t = pq.read_table(paths.global_voices(reg.generation))
        reg.labels = t.column("label").to_numpy().astype(np.int64)
        reg.keys, reg.speaker_ids, reg.video_ids = (t.column(c).to_pylist() for c in ("key", "speaker_id", "video_id"))
        reg.gids = np.array([int(g[1:]) if g else 0 for g in t.column("global_speaker_id").to_pylist()], dtype=np.int64)
        flat = t.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        reg.voices = np.asarray(flat, dtype=np.float32).reshape(len(t), reg.dim) if reg.dim else np.zeros((len(t), 0), np.float32)
        voiced = reg.labels >= 0
        if reg.dim:
            reg.index = VoiceIndex.load(paths.global_index(reg.generation), reg.dim, int(voiced.sum()))
            if reg.index is None:  # lost or damaged: the voices are the truth
                reg.index = VoiceIndex(reg.dim)
                reg.index.add(reg.labels[voiced], reg.voices[voiced])
        return reg

    def save(self, paths: layout.OutputPaths) -> None:
        """A new generation of the files, then the manifest that names it, then the old ones go."""
        self.generation += 1
        atomic.write_parquet(self.table(), paths.global_voices(self.generation))
        if self.index is not None:
            with atomic.replacing(paths.global_index(self.generation)) as tmp:
                self.index.save(tmp)
        meta = {"format": FORMAT, "dim": self.dim, "generation": self.generation, "next_global": self.next_global,
                "next_label": self.next_label, "speakers": len(self), "files": self.files}
        atomic.write_text(paths.global_registry, json.dumps(meta))
        current = {paths.global_registry.name, paths.global_voices(self.generation).name, paths.global_index(self.generation).name}
        for p in paths.global_registry.parent.iterdir():  # earlier generations, and what an interrupted save left
            if p.name not in current:
                p.unlink(missing_ok=True)

    def table(self) -> pa.Table:
        n, d = len(self), self.dim
        emb = pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32) * d),
                                       pa.array(self.voices.reshape(-1), type=pa.float32()))
        cols = [pa.array(self.labels, pa.int64()), pa.array(self.keys, pa.string()), pa.array(self.speaker_ids, pa.string()),
                pa.array(self.video_ids, pa.string()), pa.array(self.global_ids(), pa.string()), emb]
        return pa.Table.from_arrays(cols, schema=RegistryVoice.arrow_schema())

    def global_ids(self) -> list[str]:
        return [f"G{g}" if g else "" for g in self.gids.tolist()]

    def mapping(self) -> pa.Table:
        """`global_speakers.parquet`: speaker_id, video_id, global_speaker_id, by speaker id."""
        order = sorted(range(len(self)), key=self.speaker_ids.__getitem__)
        gid = self.global_ids()
        cols = [pa.array([self.speaker_ids[i] for i in order], pa.string()), pa.array([self.video_ids[i] for i in order], pa.string()),
                pa.array([gid[i] for i in order], pa.string())]
        return pa.Table.from_arrays(cols, schema=GlobalSpeaker.arrow_schema())

    # ---------------------------------------------------------------- changes

    def keep(self, rows: np.ndarray) -> None:
        """Keep only `rows` (bool mask); the others leave the index."""
        gone = self.labels[~rows]
        if self.index is not None and (gone >= 0).any():
            self.index.remove(gone[gone >= 0])
        self.labels, self.gids, self.voices = self.labels[rows], self.gids[rows], self.voices[rows]
        pick = np.flatnonzero(rows).tolist()
        self.keys, self.speaker_ids, self.video_ids = ([xs[i] for i in pick] for xs in (self.keys, self.speaker_ids, self.video_ids))

    def add(self, keys: list[str], speaker_ids: list[str], video_ids: list[str], voices: np.ndarray, gids: np.ndarray) -> None:
        """Append rows; those with a voice get index labels (the index itself is filled by `link`)."""
        if len(keys) == 0:
            return
        has = np.abs(voices).sum(axis=1) > 0
        labels = np.full(len(keys), -1, dtype=np.int64)
        labels[has] = self.next_label + np.arange(int(has.sum()))
        self.next_label += int(has.sum())
        self.labels = np.concatenate([self.labels, labels])
        self.gids = np.concatenate([self.gids, gids.astype(np.int64)])
        self.voices = np.concatenate([self.voices, voices.astype(np.float32).reshape(len(keys), self.dim)])
        self.keys, self.speaker_ids, self.video_ids = self.keys + keys, self.speaker_ids + speaker_ids, self.video_ids + video_ids


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_mtime_ns}:{st.st_size}"


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(1e-12, np.linalg.norm(x, axis=1, keepdims=True))


def _read_speakers(path: Path) -> tuple[list[str], list[str], list[np.ndarray]]:
    """(speaker ids, video ids, voices) of one speakers/<key>.parquet, without a row object each."""
    import pyarrow.parquet as pq

    # ParquetFile, one thread: a speakers file is tiny, and read_table's dataset layer costs more than the read
    t = pq.ParquetFile(path).read(columns=["speaker_id", "video_id", "embedding"], use_threads=False)
    emb = t.column("embedding").combine_chunks()
    offsets = emb.offsets.to_numpy()
    flat = emb.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    voices = [flat[offsets[i]:offsets[i + 1]] for i in range(len(t))]
    return t.column("speaker_id").to_pylist(), t.column("video_id").to_pylist(), voices


def sync(reg: Registry, paths: layout.OutputPaths) -> tuple[np.ndarray, bool]:
    """Bring the registry in line with `speakers/`: rows of videos that are gone or whose speakers
    changed leave it, speakers not linked yet join it without a global id. Returns (the rows to
    link, whether anything changed). Only files whose size or time differ are read."""
    folder = paths.dir(layout.SPEAKERS)
    on_disk = {}
    if folder.is_dir():
        with os.scandir(folder) as it:
            on_disk = {e.name[: -len(".parquet")]: _stamp(Path(e.path)) for e in it if e.name.endswith(".parquet") and e.is_file()}
    changed = sorted(k for k, st in on_disk.items() if reg.files.get(k) != st)
    gone = set(reg.files) - set(on_disk)
    if not changed and not gone:
        return np.zeros(0, dtype=np.int64), False
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # Arrow reads release the GIL
        fresh = dict(zip(changed, pool.map(_read_speakers, [paths.speakers(k) for k in changed])))
    if not reg.dim:
        reg.dim = next((len(v) for _, _, vs in fresh.values() for v in vs if len(v)), 0)
        reg.voices = np.zeros((len(reg), reg.dim), dtype=np.float32)
    keep = np.ones(len(reg), dtype=bool)
    kept: set[tuple[str, str]] = set()
    row_of = {(k, sid): i for i, (k, sid) in enumerate(zip(reg.keys, reg.speaker_ids))}
    for i, k in enumerate(reg.keys):
        keep[i] = k not in gone and k not in fresh
    for k, (sids, _, voices) in fresh.items():
        for sid, v in zip(sids, voices):
            i = row_of.get((k, sid))
            if i is not None and _same_voice(reg.voices[i], v):
                keep[i] = True
                kept.add((k, sid))
    reg.keep(keep)
    new = [(k, sid, vid, v) for k, (sids, vids, voices) in fresh.items() for sid, vid, v in zip(sids, vids, voices)
           if (k, sid) not in kept]
    start = len(reg)
    vec = np.zeros((len(new), reg.dim), dtype=np.float32)
    for j, (_, _, _, v) in enumerate(new):
        if len(v) == reg.dim and reg.dim:
            vec[j] = v
    reg.add([x[0] for x in new], [x[1] for x in new], [x[2] for x in new], _unit(vec) * (np.abs(vec).sum(axis=1, keepdims=True) > 0),
            np.zeros(len(new), dtype=np.int64))
    reg.files = on_disk
    return np.arange(start, len(reg)), True


def _same_voice(old: np.ndarray, new: np.ndarray) -> bool:
    """A known speaker of a redone video: unchanged when its voice is (or both have none)."""
    if len(new) != len(old) or not np.abs(old).sum():
        return not len(new) and not np.abs(old).sum()
    return float(old @ new) / max(1e-12, float(np.linalg.norm(old) * np.linalg.norm(new))) >= SAME_VOICE
