"""A committed output dir, read back: the commit markers, the segment and reject tables, the skip list.

`engine/commit.py` writes these files (its `OutputDir` extends `CommittedOutput` with the commit);
the report, `mikupal label` and the resume check read them here, so no reader needs the engine.
Paths come from `layout.OutputPaths`.

    .state/done/<key>.json        one VideoSummary per committed video (written last: the commit)
    .state/skipped_files.json     the latest run's input files that are not media
    segments/*.parquet, rejects/*.parquet
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from . import layout
from .ids import check_key
from .layout import OutputPaths
from .records import DatasetSegment, Record, Reject, Speaker, StageTime

#: the funnel's steps, in order: how much of each video survived up to each of them
FUNNEL_STAGES = ("input", "probe", "vad", "segments", "vision", "label")


class FunnelCounts(Record):
    """Per video: how much survived each stage (count of items, seconds of media)."""

    stage: str
    count: int
    seconds: float


class VideoSummary(Record):
    """What the commit marker holds: enough to rebuild report.json without reading media."""

    key: str
    video_id: str
    source: str
    duration: float = 0.0
    kept: int = 0
    kept_seconds: float = 0.0
    rejects: int = 0
    cost_usd: Optional[float] = 0.0  # None: some labeled segment has no known price
    input_tokens: int = 0
    output_tokens: int = 0
    funnel: list[FunnelCounts] = Field(default_factory=list)
    times: list[StageTime] = Field(default_factory=list)
    primary_emotions: list[str] = Field(default_factory=list)
    speakers: list[Speaker] = Field(default_factory=list)
    final: bool = True  # False: the pipeline lost the video (worker died); a re-run redoes it


class CommittedOutput:
    """Read access to what the commits of an output dir wrote; creates nothing."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.paths = OutputPaths(self.root)

    def marker(self, key: str) -> Path:
        return self.paths.marker(check_key(key))

    def is_done(self, key: str) -> bool:
        """Committed as final: a video committed as not final (a transient failure) is redone."""
        summary = self.summary(key)
        return summary is not None and summary.final

    def summary(self, key: str) -> Optional[VideoSummary]:
        """The video's commit marker, or None when it has none (or an unreadable one)."""
        p = self.marker(key)
        if not p.is_file():
            return None
        try:
            return VideoSummary.model_validate_json(p.read_text(encoding="utf-8"))
        except ValueError:
            return None

    def summaries(self) -> list[VideoSummary]:
        out = []
        for p in sorted(self.paths.dir(layout.DONE).glob("*.json")):
            out.append(VideoSummary.model_validate_json(p.read_text(encoding="utf-8")))
        return out

    def read_segments(self) -> pa.Table:
        return _read_dir(self.paths.dir(layout.SEGMENTS), DatasetSegment.arrow_schema())

    def read_rejects(self) -> pa.Table:
        return _read_dir(self.paths.dir(layout.REJECTS), Reject.arrow_schema())

    def skipped(self) -> list[dict]:
        """The latest run's input files that are not media (`engine/inputs.write_skipped`)."""
        try:
            return json.loads(self.paths.skipped_files.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []


def _read_dir(path: Path, schema: pa.Schema) -> pa.Table:
    files = sorted(path.glob("*.parquet"))
    if not files:
        return schema.empty_table()
    return pa.concat_tables([pq.read_table(f, schema=schema) for f in files])
