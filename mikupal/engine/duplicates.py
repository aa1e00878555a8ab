"""The duplicate check at commit (`speaker/duplicates.py` decides what is a copy): each video's kept
segments against every kept segment committed before it, of any video, and against each other.

The copy first in the fixed keep order (source path, then start) stays. A committed segment can
therefore lose its place to a video committed after it (videos finish in any order): that video's
files are rewritten (`drop_segments`: its rows, rejects, speakers and marker, its copy's audio and
clip removed), so the same input always ends with the same copy kept. The later copy becomes a
`duplicate_segment` reject (stage `dedup`) whose message names the kept one; rejects that named a
segment which has since given way are named anew.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pyarrow.parquet as pq

from ..committed import VideoSummary
from ..config import DuplicatesConfig
from ..layout import OutputPaths
from ..records import DatasetSegment, Reject, Speaker
from ..speaker.duplicates import DUPLICATE_SEGMENT, DuplicateIndex, DuplicateRules, Match, Utterance, compare, utterance
from ..speaker.identity import mean_embedding

STAGE = "dedup"
_INDEX_COLUMNS = ("segment_id", "video_id", "source", "start", "end", "words", "speaker_embedding")
_NAMED = re.compile(r"^same speech as (\S+) ")  # the kept segment a duplicate reject names (Match.message)


def rules_of(cfg: DuplicatesConfig) -> Optional[DuplicateRules]:
    """The matcher's rules from the config, or None when the check is off."""
    if cfg.kind == "none":
        return None
    return DuplicateRules(min_words=cfg.min_words, min_coverage=cfg.min_coverage, max_timing_s=cfg.max_timing_s,
                          min_voice_similarity=cfg.min_voice_similarity)


@dataclass
class Verdict:
    """What one commit changes: this video's copies (segment id -> the match naming the kept one);
    committed segments of other videos it displaces (video key -> their matches); and rejects of
    other videos that named a displaced segment, named anew (video key -> item id -> message)."""

    copies: dict[str, Match] = field(default_factory=dict)
    displaced: dict[str, list[Match]] = field(default_factory=dict)
    renamed: dict[str, dict[str, str]] = field(default_factory=dict)

    def touched(self) -> list[str]:
        """The other videos whose files change, in a fixed order."""
        return sorted(set(self.displaced) | set(self.renamed))


