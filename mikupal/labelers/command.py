"""`mikupal label input=DIR [overrides]`: label what an output dir still needs (see `relabel.py`):
kept segments never labeled, and segments whose final state is a labeler reject (kept for this
under `labeler/pending/`), also when no segment was kept. `--relabel` (`labeler.relabel=true`)
labels every segment again into `labels/<model>__<prompt_version>/`, leaving segments/ as it is.

Resumable: each file is rewritten atomically as soon as its rows are done. Rows that could not be
labeled stay as they were; they and their reasons are written to `<DIR>/labeler/rejects.parquet`
(the segments still unlabeled after this run) and the cost to `<DIR>/labeler/cost.json`. The
preflight (key, model served, price) runs first; a run-level failure during the run (key, model,
daily quota) stops it in one line (exit 2) with everything labeled so far written.

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
from pathlib import Path
from typing import Any, Optional


from .. import atomic
from ..config import RunConfig, compose
from ..errors import UserError
from ..records import Reject
from .base import RUN_LEVEL, LabelResult, read_api_key
from .factory import make_labeler
from .pricing import RunCost
from .relabel import LabelDataset, relabel_tag

log = logging.getLogger("mikupal.labelers")

LABELER_DIR = "labeler"


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _write_rejects(root: Path, ds: LabelDataset, failed: list[tuple[dict[str, Any], LabelResult]]) -> Path:
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
    atomic.write_parquet(Reject.to_table(rejects), path, compression="snappy")
    return path


async def _label_live(ds: LabelDataset, cfg: RunConfig, labeler, stats: RunCost):
    from .pool import LabelPool

    pool = LabelPool(labeler, cfg.labeler, stats=stats)  # the command is one worker: its limits are the run's
    failed: list[tuple[dict[str, Any], LabelResult]] = []
    progress = {"done": 0}
    pending = ds.pending

    async def one_file(path: Path, rows: list[dict[str, Any]]) -> None:
        results = await pool.label_many(ds.request(r) for r in rows)
        done = {res.segment_id: res.annotation for res in results if res.ok}
        failed.extend((r, res) for r, res in zip(rows, results) if not res.ok)
        if done:
            await asyncio.to_thread(ds.apply, path, done)
        progress["done"] += len(rows)
        _say(f"  {path.name}: {len(done)}/{len(rows)} labeled  [{progress['done']}/{pending}]")

    try:
        await asyncio.gather(*(one_file(p, rows) for p, rows in ds.todo.items() if rows))
    finally:
        await labeler.aclose()
    return failed


def _label_batch(ds: LabelDataset, cfg: RunConfig, labeler, stats: RunCost):
    from .batch import ingest_results, write_requests

    folder = ds.root / LABELER_DIR
    results_path = folder / "batch_results.jsonl"
    requests_path = folder / "batch_requests.jsonl"
    if not results_path.is_file():
        reqs = [ds.request(r) for rows in ds.todo.values() for r in rows]
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
        results = ingest_results(results_path, labeler, [ds.request(r) for r in rows], stats)
        done = {res.segment_id: res.annotation for res in results if res.ok}
        failed.extend((r, res) for r, res in zip(rows, results) if not res.ok)
        ds.apply(path, done)
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
    from .preflight import check_price, preflight

    check_price(cfg.labeler)  # a cap that cannot be enforced is refused before anything else
    ds = LabelDataset(root, cfg)
    if ds.pending == 0:
        _say(f"all {ds.total} segments in {root} are labeled"
             + (f" by {relabel_tag(cfg)}" if cfg.labeler.relabel else "") + ": nothing to do")
        return 0
    preflight(cfg.labeler)
    labeler = make_labeler(cfg.labeler, taxonomy, read_api_key(cfg.labeler))
    stats = RunCost(model=cfg.labeler.model)
    into = f" into labels/{relabel_tag(cfg)}/" if cfg.labeler.relabel else ""
    _say(f"labeling {ds.pending} of {ds.total} segments in {root}{into} with {cfg.labeler.model} "
         f"({cfg.labeler.mode} mode, {'batch' if cfg.labeler.batch else f'{cfg.labeler.requests_in_flight} in flight'})")
    if cfg.labeler.batch:
        failed: Optional[list] = _label_batch(ds, cfg, labeler, stats)
        if failed is None:
            return 0
    else:
        failed = asyncio.run(_label_live(ds, cfg, labeler, stats))
    folder = root / LABELER_DIR
    stats.write_json(folder / "cost.json")
    halted = next((res for _, res in failed if res.reason in RUN_LEVEL), None)
    rejects = _write_rejects(root, ds, [(r, res) for r, res in failed if res.reason not in RUN_LEVEL])
    _say(stats.summary())
    if halted is not None:
        raise UserError(f"stopped: {' '.join(halted.message.split())}; {len(failed)} segments left unlabeled, "
                        "fix it and run the same command again")
    if failed:
        _say(f"{len(failed)} segments remain unlabeled (reasons in {rejects}); run the command again to retry them")
        return 1
    return 0
