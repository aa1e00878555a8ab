"""The output directory and its per-video atomic commit: what makes runs resumable and idempotent.

Layout (all relative to the output dir):
  segments/<video_id>.parquet   kept utterances (DatasetSegment rows)
  rejects/<key>.parquet         dropped videos and segments (Reject rows)
  speakers/<key>.parquet        the video's speakers (Speaker rows); speakers/<key>/<speaker_id>.jpg their faces
  global_speakers.parquet       per-video speakers linked across videos by voice (at the end of a run; global_speakers/ holds the registry)
  audio/<video_id>/<segment_id>.flac, clips/<video_id>/<segment_id>.mp4
  labeler/pending/<key>.parquet rows of the segments the labeler rejected (unlabeled), kept so that
                                `mikupal label` can label them again (see commands/label.py)
  .state/done/<key>.json        the commit marker: written last, by rename
  .work/                        scratch media (separated vocals), removed after commit

A video counts as done only when its marker exists. On start, files of videos without a
marker are removed and the video is redone, so a crash at any moment (SIGKILL included) ends,
after a re-run, in exactly the rows of an uninterrupted run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import atomic, layout, media
from ..committed import FUNNEL_STAGES, CommittedOutput, FunnelCounts, VideoSummary
from ..describe import describe_columns
from ..ids import check_key
from ..layout import OutputPaths
from ..reasons import RETRY_REASONS  # which rejects are redone on resume
from ..records import DatasetSegment, Reject, Speaker, StageTime, WorkItem
from ..speaker.duplicates import DuplicateRules
from ..speaker.identity import IdentityRules, SegmentVoice, mean_embedding, speaker_ids
from .duplicates import DuplicateGate, drop_segments, media_of


def _atomic_parquet(table: pa.Table, path: Path) -> None:
    atomic.write_parquet(table, path)


def _atomic_text(text: str, path: Path) -> None:
    atomic.write_text(path, text)


def dataset_row(item: WorkItem, sample_rate: int) -> DatasetSegment:
    seg = item.data.segment
    assert seg is not None
    ann = item.data.annotation
    row = DatasetSegment(
        segment_id=seg.segment_id,
        video_id=item.video_id,
        source=item.source,
        start=seg.start,
        end=seg.end,
        duration=seg.end - seg.start,
        text=seg.text,
        language=seg.language,
        language_probability=seg.language_probability,
        avg_logprob=seg.avg_logprob,
        words=seg.words,
        audio_path=item.data.audio_path or "",
        clip_path=item.data.clip_path or "",
        sample_rate=sample_rate,
        speaker_boxes=item.data.speaker_boxes,
        asd_score=item.data.asd_score if item.data.asd_score is not None else 0.0,
        speaking_fraction=item.data.speaking_fraction or 0.0,
        speaker_embedding=item.data.speaker_embedding,
        snr_db=seg.snr_db,
        dnsmos_sig=item.data.dnsmos_sig,
        dnsmos_bak=item.data.dnsmos_bak,
        dnsmos_ovrl=item.data.dnsmos_ovrl,
        dnsmos_p808=item.data.dnsmos_p808,
        **(item.data.prosody.model_dump() if item.data.prosody else {}),
        **(ann.row_columns() if ann else {}),  # unlabeled: the columns' defaults
    )
    return describe_row(row)


def describe_row(row: DatasetSegment) -> DatasetSegment:
    """The bins of the row's measurements (pitch relative to its perceived gender), and a caption
    made from them where the labeler wrote none (`caption_source` says which)."""
    return row.model_copy(update=describe_columns(row.model_dump()))


def _voice(item: WorkItem) -> SegmentVoice:
    b = np.asarray(item.data.speaker_boxes, dtype=np.float64)
    box = [float(x) for x in np.median(b, axis=0)] if len(b) else []
    return SegmentVoice(item.data.segment.start, item.data.segment.end, list(item.data.speaker_embedding), box,
                        list(item.data.other_faces), item.data.speaker_face, item.data.speaker_ends)


def identify(video_id: str, kept: list[WorkItem], rows: list[DatasetSegment], rules: IdentityRules,
             pending: tuple[list[WorkItem], list[DatasetSegment]] = ([], [])) -> list[Speaker]:
    """Give each kept row its speaker id (`speaker/identity.py`) and describe the video's speakers.
    Rows the labeler rejected (`pending`, labeled later by `mikupal label`) get their ids too."""
    ids = speaker_ids(video_id, [_voice(it) for it in kept + pending[0]], rules)
    for row, sid in zip(pending[1], ids[len(kept):]):
        row.speaker_id = sid
    speakers: dict[str, list[DatasetSegment]] = {}
    for row, sid in zip(rows, ids):
        row.speaker_id = sid
        speakers.setdefault(sid, []).append(row)
    return [
        Speaker(speaker_id=sid, video_id=video_id, source=rs[0].source, segments=len(rs),
                seconds=round(sum(r.duration for r in rs), 3), embedding=mean_embedding([r.speaker_embedding for r in rs]))
        for sid, rs in speakers.items()
    ]


def in_time_order(items: list[WorkItem]) -> list[WorkItem]:
    """A video's items in a fixed order (the video-level item first, then utterances and pieces by
    time), whatever order the workers finished them in: speaker clustering, reject rows and the
    speakers table see the same input in every run, so they come out the same."""
    def key(it: WorkItem):
        seg = it.data.segment
        return (seg is not None, seg.start if seg else 0.0, seg.end if seg else 0.0, it.item_id, it.status)

    return sorted(items, key=key)


def _reject_order(r: Reject):
    return (r.start if r.start is not None else -1.0, r.end if r.end is not None else -1.0, r.stage, r.reason, r.item_id)


def label_rejected(items: list[WorkItem]) -> list[WorkItem]:
    return [it for it in items if it.data.segment is not None and it.status == "dropped" and it.rejects and it.rejects[-1].stage == "label"]


def relabel_rows(items: list[WorkItem], sample_rate: int) -> list[DatasetSegment]:
    """The segments the labeler rejected, as unlabeled dataset rows: all `mikupal label` needs to
    label them again later (their clip and audio files stay under clips/ and audio/)."""
    return [dataset_row(it, sample_rate) for it in label_rejected(items)]


def summarize(key: str, items: list[WorkItem], identity: IdentityRules = IdentityRules(),
              pending: Optional[list[DatasetSegment]] = None) -> tuple[list[DatasetSegment], list[Reject], VideoSummary]:
    """Split a finished video's items into kept rows and rejects, and count its funnel."""
    first = items[0]
    video = next((i.data.video for i in items if i.data.video is not None), None)
    duration = video.duration if video else 0.0
    summary = VideoSummary(key=key, video_id=first.video_id, source=first.source, duration=duration)
    rows: list[DatasetSegment] = []
    rejects: list[Reject] = []
    times: dict[str, float] = {}
    seg_items = [i for i in items if i.data.segment is not None]
    dropped_at = {}
    for it in items:
        rejects.extend(it.rejects)
        for t in it.times:
            times[t.stage] = times.get(t.stage, 0.0) + t.seconds
    sample_rate = 0
    kept: list[WorkItem] = []
    for it in seg_items:
        if it.status == "segment":
            rows.append(dataset_row(it, sample_rate))
            kept.append(it)
        else:
            stage = it.rejects[-1].stage if it.rejects else "unknown"
            dropped_at[it.data.segment.segment_id] = stage
    video_level_drop = not seg_items and any(i.status == "dropped" for i in items)
    probe_ok = video is not None and video.has_audio and video.has_video
    speech = max((i.data.speech_seconds for i in items), default=0.0)

    def seconds(its):
        return sum(i.data.segment.end - i.data.segment.start for i in its)

    after_vision = [i for i in seg_items if dropped_at.get(i.data.segment.segment_id) not in ("vision",)]
    after_label = [i for i in after_vision if i.status == "segment"]
    summary.funnel = [
        FunnelCounts(stage="input", count=1, seconds=duration),
        FunnelCounts(stage="probe", count=int(probe_ok), seconds=duration if probe_ok else 0.0),
        FunnelCounts(stage="vad", count=int(speech > 0), seconds=speech),
        FunnelCounts(stage="segments", count=len(seg_items), seconds=seconds(seg_items)),
        FunnelCounts(stage="vision", count=len(after_vision), seconds=seconds(after_vision)),
        FunnelCounts(stage="label", count=len(after_label), seconds=seconds(after_label)),
    ]
    summary.speakers = identify(first.video_id, kept, rows, identity, (label_rejected(items), pending or []))
    summary.kept = len(rows)
    summary.kept_seconds = sum(r.duration for r in rows)
    summary.rejects = len(rejects)
    costs = [i.data.annotation.cost_usd for i in items if i.data.annotation]
    summary.cost_usd = None if any(c is None for c in costs) else sum(costs)
    summary.input_tokens = sum(i.data.annotation.input_tokens for i in items if i.data.annotation)
    summary.output_tokens = sum(i.data.annotation.output_tokens for i in items if i.data.annotation)
    summary.times = [StageTime(stage=k, seconds=v) for k, v in times.items()]
    summary.primary_emotions = [r.primary_emotion for r in rows if r.primary_emotion]
    summary.final = not any(r.reason in RETRY_REASONS for r in rejects)
    if video_level_drop and not rejects:  # never silent: a dropped video always says why
        rejects.append(Reject(item_id=key, video_id=first.video_id, source=first.source, stage="unknown", reason="dropped_without_reason"))
        summary.rejects = 1
    return rows, rejects, summary