class DuplicateGate:
    """The kept segments of an output dir, indexed; `check` finds a committing video's copies."""

    def __init__(self, root: Path, rules: Optional[DuplicateRules]):
        self.rules = rules
        self.index = DuplicateIndex(rules or DuplicateRules())
        self.key_of: dict[str, str] = {}  # segment id -> the video key whose files hold it
        # kept segment id -> the rejected copies that name it: (their video key, segment id, utterance)
        self.named: dict[str, list[tuple[str, str, Optional[Utterance]]]] = {}
        if rules is not None:
            self._load(OutputPaths(root))

    def _load(self, paths: OutputPaths) -> None:
        for path in sorted(paths.dir("segments").glob("*.parquet")):
            have = set(pq.read_schema(path).names)
            for row in pq.read_table(path, columns=[c for c in _INDEX_COLUMNS if c in have]).to_pylist():
                self.index.add(utterance(row))
                self.key_of[row["segment_id"]] = path.stem
        for path in sorted(paths.dir("rejects").glob("*.parquet")):
            for r in pq.read_table(path, columns=["item_id", "reason", "message"]).to_pylist():
                m = _NAMED.match(r["message"] or "") if r["reason"] == DUPLICATE_SEGMENT else None
                if m:
                    self.named.setdefault(m.group(1), []).append((path.stem, r["item_id"], None))

    def forget(self, key: str) -> None:
        """A video about to be redone: its old rows are no copies of anything."""
        for sid in [s for s, k in self.key_of.items() if k == key]:
            self.key_of.pop(sid)
            self.index.remove(sid)
        for kept, names in self.named.items():
            self.named[kept] = [n for n in names if n[0] != key]

    def check(self, key: str, rows: list[DatasetSegment]) -> Verdict:
        """This video's copies and what it changes in committed videos; indexes what stays."""
        v = Verdict()
        if self.rules is None:
            return v
        for u in sorted((utterance(r.model_dump()) for r in rows), key=lambda x: x.key):
            found = self.index.matches(u)
            earlier = [m for m in found if m.copy is u]
            if earlier:
                v.copies[u.segment_id] = earlier[0]
                self.named.setdefault(earlier[0].kept.segment_id, []).append((key, u.segment_id, u))
                continue
            for m in found:  # u comes first: every committed copy of it goes
                self._displace(m, key, v)
            self.index.add(u)
            self.key_of[u.segment_id] = key
        return v

    def _displace(self, m: Match, key: str, v: Verdict) -> None:
        """`m.copy`, committed in another video, gives way to `m.kept` (committing in `key`)."""
        gone, u = m.copy, m.kept
        other = self.key_of.pop(gone.segment_id)
        self.index.remove(gone.segment_id)
        v.displaced.setdefault(other, []).append(m)
        self.named.setdefault(u.segment_id, []).append((other, gone.segment_id, gone))
        for where, sid, copy in self.named.pop(gone.segment_id, []):
            direct = compare(copy, u, self.rules) if copy is not None else None
            message = direct.message() if direct is not None else (
                f"same speech as {u.segment_id} ({u.source} {u.start:.2f}-{u.end:.2f} s), by way of {gone.segment_id} "
                "that it repeats and that repeats this one")
            (self.named.setdefault(u.segment_id, [])).append((where, sid, copy))
            if where == key:  # a copy in the committing video itself: its reject is being written now
                v.copies[sid] = direct or v.copies[sid]
            else:
                v.renamed.setdefault(where, {})[sid] = message


def drop_segments(rows: list[DatasetSegment], rejects: list[Reject], summary: VideoSummary,
                  matches: dict[str, Match]) -> tuple[list[DatasetSegment], list[Reject]]:
    """`rows` less the copies in `matches`, each turned into a `duplicate_segment` reject; the
    summary (kept counts, the funnel's last step, emotions, speakers) follows."""
    gone = [r for r in rows if r.segment_id in matches]
    if not gone:
        return rows, rejects
    rows = [r for r in rows if r.segment_id not in matches]
    rejects = rejects + [Reject(item_id=r.segment_id, video_id=r.video_id, source=r.source, stage=STAGE,
                                reason=DUPLICATE_SEGMENT, message=matches[r.segment_id].message(), start=r.start,
                                end=r.end) for r in gone]
    seconds = sum(r.duration for r in gone)
    summary.kept, summary.kept_seconds = len(rows), max(0.0, summary.kept_seconds - seconds)
    summary.rejects += len(gone)
    if summary.funnel:
        summary.funnel[-1].count = max(0, summary.funnel[-1].count - len(gone))
        summary.funnel[-1].seconds = max(0.0, summary.funnel[-1].seconds - seconds)
    summary.primary_emotions = [r.primary_emotion for r in rows if r.primary_emotion]
    summary.speakers = _speakers_left(summary.speakers, rows)
    return rows, rejects


def _speakers_left(speakers: list[Speaker], rows: list[DatasetSegment]) -> list[Speaker]:
    out = []
    for sp in speakers:
        mine = [r for r in rows if r.speaker_id == sp.speaker_id]
        if mine:
            out.append(sp.model_copy(update={"segments": len(mine), "seconds": round(sum(r.duration for r in mine), 3),
                                              "embedding": mean_embedding([r.speaker_embedding for r in mine])}))
    return out


def media_of(rows: list[DatasetSegment]) -> list[str]:
    """The audio and clip files (relative paths) of rows that leave the dataset."""
    return [p for r in rows for p in (r.audio_path, r.clip_path) if p]
