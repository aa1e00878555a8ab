"""`mikupal label input=DIR [overrides]`: label an existing (unlabeled or partly labeled) output dir.

Reads `<DIR>/segments/*.parquet`, labels the rows whose `primary_emotion` is null and rewrites
each Parquet file atomically (tmp + os.replace) as soon as its rows are done, so an interrupted
run loses nothing and a re-run labels only what is left (resumable). Rows that could not be
labeled stay unlabeled; they and their reasons are written to `<DIR>/labeler/rejects.parquet`
(the segments still unlabeled after this run) and the cost to `<DIR>/labeler/cost.json`.

With `labeler.batch=true` (Gemini): the first run writes `<DIR>/labeler/batch_requests.jsonl` to
submit to the Batch API; once its output is saved as `<DIR>/labeler/batch_results.jsonl`, the
next run ingests it (then renames it `batch_results.ingested-<time>.jsonl`).

Exit code: 0 when every segment is labeled (or the batch file was written), 1 when some remain.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Optional

import pyarrow as pa
import pyarrow.parquet as pq

from ..config import RunConfig, compose
from ..errors import UserError
from ..records import Reject
from .base import LabelRequest, LabelResult, make_labeler, read_api_key
from .pricing import RunCost

log = logging.getLogger("mikupal.labelers")

LABELER_DIR = "labeler"
REQUIRED = ("segment_id", "text", "clip_path", "audio_path", "primary_emotion", "emotions")
ANNOTATION_COLUMNS = (
    "emotions", "primary_emotion", "rationale", "face_analysis", "voice_analysis", "text_analysis",
    "emotion_agreement", "labeler_model", "prompt_version", "input_tokens", "output_tokens", "cost_usd",
)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def annotation_columns(ann) -> dict[str, Any]:
    """EmotionAnnotation -> the DatasetSegment columns it fills."""
    return {
        "emotions": [{"name": e.name, "intensity": float(e.intensity)} for e in ann.emotions],
        "primary_emotion": ann.primary_emotion,
        "rationale": ann.rationale,
        "face_analysis": ann.face_analysis,
        "voice_analysis": ann.voice_analysis,
        "text_analysis": ann.text_analysis,
        "emotion_agreement": ann.agreement,
        "labeler_model": ann.labeler_model,
        "prompt_version": ann.prompt_version,
        "input_tokens": int(ann.input_tokens),
        "output_tokens": int(ann.output_tokens),
        "cost_usd": float(ann.cost_usd),
    }


def rewrite_parquet(path: Path, table: pa.Table, done: dict[str, Any]) -> int:
    """Fill the annotation columns of the rows in `done` (segment_id -> annotation); atomic."""
    rows = table.to_pylist()
    names = set(table.schema.names)
    n = 0
    for row in rows:
        ann = done.get(row["segment_id"])
        if ann is None:
            continue
        for k, v in annotation_columns(ann).items():
            if k in names:
                row[k] = v
        n += 1
    if not n:
        return 0
    new = pa.Table.from_pylist(rows, schema=table.schema)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(new, tmp)
    os.replace(tmp, path)
    return n


class _Dataset:
    """The segments files of an output dir and the rows still to label."""

    def __init__(self, root: Path, cfg: RunConfig):
        self.root = root
        self.files = sorted((root / "segments").glob("*.parquet"))
        if not self.files:
            raise UserError(f"input={root}: no segments/*.parquet here (is it a mikupal output dir?)")
        self.tables: dict[Path, pa.Table] = {}
        self.todo: dict[Path, list[dict[str, Any]]] = {}
        all_rows: list[dict[str, Any]] = []
        for f in self.files:
            try:
                table = pq.read_table(f)
            except (OSError, pa.ArrowInvalid) as e:
                raise UserError(f"cannot read {f}: {e}") from None
            missing = [c for c in REQUIRED if c not in table.schema.names]
            if missing:
                raise UserError(f"{f}: not a segments file (missing columns {missing})")
            self.tables[f] = table
            rows = table.to_pylist()
            all_rows.extend(rows)
            self.todo[f] = [r for r in rows if r.get("primary_emotion") is None]
        self.total = len(all_rows)
        self._context = self._contexts(all_rows, cfg)

    @staticmethod
    def _contexts(rows: list[dict[str, Any]], cfg: RunConfig) -> dict[str, list[str]]:
        n = cfg.labeler.context_turns
        out: dict[str, list[str]] = {}
        if cfg.labeler.mode != "text" or n <= 0:
            return out
        by_video: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by_video[str(r.get("video_id", ""))].append(r)
        for group in by_video.values():
            group.sort(key=lambda r: r.get("start") or 0.0)
            for i, r in enumerate(group):
                out[r["segment_id"]] = [g["text"] for g in group[max(0, i - n) : i] if g.get("text")]
        return out

    @property
    def pending(self) -> int:
        return sum(len(v) for v in self.todo.values())

    def request(self, row: dict[str, Any], cfg: RunConfig) -> LabelRequest:
        dur = row.get("duration")
        if dur is None and row.get("end") is not None and row.get("start") is not None:
            dur = row["end"] - row["start"]
        return LabelRequest(
            segment_id=row["segment_id"],
            transcript=row.get("text") or "",
            mode=cfg.labeler.mode,
            clip_path=(self.root / row["clip_path"]) if row.get("clip_path") else None,
            audio_path=(self.root / row["audio_path"]) if row.get("audio_path") else None,
            context=self._context.get(row["segment_id"], []),
            duration=float(dur or 0.0),
        )


def _write_rejects(root: Path, ds: _Dataset, failed: list[tuple[dict[str, Any], LabelResult]]) -> Path:
    path = root / LABELER_DIR / "rejects.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    rejects = [
        Reject(
            item_id=row["segment_id"],
            video_id=str(row.get("video_id") or ""),
            source=str(row.get("source") or ""),
            stage="label",
            reason=res.reason or "labeler_error",
            message=res.message or (res.reason or ""),
            start=row.get("start"),
            end=row.get("end"),
        )
        for row, res in failed
    ]
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(Reject.to_table(rejects), tmp)
    os.replace(tmp, path)
    return path


async def _label_live(ds: _Dataset, cfg: RunConfig, labeler, stats: RunCost):
    from .pool import LabelPool

    pool = LabelPool(labeler, cfg.labeler, stats=stats)
    failed: list[tuple[dict[str, Any], LabelResult]] = []
    progress = {"done": 0}
    pending = ds.pending

    async def one_file(path: Path, rows: list[dict[str, Any]]) -> None:
        results = await asyncio.gather(*(pool.label(ds.request(r, cfg)) for r in rows))
        done = {res.segment_id: res.annotation for res in results if res.ok}
        failed.extend((r, res) for r, res in zip(rows, results) if not res.ok)
        if done:
            await asyncio.to_thread(rewrite_parquet, path, ds.tables[path], done)
        progress["done"] += len(rows)
        _say(f"  {path.name}: {len(done)}/{len(rows)} labeled  [{progress['done']}/{pending}]")

    try:
        await asyncio.gather(*(one_file(p, rows) for p, rows in ds.todo.items() if rows))
    finally:
        await labeler.aclose()
    return failed


def _label_batch(ds: _Dataset, cfg: RunConfig, labeler, stats: RunCost):
    from .batch import ingest_results, write_requests

    folder = ds.root / LABELER_DIR
    results_path = folder / "batch_results.jsonl"
    requests_path = folder / "batch_requests.jsonl"
    if not results_path.is_file():
        reqs = [ds.request(r, cfg) for rows in ds.todo.values() for r in rows]
        n = write_requests(requests_path, labeler, reqs)
        _say(
            f"wrote {n} Batch API requests to {requests_path}\n"
            f"submit it (Gemini Batch API, model {cfg.labeler.model}), save the output as {results_path}, "
            "then run this command again to ingest it"
        )
        return None
    failed: list[tuple[dict[str, Any], LabelResult]] = []
    for path, rows in ds.todo.items():
        if not rows:
            continue
        results = ingest_results(results_path, labeler, [ds.request(r, cfg) for r in rows], stats)
        done = {res.segment_id: res.annotation for res in results if res.ok}
        failed.extend((r, res) for r, res in zip(rows, results) if not res.ok)
        rewrite_parquet(path, ds.tables[path], done)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    os.replace(results_path, folder / f"batch_results.ingested-{stamp}.jsonl")
    return failed


def label_command(overrides: list[str]) -> int:
    """Label `input=DIR` (Hydra-style overrides, e.g. ['input=out/', 'labeler=gemini', 'labeler.max_usd=5'])."""
    cfg = compose(list(overrides))
    if not cfg.input:
        raise UserError("mikupal label needs input=DIR: the output dir of an earlier `mikupal run`")
    root = Path(os.path.expanduser(cfg.input))
    if not root.is_dir():
        raise UserError(f"input={cfg.input}: not a directory")
    from ..engine.lock import OutputLock

    with OutputLock(root, "label"):  # one writer per output: a concurrent run or label is refused
        return _label_dir(cfg, root)


def _label_dir(cfg, root: Path) -> int:
    if cfg.labeler.kind == "none":
        raise UserError("labeler=none: nothing to do (choose labeler=gemini or labeler=openai)")
    if cfg.labeler.batch and cfg.labeler.kind != "gemini":
        raise UserError("labeler.batch=true needs labeler=gemini (the Gemini Batch API)")
    from ..taxonomy import TaxonomyError, load_taxonomy

    try:
        taxonomy = load_taxonomy(cfg.taxonomy)
    except TaxonomyError as e:
        raise UserError(f"taxonomy: {e}") from None
    ds = _Dataset(root, cfg)
    if ds.pending == 0:
        _say(f"all {ds.total} segments in {root} are labeled: nothing to do")
        return 0
    labeler = make_labeler(cfg.labeler, taxonomy, read_api_key(cfg.labeler))
    stats = RunCost(model=cfg.labeler.model)
    _say(f"labeling {ds.pending} of {ds.total} segments in {root} with {cfg.labeler.model} "
         f"({cfg.labeler.mode} mode, {'batch' if cfg.labeler.batch else f'{cfg.labeler.concurrency} concurrent'})")
    if cfg.labeler.batch:
        failed: Optional[list] = _label_batch(ds, cfg, labeler, stats)
        if failed is None:
            return 0
    else:
        failed = asyncio.run(_label_live(ds, cfg, labeler, stats))
    folder = root / LABELER_DIR
    stats.write_json(folder / "cost.json")
    rejects = _write_rejects(root, ds, failed)
    _say(stats.summary())
    if failed:
        _say(f"{len(failed)} segments remain unlabeled (reasons in {rejects}); run the command again to retry them")
        return 1
    return 0