class OutputDir(CommittedOutput):
    """The writer: creates the output's folders and commits videos (the reading is `CommittedOutput`'s)."""

    def __init__(self, root: str | os.PathLike, sample_rate: int = 44100, identity: IdentityRules = IdentityRules(),
                 duplicates: Optional[DuplicateRules] = None):
        super().__init__(root)
        self.sample_rate = sample_rate
        self.identity = identity
        for sub in (layout.SEGMENTS, layout.REJECTS, layout.DONE):
            self.paths.dir(sub).mkdir(parents=True, exist_ok=True)
        self.duplicates = DuplicateGate(self.root, duplicates)  # None: no duplicate check

    # ---------------------------------------------------------------- state

    def clear_unfinished(self, key: str) -> None:
        """Remove what a crashed attempt may have left for a video that has no marker."""
        check_key(key)
        self.duplicates.forget(key)
        for p in (*self._video_files(key), self.marker(key)):
            p.unlink(missing_ok=True)
        for sub in (layout.AUDIO, layout.CLIPS, layout.DEBUG, layout.SPEAKERS, layout.WORK):
            shutil.rmtree(self.paths.dir(sub) / key, ignore_errors=True)

    def _video_files(self, key: str) -> tuple[Path, ...]:
        p = self.paths
        return p.segments(key), p.rejects(key), p.speakers(key), p.pending(key)

    def sweep_partials(self) -> None:
        """Temporary files are never part of the dataset: a crash may leave some behind."""
        for sub in OutputPaths.TMP_DIRS:
            for p in self.paths.dir(sub).glob("*.tmp"):
                p.unlink(missing_ok=True)

    # ---------------------------------------------------------------- commit

    def commit_video(self, key: str, items: list[WorkItem]) -> VideoSummary:
        items = in_time_order(items)  # they arrive in whatever order the workers finished them
        pending = relabel_rows(items, self.sample_rate)
        rows, rejects, summary = summarize(key, items, self.identity, pending)
        for r in rows:
            r.sample_rate = self.sample_rate
        verdict = self.duplicates.check(key, rows)
        self._remove_media([r for r in rows if r.segment_id in verdict.copies])
        rows, rejects = drop_segments(rows, rejects, summary, verdict.copies)
        self._face_crops(key, rows, summary.speakers)
        self._commit(key, rows, rejects, summary, pending)
        shutil.rmtree(self.paths.work / key, ignore_errors=True)
        for other in verdict.touched():
            self._recommit(other, {m.copy.segment_id: m for m in verdict.displaced.get(other, [])},
                           verdict.renamed.get(other, {}))
        return summary

    def _recommit(self, key: str, matches: dict, renamed: dict[str, str]) -> None:
        """A committed video that a commit changed: its segments that an earlier copy replaces
        dropped, its rejects that named a replaced segment named anew; its files rewritten
        (rows, rejects, speakers, then the marker)."""
        seg_path, rej_path, spk_path = self.paths.segments(key), self.paths.rejects(key), self.paths.speakers(key)
        rows = DatasetSegment.from_table(pq.read_table(seg_path)) if seg_path.is_file() else []
        rejects = Reject.from_table(pq.read_table(rej_path)) if rej_path.is_file() else []
        rejects = [r.model_copy(update={"message": renamed[r.item_id]}) if r.item_id in renamed and r.stage == "dedup"
                   else r for r in rejects]
        summary = VideoSummary.model_validate_json(self.marker(key).read_text(encoding="utf-8"))
        summary.speakers = Speaker.from_table(pq.read_table(spk_path)) if spk_path.is_file() else []
        self._remove_media([r for r in rows if r.segment_id in matches])
        rows, rejects = drop_segments(rows, rejects, summary, matches)
        self._write(key, rows, rejects)
        self._write_speakers(key, summary.speakers)
        _atomic_text(summary.model_dump_json(), self.marker(key))

    def _remove_media(self, rows: list[DatasetSegment]) -> None:
        for rel in media_of(rows):
            (self.root / rel).unlink(missing_ok=True)

    def commit_rejects(
        self, key: str, rejects: list[Reject], source: str, video_id: str = "", final: bool = True
    ) -> VideoSummary:
        """An input that never reached a stage (missing, duplicate ...) or that the pipeline lost."""
        summary = VideoSummary(key=key, video_id=video_id, source=source, rejects=len(rejects), final=final)
        summary.funnel = [FunnelCounts(stage=s, count=int(s == "input"), seconds=0.0) for s in FUNNEL_STAGES]
        self._commit(key, [], rejects, summary)
        return summary

    def _face_crops(self, key: str, rows: list[DatasetSegment], speakers: list[Speaker]) -> None:
        """A face picture per speaker: the middle frame of their clip with the best ASD score."""
        for sp in speakers:
            best = max((r for r in rows if r.speaker_id == sp.speaker_id and r.clip_path), key=lambda r: r.asd_score, default=None)
            if best is None or not (self.root / best.clip_path).is_file():
                continue
            frame = media.frame_at(self.root / best.clip_path, best.duration / 2.0)
            if frame is not None:
                rel = self.paths.face_picture(key, sp.speaker_id)
                media.write_image(self.root / rel, frame)
                sp.face_crop_path = rel

    def _commit(self, key: str, rows: list[DatasetSegment], rejects: list[Reject], summary: VideoSummary,
                pending: Optional[list[DatasetSegment]] = None) -> None:
        """Rows, rejects, then the marker; a failure on the way (a full disk) leaves no file of the video."""
        check_key(key)  # before anything is written or removed
        pending_path = self.paths.pending(key)
        try:
            self._write(key, rows, rejects)
            self._write_speakers(key, summary.speakers)
            if pending:
                _atomic_parquet(DatasetSegment.to_table(sorted(pending, key=lambda r: r.start)), pending_path)
            else:
                pending_path.unlink(missing_ok=True)
            _atomic_text(summary.model_dump_json(), self.marker(key))
        except BaseException:
            for p in self._video_files(key):
                p.unlink(missing_ok=True)
            raise

    def _write(self, key: str, rows: list[DatasetSegment], rejects: list[Reject]) -> None:
        check_key(key)
        seg_path, rej_path = self.paths.segments(key), self.paths.rejects(key)
        if rows:
            rows.sort(key=lambda r: r.start)
            _atomic_parquet(DatasetSegment.to_table(rows), seg_path)
        else:
            seg_path.unlink(missing_ok=True)
        if rejects:
            _atomic_parquet(Reject.to_table(sorted(rejects, key=_reject_order)), rej_path)
        else:
            rej_path.unlink(missing_ok=True)

    def _write_speakers(self, key: str, speakers: list[Speaker]) -> None:
        path = self.paths.speakers(key)
        if speakers:
            _atomic_parquet(Speaker.to_table(speakers), path)
        else:
            path.unlink(missing_ok=True)
