"""Labeling what an output dir still needs (a `LabelDataset`, see `relabel.py`): live through the
`LabelPool`, or through Gemini Batch API files; and the label rejects of what stayed unlabeled.

Each file's results are written as soon as its rows are done, so an interrupted run loses nothing.
Batch mode: the first call writes `labeler/batch_requests.jsonl` to submit; once the service's
output is saved as `labeler/batch_results.jsonl`, the next call ingests it (then renames it
`batch_results.ingested-<time>.jsonl`). `mikupal label` (`commands/label.py`) drives this.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, Callable, Optional

from .. import atomic
from ..config import RunConfig
from ..layout import OutputPaths
from ..records import Reject
from .base import LabelResult, read_api_key
from .pricing import RunCost
from .relabel import LabelDataset
from .session import LabelSession

#: a segment row with the result that left it unlabeled
Failed = list[tuple[dict[str, Any], LabelResult]]


def label_pending(ds: LabelDataset, cfg: RunConfig, taxonomy, stats: RunCost,
                  say: Callable[[str], None]) -> Optional[Failed]:
    """Label the dataset's pending rows; the rows left unlabeled, or None when a batch request
    file was written (nothing labeled yet). `say` gets the progress and batch instructions."""
    if cfg.labeler.batch:
        from .factory import make_labeler

        return label_batch(ds, cfg, make_labeler(cfg.labeler, taxonomy, read_api_key(cfg.labeler)), stats, say)
    # the command is one worker: its limits are the run's
    with LabelSession.open(cfg.labeler, taxonomy, stats=stats) as session:
        return session.run(label_live(ds, session, say))


async def label_live(ds: LabelDataset, session: LabelSession, say: Callable[[str], None]) -> Failed:
    """Every pending file's rows through the session's pool at once; each file rewritten as soon
    as its rows are done. Runs on the session's loop (`session.run`)."""
    failed: Failed = []
    progress = {"done": 0}
    pending = ds.pending

    async def one_file(path: Path, rows: list[dict[str, Any]]) -> None:
        results = await session.pool.label_many(ds.request(r) for r in rows)
        done = {res.segment_id: res.annotation for res in results if res.ok}
        failed.extend((r, res) for r, res in zip(rows, results) if not res.ok)
        if done:
            await asyncio.to_thread(ds.apply, path, done)
        progress["done"] += len(rows)
        say(f"  {path.name}: {len(done)}/{len(rows)} labeled  [{progress['done']}/{pending}]")

    await asyncio.gather(*(one_file(p, rows) for p, rows in ds.todo.items() if rows))
    return failed


def label_batch(ds: LabelDataset, cfg: RunConfig, labeler, stats: RunCost, say: Callable[[str], None]) -> Optional[Failed]:
    from .batch import ingest_results, write_requests

    results_path, requests_path = ds.paths.batch_results, ds.paths.batch_requests
    if not results_path.is_file():
        reqs = [ds.request(r) for rows in ds.todo.values() for r in rows]
        n = write_requests(requests_path, labeler, reqs)
        say(
            f"wrote {n} Batch API requests to {requests_path}\n"
            f"submit it (Gemini Batch API, model {cfg.labeler.model}), save the output as {results_path}, "
            "then run this command again to ingest it"
        )
        return None
    failed: Failed = []
    for path, rows in ds.todo.items():
        if not rows:
            continue
        results = ingest_results(results_path, labeler, [ds.request(r) for r in rows], stats)
        done = {res.segment_id: res.annotation for res in results if res.ok}
        failed.extend((r, res) for r, res in zip(rows, results) if not res.ok)
        ds.apply(path, done)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    os.replace(results_path, results_path.with_name(f"batch_results.ingested-{stamp}.jsonl"))
    return failed


def write_rejects(root: Path, failed: Failed) -> Path:
    """`labeler/rejects.parquet`: the segments still unlabeled after this run, with their reasons."""
    path = OutputPaths(root).label_rejects
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
    atomic.write_parquet(Reject.to_table(rejects), path, compression="snappy")
    return path
