"""`mikupal run`: expand inputs, skip what is committed, stream the rest through an engine, commit
each video as it completes, and write the report. Safe to interrupt at any moment and re-run."""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path
from typing import Optional

import psutil

from ..config import RunConfig
from ..errors import UserError
from ..records import Reject
from ..report.html import write_html
from ..report.summary import build_report, write_report
from ..stages.base import WorkItem
from .collector import Collector, Progress
from .commit import OutputDir
from .inputs import expand_inputs

log = logging.getLogger("mikupal")


class _Stop(Exception):
    pass


def _on_signal(signum, frame):  # noqa: ARG001
    raise _Stop(signal.Signals(signum).name)


def _peak_rss_mb() -> float:
    """Peak resident memory of the driver and its children (Ray workers included when local)."""
    proc = psutil.Process()
    total = 0
    for p in [proc] + proc.children(recursive=True):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / (1 << 20)


def _safe_config(cfg: RunConfig) -> dict:
    """The config as recorded in report.json: names of secrets' sources, never secrets."""
    return cfg.model_dump(mode="json")


def run(cfg: RunConfig, console=None) -> dict:
    if not cfg.output:
        raise UserError("no output given: pass output=DIR")
    _check_labeler_key(cfg)
    t0 = time.perf_counter()
    out = OutputDir(cfg.output, cfg.dataset.sample_rate)
    out.sweep_partials()
    inputs = expand_inputs(cfg.input)

    progress = Progress(videos_total=len(inputs.videos) + len(inputs.rejects))
    printer = _Printer(console, progress, enabled=cfg.engine.progress)
    collector = Collector(out, progress, on_commit=lambda s: printer.update())

    for rej in inputs.rejects:
        if not out.is_done(rej.item_id):
            collector.record(out.commit_rejects(rej.item_id, [rej], rej.source, rej.video_id))
            collector.committed.add(rej.item_id)
        else:
            progress.videos_done += 1
    todo: list[WorkItem] = []
    for src, path, vid in inputs.videos:
        if out.is_done(vid):
            progress.videos_done += 1
            continue
        out.clear_unfinished(vid)
        todo.append(WorkItem(source=src, path=path, video_id=vid))

    if cfg.engine.kind == "ray" and todo:
        from .ray_pipeline import stream
    else:
        from .sequential import stream

    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    for s in old:
        signal.signal(s, _on_signal)
    peak = 0.0
    stopped: Optional[str] = None
    try:
        printer.start()
        for item in stream(cfg, out.root, todo) if todo else ():
            collector.add(item)
            peak = max(peak, _peak_rss_mb())
    except _Stop as e:
        stopped = str(e)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        printer.stop()
    if stopped:
        raise UserError(f"stopped by {stopped}: {progress.videos_done} videos committed; re-run the same command to resume")

    # Anything the pipeline lost (a worker died for good) is recorded, and redone by the next run.
    for it in todo:
        if it.video_id not in collector.committed:
            pending = collector.pending.pop(it.video_id, [])
            rej = Reject(
                item_id=it.video_id, video_id=it.video_id, source=it.source, stage="engine", reason="worker_lost",
                message=f"the pipeline lost this video ({len(pending)} of its items arrived); re-run to retry",
            )
            collector.record(out.commit_rejects(it.video_id, [rej], it.source, it.video_id, final=False))

    wall = time.perf_counter() - t0
    processed = {it.video_id for it in todo} | {r.item_id for r in inputs.rejects}
    report = build_report(out, wall, processed, config=_safe_config(cfg), peak_rss_mb=round(max(peak, _peak_rss_mb()), 1))
    write_report(out.root, report)
    write_html(out.root, report, out.read_segments())
    return report


def _check_labeler_key(cfg: RunConfig) -> None:
    """A missing API key is a one-line error now, not a failure after the heavy stages ran."""
    if cfg.labeler.kind != "gemini" or cfg.labeler.batch:
        return
    from ..labelers.base import read_api_key

    if not read_api_key(cfg.labeler):
        raise UserError(
            f"labeler=gemini needs an API key: set {cfg.labeler.api_key_env} or labeler.api_key_file=PATH "
            "(or labeler=none to write the dataset unlabeled, then `mikupal label`)"
        )


class _Printer:
    """A live status line (rich) on a terminal; one plain line per committed video otherwise."""

    def __init__(self, console, progress: Progress, enabled: bool = True):
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.progress = progress
        self.enabled = enabled
        self.live = None

    def start(self) -> None:
        if not self.enabled:
            return
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(self.progress.line(), console=self.console, refresh_per_second=4, transient=False)
            self.live.start()

    def update(self) -> None:
        if not self.enabled:
            return
        if self.live is not None:
            self.live.update(self.progress.line())
        else:
            print(self.progress.line(), file=sys.stderr, flush=True)

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
