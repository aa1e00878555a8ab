"""The output directory and its per-video atomic commit: what makes runs resumable and idempotent.

Layout (all relative to the output dir):
  segments/<video_id>.parquet   kept utterances (DatasetSegment rows)
  rejects/<key>.parquet         dropped videos and segments (Reject rows)
  audio/<video_id>/<segment_id>.flac, clips/<video_id>/<segment_id>.mp4
  .state/done/<key>.json        the commit marker: written last, by rename
  .work/                        scratch media (separated vocals), removed after commit

A video counts as done only when its marker exists. On start, files of videos without a
marker are removed and the video is redone, so a crash at any moment (SIGKILL included) ends,
after a re-run, in exactly the rows of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Iterable, Optional

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from ..ids import check_key
from ..records import DatasetSegment, Record, Reject
from ..stages.base import StageTime, WorkItem


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
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    funnel: list[FunnelCounts] = Field(default_factory=list)
    times: list[StageTime] = Field(default_factory=list)
    primary_emotions: list[str] = Field(default_factory=list)
    final: bool = True  # False: the pipeline lost the video (worker died); a re-run redoes it


FUNNEL_STAGES = ("input", "probe", "vad", "segments", "vision", "label")

#: reasons that say nothing about the data (a crash, a full disk, a lost worker, a flaky, garbled or
#: unpaid labeler API): a video with such a reject is committed with final=False, so the next run
#: redoes it instead of skipping it, and a resumed run ends equal to one that never met the fault
RETRY_REASONS = frozenset({
    "stage_error", "out_of_memory", "worker_lost", "disk_full",
    "labeler_rate_limited", "labeler_server_error", "labeler_timeout", "labeler_connection_error",
    "labeler_invalid_output", "labeler_auth_error", "budget_exhausted",
})


def _atomic_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not keep the half-written file's space
        raise


def _atomic_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def dataset_row(item: WorkItem, sample_rate: int) -> DatasetSegment:
    seg = item.segment
    assert seg is not None
    ann = item.annotation
    return DatasetSegment(
        segment_id=seg.segment_id,
        video_id=item.video_id,
        source=item.source,
        start=seg.start,
        end=seg.end,
        duration=seg.end - seg.start,
        text=seg.text,
        language=seg.language,
        language_probability=seg.language_probability,
        words=seg.words,
        audio_path=item.audio_path or "",
        clip_path=item.clip_path or "",
        sample_rate=sample_rate,
        speaker_boxes=item.speaker_boxes,
        asd_score=item.asd_score if item.asd_score is not None else 0.0,
        speaking_fraction=item.speaking_fraction or 0.0,
        snr_db=seg.snr_db,
        dnsmos_sig=item.dnsmos_sig,
        dnsmos_bak=item.dnsmos_bak,
        dnsmos_ovrl=item.dnsmos_ovrl,
        dnsmos_p808=item.dnsmos_p808,
        emotions=ann.emotions if ann else [],
        primary_emotion=ann.primary_emotion if ann else None,
        rationale=ann.rationale if ann else None,
        face_analysis=ann.face_analysis if ann else None,
        voice_analysis=ann.voice_analysis if ann else None,
        text_analysis=ann.text_analysis if ann else None,
        emotion_agreement=ann.agreement if ann else None,
        labeler_model=ann.labeler_model if ann else None,
        prompt_version=ann.prompt_version if ann else None,
        input_tokens=ann.input_tokens if ann else 0,
        output_tokens=ann.output_tokens if ann else 0,
        cost_usd=ann.cost_usd if ann else 0.0,
    )


def summarize(key: str, items: list[WorkItem]) -> tuple[list[DatasetSegment], list[Reject], VideoSummary]:
    """Split a finished video's items into kept rows and rejects, and count its funnel."""
    first = items[0]
    video = next((i.video for i in items if i.video is not None), None)
    duration = video.duration if video else 0.0
    summary = VideoSummary(key=key, video_id=first.video_id, source=first.source, duration=duration)
    rows: list[DatasetSegment] = []
    rejects: list[Reject] = []
    times: dict[str, float] = {}
    seg_items = [i for i in items if i.segment is not None]
    dropped_at = {}
    for it in items:
        rejects.extend(it.rejects)
        for t in it.times:
            times[t.stage] = times.get(t.stage, 0.0) + t.seconds
    sample_rate = 0
    for it in seg_items:
        if it.status == "segment":
            rows.append(dataset_row(it, sample_rate))
        else:
            stage = it.rejects[-1].stage if it.rejects else "unknown"
            dropped_at[it.segment.segment_id] = stage
    video_level_drop = not seg_items and any(i.status == "dropped" for i in items)
    probe_ok = video is not None and video.has_audio and video.has_video
    speech = max((i.speech_seconds for i in items), default=0.0)

    def seconds(its):
        return sum(i.segment.end - i.segment.start for i in its)

    after_vision = [i for i in seg_items if dropped_at.get(i.segment.segment_id) not in ("vision",)]
    after_label = [i for i in after_vision if i.status == "segment"]
    summary.funnel = [
        FunnelCounts(stage="input", count=1, seconds=duration),
        FunnelCounts(stage="probe", count=int(probe_ok), seconds=duration if probe_ok else 0.0),
        FunnelCounts(stage="vad", count=int(speech > 0), seconds=speech),
        FunnelCounts(stage="segments", count=len(seg_items), seconds=seconds(seg_items)),
        FunnelCounts(stage="vision", count=len(after_vision), seconds=seconds(after_vision)),
        FunnelCounts(stage="label", count=len(after_label), seconds=seconds(after_label)),
    ]
    summary.kept = len(rows)
    summary.kept_seconds = sum(r.duration for r in rows)
    summary.rejects = len(rejects)
    summary.cost_usd = sum(i.annotation.cost_usd for i in items if i.annotation)
    summary.input_tokens = sum(i.annotation.input_tokens for i in items if i.annotation)
    summary.output_tokens = sum(i.annotation.output_tokens for i in items if i.annotation)
    summary.times = [StageTime(stage=k, seconds=v) for k, v in times.items()]
    summary.primary_emotions = [r.primary_emotion for r in rows if r.primary_emotion]
    summary.final = not any(r.reason in RETRY_REASONS for r in rejects)
    if video_level_drop and not rejects:  # never silent: a dropped video always says why
        rejects.append(Reject(item_id=key, video_id=first.video_id, source=first.source, stage="unknown", reason="dropped_without_reason"))
        summary.rejects = 1
    return rows, rejects, summary


