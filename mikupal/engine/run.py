"""`mikupal run`: expand inputs, skip what is committed, stream the rest through an engine, commit
each video as it completes, and write the report. Safe to interrupt at any moment and re-run."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from pathlib import Path

import psutil

from ..config import RunConfig
from ..errors import USER_ERROR_REASON, UserError
from ..ids import source_key
from ..layout import OutputPaths
from ..records import Reject, WorkItem
from ..report.html import write_html
from ..report.summary import build_report, write_report
from ..speaker.global_ids import write_global_speakers
from ..speaker.identity import IdentityRules
from ..stages.activity import clear_activity
from ..stages.faults import DISK_FULL_ERRNOS
from .collector import Collector, DiskFull, Progress, RunHalted
from .commit import OutputDir
from .duplicates import rules_of
from .inputs import check_paths, expand_inputs, write_skipped
from .lock import OutputLock, mark_output
from .progress import probe_durations
from .run_log import RunLog
from .stages import depends_on_call, video_group_size
from .terminal import Display, Terminal

log = logging.getLogger("mikupal")


class Stopped(UserError):
    """The run was stopped by SIGTERM/SIGINT: one line, and the shell's exit code for it (128 + signal)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class _Stop(BaseException):
    """Raised by the signal handler. A BaseException, like KeyboardInterrupt: a stage's fault
    isolation (`except Exception`) must not turn a stop request into a reject of the current item."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_requested: list[int] = []  # the stop requests this run's handler saw (see `run`)


def _on_signal(signum, frame):  # noqa: ARG001
    _requested.append(signum)
    raise _Stop(signum)


def _disk_full_error(out: OutputDir, progress: Progress, detail: str) -> UserError:
    detail = " ".join(str(detail).split())
    return UserError(
        f"output disk full: {detail}; free space under {out.root} and re-run the same command to resume "
        f"({progress.videos_done} videos committed)"
    )


RSS_EVERY_S = 1.0  # the run's memory is sampled at most this often: each sample walks every Ray process


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
    """`console`: where the progress display goes (a text stream; default the terminal the run started on)."""
    if not cfg.output:
        raise UserError("no output given: pass output=DIR")
    from .choice import with_engine_resolved

    cfg = with_engine_resolved(cfg)  # engine=auto: ray with a cluster or GPUs, else local threads
    check_paths(cfg.input, cfg.output)  # before the key check and before anything is created: the first mistake first
    from .stages import preflight

    preflight(cfg)  # each stage's model files (present and whole) and the labeler's key, before any worker starts
    if cfg.engine.kind == "ray" and not _ray_is_up():  # a cluster address that cannot work: one line, before any display
        from .cluster import check_address, cluster_address

        address, origin = cluster_address(cfg.engine)
        if address:
            check_address(address, origin)
    lock = OutputLock(cfg.output, "run")
    # a stop request (SIGTERM, SIGINT) ends the run between two commits: what is committed stays,
    # the rest is redone by the next run
    main = threading.current_thread() is threading.main_thread()  # handlers can only be set there
    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)} if main else {}
    for s in old:
        signal.signal(s, _on_signal)
    try:
        lock.acquire()  # one writer per output dir: a second run is refused in one line
        # library chatter to OUT/logs/; native code's lines too (Ray's core workers print on fd 2)
        with RunLog(cfg.output) as run_log, Terminal(run_log.path) as term:
            ray_was_up = _ray_is_up()
            try:
                _requested.clear()
                report = _run(cfg, console or term.stream)
                if _requested:  # the handler ran but its exception was swallowed on the way (a library's
                    raise _Stop(_requested[0])  # catch-all): a stop request still ends the run as one
                return report
            finally:
                if cfg.engine.kind == "ray" and not ray_was_up and _ray_is_up():
                    import ray

                    ray.shutdown()  # a local Ray this run started: its last lines go to the log, not the terminal
    except _Stop as e:
        raise Stopped(f"stopped by {e}: re-run the same command to resume (committed videos are kept)", 128 + e.signum) from None
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        lock.release()


def _ray_is_up() -> bool:
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


def _run(cfg: RunConfig, stream) -> dict:
    t0 = time.perf_counter()
    sc = cfg.speaker
    out = OutputDir(cfg.output, cfg.dataset.sample_rate, IdentityRules(sc.cluster_similarity, sc.attach_similarity, sc.min_support_seconds,
                                                                        sc.pair_similarity, cfg.faces.shot_cut_threshold),
                    rules_of(cfg.duplicates))
    mark_output(out.root)  # never read back as input, by this run or another
    out.sweep_partials()
    clear_activity(out.root)
    inputs = expand_inputs(cfg.input, output=out.root)
    write_skipped(out.root, inputs.skipped)

    progress = Progress(videos_total=len(inputs.videos) + len(inputs.rejects))
    from .stages import stage_classes

    printer = Display(stream, progress, out.root, enabled=cfg.engine.progress, stages=[c.name for c in stage_classes(cfg)])
    collector = Collector(out, progress, on_commit=lambda s: printer.update())

    todo: list[WorkItem] = []
    stream = None
    peak, sampled = 0.0, 0.0
    try:
        todo = _plan(cfg, out, inputs, collector, progress)
        if progress.skipped_videos:
            printer.say(f"resuming: {progress.skipped_videos} of {progress.videos_total} videos already committed "
                        f"({progress.skipped_seconds:.1f} s of media) are skipped; "
                        f"{sum(it.status != 'placeholder' for it in todo)} to run")
        stop_probe = probe_durations(progress, [it.path or it.source for it in todo if it.status != "placeholder"])
        if cfg.engine.kind == "ray" and todo:
            from .ray_pipeline import stream as engine_stream
        elif cfg.engine.kind == "local":
            from .local import stream as engine_stream
        else:
            from .sequential import stream as engine_stream

        limits = _open_limits(cfg) if todo else None
        try:
            printer.start()
            if todo:
                stream = engine_stream(cfg, out.root, todo)
                for item in stream:
                    _raise_user_error(item)
                    collector.add(item)
                    if time.monotonic() - sampled >= RSS_EVERY_S:
                        peak, sampled = max(peak, _peak_rss_mb()), time.monotonic()
        finally:
            stop_probe.set()
            printer.stop()
            clear_activity(out.root, remove=True)
            if stream is not None:
                stream.close()  # stops the engine (Ray Data's executor) when the loop ended early
            if limits is not None:
                _close_limits(limits, out.root)

        _record_lost(todo, out, collector)
        wall = time.perf_counter() - t0
        processed = {it.video_id for it in todo if it.status != "placeholder"} | {r.item_id for r in inputs.rejects}
        write_global_speakers(out.root, cfg.speaker.global_similarity)
        report = build_report(out, wall, processed, config=_safe_config(cfg), peak_rss_mb=round(max(peak, _peak_rss_mb()), 1))
        write_report(out.root, report)
        write_html(out.root, report, out.read_segments())
    except DiskFull as e:
        raise _disk_full_error(out, progress, str(e)) from None
    except RunHalted as e:
        raise UserError(f"stopped: labeler.model={cfg.labeler.model}: {' '.join(e.message.split())}; fix it and re-run "
                        "the same command to resume "
                        f"({progress.videos_done} videos committed, the rest are redone)") from None
    except OSError as e:
        if e.errno in DISK_FULL_ERRNOS:
            raise _disk_full_error(out, progress, f"{e.strerror or e} ({e.filename or out.root})") from None
        raise
    retry = [s.key for s in out.summaries() if not s.final]
    if retry:
        log.warning("%d videos met a transient failure (a crash, a lost worker, the labeler API): re-run the same "
                    "command to redo them", len(retry))
    return report


def _plan(cfg: RunConfig, out: OutputDir, inputs, collector: Collector, progress: Progress) -> list[WorkItem]:
    """Commit the inputs rejected before any stage, skip what is committed, clear what a crashed
    attempt left, and return the videos to run: whole groups of `video_group_size`, in input
    order, as the video-level stages get them in every run (an uninterrupted run's groups)."""
    for rej in inputs.rejects:
        if not out.is_done(rej.item_id):
            collector.record(out.commit_rejects(rej.item_id, [rej], rej.source, rej.video_id))
            collector.committed.add(rej.item_id)
        else:
            progress.skip(None)
    k = video_group_size(cfg)
    todo: list[WorkItem] = []
    for g in range(0, len(inputs.videos), k):
        todo.extend(_plan_group(cfg, out, inputs.videos[g : g + k], g // k if k > 1 else -1, progress))
    return todo


def _plan_group(cfg: RunConfig, out: OutputDir, group: list, index: int, progress: Progress) -> list[WorkItem]:
    """One group's videos: nothing when all are committed; else the unfinished ones, the committed
    ones whose results depend on their group (redone with it, so they come out as before), and
    placeholders for the other committed ones (they keep the group's shape, and pass untouched)."""
    summaries = {}
    for src, _, vid in group:
        stale = source_key(src)  # this source was missing or a duplicate in an earlier run
        if out.marker(stale).exists():
            out.clear_unfinished(stale)
        summaries[vid] = out.summary(vid)
    if all(s is not None and s.final for s in summaries.values()):
        for s in summaries.values():
            progress.skip(s)
        return []
    items = []
    for src, path, vid in group:
        s = summaries[vid]
        item = WorkItem(source=src, path=path, video_id=vid, group=index)
        if s is not None and s.final and not depends_on_call(cfg, s):
            item.status = "placeholder"
            progress.skip(s)
        else:
            out.clear_unfinished(vid)
        items.append(item)
    return items


def _record_lost(todo: list[WorkItem], out: OutputDir, collector: Collector) -> None:
    """Anything the pipeline lost (a worker died for good) is recorded, and redone by the next run."""
    for it in todo:
        if it.status != "placeholder" and it.video_id not in collector.committed:
            pending = collector.pending.pop(it.video_id, {})
            rej = Reject(
                item_id=it.video_id, video_id=it.video_id, source=it.source, stage="engine", reason="worker_lost",
                message=f"the pipeline lost this video ({len(pending)} of its items arrived); re-run to retry",
            )
            collector.record(out.commit_rejects(it.video_id, [rej], it.source, it.video_id, final=False))


def _raise_user_error(item: WorkItem) -> None:
    """A UserError inside a stage actor (a model that would not load) stops the run with its own
    line; the video is not committed, so the next run redoes it."""
    for r in item.rejects:
        if r.reason == USER_ERROR_REASON:
            raise UserError(r.message)


def _open_limits(cfg: RunConfig):
    """The run's one budget and rate limit for all label workers (labelers/budget.py), or None."""
    if cfg.labeler.kind == "none" or cfg.labeler.batch:
        return None
    from ..labelers.budget import SharedLimits

    if cfg.engine.kind == "ray":
        from .ray_pipeline import init_ray

        init_ray(cfg.engine)
    return SharedLimits(cfg.labeler, use_ray=cfg.engine.kind == "ray")


def _close_limits(limits, root: Path) -> None:
    """Write the run's labeler/cost.json (summed over all label workers) once, then stop the limits."""

    try:
        limits.write_cost(OutputPaths(root).cost)
    except Exception as e:  # noqa: BLE001 - the cost report must not hide why the run ended
        log.warning("could not write %s: %s", OutputPaths(root).cost, e)
    finally:
        limits.close()
