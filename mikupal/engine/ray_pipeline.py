"""Ray Data executor: one streaming dataset, one row per video in, one row per utterance after the
ASR fan-out. It builds what `engine/plan.py` decided: actor pools for model-holding stages, tasks
for the rest, each with the plan's resources, threads and batch size.
Rows are Arrow tables of `WorkItem`s: paths and time ranges travel, never decoded media."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Iterator, Optional

import pyarrow as pa

from ..config import RunConfig
from ..errors import UserError
from ..records import WorkItem
from ..stages.base import Stage
from ..stages.faults import FAULT_ENV
from .calls import chain as _chain
from .calls import user_error_items as _user_error_items
from .cluster import init_ray
from .plan import Cluster, make_plan
from .run_log import quiet_consoles
from .stages import stage_classes, video_group_size

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _retry_args_accepted():
    """Ray Data 2.60 (the newest on PyPI) deprecates passing remote args as **kwargs but names no
    parameter for the bounded retries we pass (max_restarts, max_task_retries, max_retries); its
    defaults retry forever, which would loop on a worker that always dies. Until a release names
    them, they go through **kwargs and that one warning is not shown (pyproject keeps ray<2.64)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
        yield


def _one_row_blocks(items: Iterator[WorkItem]) -> Iterator[pa.Table]:
    """Yield each item as its own block the moment the stage passes it on, so the utterances of one
    video spread over the whole pool, and the first ones are worked on while the fan-out is still
    transcribing the rest (with DataContext.target_max_block_size tiny, every table stays a block)."""
    for it in items:
        yield WorkItem.to_table([it])


def _run_task(batch: pa.Table, classes: tuple[type[Stage], ...], cfg: RunConfig, out_dir: str) -> Iterator[pa.Table]:
    stages = [cls(cfg, out_dir) for cls in classes]
    try:
        yield from _one_row_blocks(_chain(stages, batch))
    finally:
        for stage in stages:
            if stage._ready:
                stage.teardown()


class _Secrets(dict):
    """Environment variables a stage needs that must not be logged (the labeler's API key). They
    travel in the actor's constructor arguments: Ray's runtime-env agent writes a runtime_env's
    env_vars, values included, to its log file."""

    def __repr__(self) -> str:
        return f"<{len(self)} secret env vars>"


class _StageActor:
    """A Ray Data callable class around a worker's stages (one, or a light group run one after
    another on each item): they (and their models) live as long as the actor."""

    stage_classes: tuple[type[Stage], ...]

    def __init__(self, cfg: RunConfig, out_dir: str, secrets: Optional[_Secrets] = None, threads: int = 1):
        if secrets:
            os.environ.update(secrets)
        self.stages = [cls(cfg, out_dir) for cls in self.stage_classes]
        # load the models now: actors start with the run, so this overlaps the stages before them
        # instead of delaying the first item. A model that will not load (`Stage.start`: a
        # UserError naming the file) goes back with the first batch; the actor stays up, so Ray
        # never restarts it in a loop
        self.error: Optional[tuple[str, UserError]] = None
        for stage in self.stages:
            stage.threads = threads  # the plan's: pools share the cores, no thread oversubscription
            try:
                stage.start()
            except UserError as e:
                self.error = self.error or (stage.name, e)

    def __call__(self, batch: pa.Table) -> Iterator[pa.Table]:
        if self.error is not None:
            yield from _one_row_blocks(_user_error_items(batch, *self.error))
            return
        yield from _one_row_blocks(_chain(self.stages, batch))

    def __del__(self):
        """Ray Data deletes the callable when the actor exits gracefully: the stages let go of their models."""
        for stage in getattr(self, "stages", []):
            if stage._ready:
                stage.teardown()


def _actor_class(classes: tuple[type[Stage], ...]) -> type:
    # a subclass per worker, named after its stages, so Ray's logs and dashboard say which is which
    name = "+".join(cls.__name__ for cls in classes)
    return type(name, (_StageActor,), {"stage_classes": classes, "__module__": __name__})