class OutputDir:
    def __init__(self, root: str | os.PathLike, sample_rate: int = 44100):
        self.root = Path(root)
        self.sample_rate = sample_rate
        for sub in ("segments", "rejects", ".state/done"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------- state

    def marker(self, key: str) -> Path:
        return self.root / ".state" / "done" / f"{check_key(key)}.json"

    def is_done(self, key: str) -> bool:
        p = self.marker(key)
        if not p.is_file():
            return False
        try:
            return VideoSummary.model_validate_json(p.read_text(encoding="utf-8")).final
        except ValueError:
            return False

    def summaries(self) -> list[VideoSummary]:
        out = []
        for p in sorted((self.root / ".state" / "done").glob("*.json")):
            out.append(VideoSummary.model_validate_json(p.read_text(encoding="utf-8")))
        return out

    def clear_unfinished(self, key: str) -> None:
        """Remove what a crashed attempt may have left for a video that has no marker."""
        check_key(key)
        for p in (self.root / "segments" / f"{key}.parquet", self.root / "rejects" / f"{key}.parquet", self.marker(key)):
            p.unlink(missing_ok=True)
        for sub in ("audio", "clips", "debug"):
            shutil.rmtree(self.root / sub / key, ignore_errors=True)
        shutil.rmtree(self.root / ".work" / key, ignore_errors=True)

    def sweep_partials(self) -> None:
        """Temporary files are never part of the dataset: a crash may leave some behind."""
        for pattern in ("segments/*.tmp", "rejects/*.tmp", ".state/done/*.tmp"):
            for p in self.root.glob(pattern):
                p.unlink(missing_ok=True)

    # ---------------------------------------------------------------- commit

    def commit_video(self, key: str, items: list[WorkItem]) -> VideoSummary:
        rows, rejects, summary = summarize(key, items)
        for r in rows:
            r.sample_rate = self.sample_rate
        self._commit(key, rows, rejects, summary)
        shutil.rmtree(self.root / ".work" / key, ignore_errors=True)
        return summary

    def commit_rejects(
        self, key: str, rejects: list[Reject], source: str, video_id: str = "", final: bool = True
    ) -> VideoSummary:
        """An input that never reached a stage (missing, duplicate ...) or that the pipeline lost."""
        summary = VideoSummary(key=key, video_id=video_id, source=source, rejects=len(rejects), final=final)
        summary.funnel = [FunnelCounts(stage=s, count=int(s == "input"), seconds=0.0) for s in FUNNEL_STAGES]
        self._commit(key, [], rejects, summary)
        return summary

    def _commit(self, key: str, rows: list[DatasetSegment], rejects: list[Reject], summary: VideoSummary) -> None:
        """Rows, rejects, then the marker; a failure on the way (a full disk) leaves no file of the video."""
        check_key(key)  # before anything is written or removed
        try:
            self._write(key, rows, rejects)
            _atomic_text(summary.model_dump_json(), self.marker(key))
        except BaseException:
            for p in (self.root / "segments" / f"{key}.parquet", self.root / "rejects" / f"{key}.parquet"):
                p.unlink(missing_ok=True)
            raise

    def _write(self, key: str, rows: list[DatasetSegment], rejects: list[Reject]) -> None:
        check_key(key)
        seg_path = self.root / "segments" / f"{key}.parquet"
        rej_path = self.root / "rejects" / f"{key}.parquet"
        if rows:
            rows.sort(key=lambda r: r.start)
            _atomic_parquet(DatasetSegment.to_table(rows), seg_path)
        else:
            seg_path.unlink(missing_ok=True)
        if rejects:
            _atomic_parquet(Reject.to_table(rejects), rej_path)
        else:
            rej_path.unlink(missing_ok=True)

    # ---------------------------------------------------------------- reading

    def read_segments(self) -> pa.Table:
        return _read_dir(self.root / "segments", DatasetSegment.arrow_schema())

    def read_rejects(self) -> pa.Table:
        return _read_dir(self.root / "rejects", Reject.arrow_schema())


def _read_dir(path: Path, schema: pa.Schema) -> pa.Table:
    files = sorted(path.glob("*.parquet"))
    if not files:
        return schema.empty_table()
    return pa.concat_tables([pq.read_table(f, schema=schema) for f in files])
