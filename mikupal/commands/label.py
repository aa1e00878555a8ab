"""`mikupal label input=DIR [overrides] [--relabel]`: label what an output dir still needs (see
`labelers/relabel.py`): kept segments never labeled, and segments whose final state is a labeler
reject (kept for this under `labeler/pending/`), also when no segment was kept. `--relabel`
(`labeler.relabel=true`) labels every segment again into `labels/<model>__<prompt_version>/`,
leaving segments/ as it is.

Resumable: each file is rewritten atomically as soon as its rows are done. Rows that could not be
labeled stay as they were; they and their reasons are written to `<DIR>/labeler/rejects.parquet`
(the segments still unlabeled after this run) and the cost to `<DIR>/labeler/cost.json`. The
preflight (key, model served, price) runs first; a run-level failure during the run (key, model,
daily quota) stops it in one line (exit 2) with everything labeled so far written.

With `labeler.batch=true` (Gemini): the first run writes `<DIR>/labeler/batch_requests.jsonl` to
submit to the Batch API; once its output is saved as `<DIR>/labeler/batch_results.jsonl`, the
next run ingests it (`labelers/label_output.py`).

Exit code: 0 when every segment is labeled (or the batch file was written), 1 when some remain.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

from ..config import RunConfig, compose
from ..engine.lock import OutputLock
from ..errors import UserError
from ..labelers.base import RUN_LEVEL
from ..labelers.label_output import label_pending, write_rejects
from ..labelers.preflight import check_price, preflight
from ..labelers.pricing import RunCost
from ..labelers.relabel import LabelDataset, relabel_tag
from ..taxonomy import TaxonomyError, load_taxonomy
from .help import CommandHelp

HELP = CommandHelp(
    usage="mikupal label input=DIR [labeler=...] [key=value ...] [--relabel]",
    what="""Label what an output dir still needs: kept segments never labeled (a labeler=none run) and
segments whose labeling failed. Resumable; exit 0 when every segment is labeled, 1 when some remain.""",
    keys=[("input", "a mikupal output dir"), ("labeler", "gemini | openai"), ("labeler.model", "the model id"),
          ("labeler.mode", "video | audio | text"), ("labeler.base_url", "an OpenAI-compatible server (openai kind)"),
          ("labeler.max_usd", "stop at this spend (null: no limit)"), ("labeler.batch", "Gemini Batch API files instead of requests"),
          ("labeler.prompt_version", "the prompt set under labelers/prompts/")],
    flags=[("--relabel", "label every segment again into labels/<model>__<prompt>/ (segments/ untouched)")],
    examples=["mikupal label input=out/ labeler=gemini", "mikupal label input=out/ --relabel labeler.model=gemini-3-flash-preview"],
)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def label_command(args: Sequence[str]) -> int:
    """Label `input=DIR` (Hydra-style overrides, e.g. ['input=out/', 'labeler=gemini', 'labeler.max_usd=5'])."""
    cfg = compose(["labeler.relabel=true" if a == "--relabel" else a for a in args])
    if not cfg.input:
        raise UserError("mikupal label needs input=DIR: the output dir of an earlier `mikupal run`")
    root = Path(os.path.expanduser(cfg.input))
    if not root.is_dir():
        raise UserError(f"input={cfg.input}: not a directory")
    with OutputLock(root, "label"):  # one writer per output: a concurrent run or label is refused
        return _label_dir(cfg, root)


def _label_dir(cfg: RunConfig, root: Path) -> int:
    if cfg.labeler.kind == "none":
        raise UserError("labeler=none: nothing to do (choose labeler=gemini or labeler=openai)")
    if cfg.labeler.batch and cfg.labeler.kind != "gemini":
        raise UserError("labeler.batch=true needs labeler=gemini (the Gemini Batch API)")
    try:
        taxonomy = load_taxonomy(cfg.taxonomy)
    except TaxonomyError as e:
        raise UserError(f"taxonomy: {e}") from None
    check_price(cfg.labeler)  # a cap that cannot be enforced is refused before anything else
    ds = LabelDataset(root, cfg)
    if ds.pending == 0:
        _say(f"all {ds.total} segments in {root} are labeled"
             + (f" by {relabel_tag(cfg)}" if cfg.labeler.relabel else "") + ": nothing to do")
        return 0
    preflight(cfg.labeler)
    stats = RunCost(model=cfg.labeler.model)
    into = f" into labels/{relabel_tag(cfg)}/" if cfg.labeler.relabel else ""
    _say(f"labeling {ds.pending} of {ds.total} segments in {root}{into} with {cfg.labeler.model} "
         f"({cfg.labeler.mode} mode, {'batch' if cfg.labeler.batch else f'{cfg.labeler.requests_in_flight} in flight'})")
    failed = label_pending(ds, cfg, taxonomy, stats, _say)
    if failed is None:  # batch requests written: nothing labeled yet
        return 0
    stats.write_json(ds.paths.cost)
    halted = next((res for _, res in failed if res.reason in RUN_LEVEL), None)
    rejects = write_rejects(root, [(r, res) for r, res in failed if res.reason not in RUN_LEVEL])
    _say(stats.summary())
    if halted is not None:
        raise UserError(f"stopped: {' '.join(halted.message.split())}; {len(failed)} segments left unlabeled, "
                        "fix it and run the same command again")
    if failed:
        _say(f"{len(failed)} segments remain unlabeled (reasons in {rejects}); run the command again to retry them")
        return 1
    return 0