def stream(cfg: RunConfig, out_dir: Path, items: list[WorkItem]) -> Iterator[WorkItem]:
    import ray
    from ray.data import DataContext

    init_ray(cfg.engine)
    quiet_consoles()  # Ray and Ray Data set up their own console handlers: to OUT/logs/ instead
    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.max_errored_blocks = -1  # a block lost to a dead worker must not end the run: the driver records it
    ctx.enable_operator_progress_bars = False
    ctx.target_max_block_size = 1  # rows are small (paths, times): one row per block spreads work evenly
    # Ray Data's per-call memory poller: a thread in the worker reading its /proc smaps every second,
    # costly in workers that hold models (the run samples its whole tree's memory itself)
    ctx.memory_usage_poll_interval_s = None
    import os as _os
    if _os.environ.get('MIKUPAL_GENBUF'):
        ctx._max_num_blocks_in_streaming_gen_buffer = int(_os.environ['MIKUPAL_GENBUF'])
    # a video-level stage taking several videos per call gets the same ones together in every run:
    # rows reach it in input order, so each batch is one group of run._plan (Ray Data bundles a
    # batch from consecutive rows)
    ctx.execution_options.preserve_order = video_group_size(cfg) > 1
    plan = make_plan(cfg, Cluster.of_ray())
    plan.check_fits()

    blocks = [WorkItem.to_table([it]) for it in items]  # one block per video: videos spread over workers
    ds = ray.data.from_arrow(blocks)
    classes = stage_classes(cfg)
    for group in plan.workers:
        ds = _add_worker(ds, tuple(classes[i] for i in group.stages), group.placed, cfg, out_dir)
    before = set(threading.enumerate())
    batches = iter(ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=0))
    try:
        for batch in batches:
            yield from WorkItem.from_table(batch)
    finally:
        _close_iterator(batches, before)


def _add_worker(ds, classes: tuple[type[Stage], ...], placed, cfg: RunConfig, out_dir: Path):
    """The dataset with one more operator: the worker (an actor pool, or tasks) that runs `classes`
    with the plan's resources, threads and batch size."""
    from ray.data import ActorPoolStrategy

    remote = placed.remote_args()
    secrets = _Secrets({k: os.environ[k] for cls in classes for k in cls(cfg, out_dir).secret_env() if os.environ.get(k)})
    if os.environ.get(FAULT_ENV):  # test-only fault injection (stages/base.py), off unless set
        remote["runtime_env"] = {"env_vars": {FAULT_ENV: os.environ[FAULT_ENV]}}
    with _retry_args_accepted():
        if placed.actors:
            return ds.map_batches(
                _actor_class(classes),
                fn_constructor_args=(cfg, str(out_dir), secrets or None, placed.threads),
                batch_size=placed.items_per_call,
                batch_format="pyarrow",
                compute=ActorPoolStrategy(size=placed.workers),
                max_restarts=cfg.engine.max_actor_restarts,
                max_task_retries=cfg.engine.max_task_retries,
                **remote,
            )
        return ds.map_batches(
            _run_task,
            fn_args=(classes, cfg, str(out_dir)),
            batch_size=placed.items_per_call,
            batch_format="pyarrow",
            max_retries=cfg.engine.max_task_retries,
            **remote,
        )


def _close_iterator(batches, before: set, wait_s: float = 10.0) -> None:
    """Stop Ray Data's reading threads before anyone shuts Ray down: a thread of theirs that
    touches Ray after `ray.shutdown()` makes Ray's core end the whole process (exit 1, its line in
    the log only), which would swallow the run's own one-line error."""
    close = getattr(batches, "close", None)
    if close is not None:
        close()
    deadline = time.monotonic() + wait_s
    for t in set(threading.enumerate()) - before:
        if t.name.startswith("ray_") or t.name == "Prefetcher" or t is threading.current_thread():
            continue  # Ray core's own end with ray.shutdown(); the prefetcher, once idle, waits and touches nothing
        t.join(timeout=max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            log.warning("Ray Data thread %s still running after %.0f s", t.name, wait_s)
