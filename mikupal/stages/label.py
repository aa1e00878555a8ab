"""Label: MLLM emotion annotation of each kept segment (see `mikupal.labelers`).

All live segment items of a batch are labeled concurrently through one `LabelPool` (bounded
concurrency, RPM/TPM limits, backoff, budget); each item gets `item.data.annotation` or is rejected
with the labeler's reason (`labeler_invalid_output`, `labeler_rate_limited`,
`labeler_server_error`, `labeler_timeout`, `labeler_safety_block`, `labeler_max_tokens`,
`budget_exhausted`, ...). The pool lives on a private event loop thread for the stage's lifetime.
Budget, rate limits and the stop switch are the run's (`labelers.budget`): shared by every label
actor when a driver started them, private to this stage otherwise. A run-level failure (bad key,
retired model, used-up daily quota) rejects the remaining items with its reason, which makes the
driver stop the run (`engine.collector`) rather than commit them.

`labeler=none`, and `labeler.batch=true` (requests go through `mikupal label ... labeler.batch=true`
later), pass items through unlabeled.

Run cost (every billed answer, rejected segments included, and the cost per kept hour): with the
run's shared limits, each stage hands its report in after every batch and the driver writes the
sum to `<output>/labeler/cost.json` once; a stage on its own writes that file itself.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from concurrent.futures import Future
from typing import Any, Coroutine, Iterator, Optional

import pyarrow as pa

from ..layout import OutputPaths
from ..config import Resources
from ..errors import UserError
from ..labelers.base import LabelRequest, read_api_key
from ..labelers.requests import context_turns, label_request
from ..labelers.pricing import RunCost
from ..records import StageTime, WorkItem
from .base import Stage

log = logging.getLogger("mikupal.labelers")



class LoopThread:
    """An asyncio event loop on a daemon thread; `run(coro)` blocks until the coroutine is done."""

    def __init__(self, name: str = "mikupal-labeler"):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        fut: Future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result()

    def close(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
        if not self.loop.is_running():
            self.loop.close()


class LabelStage(Stage):
    name = "label"
    holds_model = True  # the client, its connection pool and the budget handle live in the worker

    @property
    def items_per_call(self) -> int:
        """Requests are sent concurrently within a batch: as many items as requests in flight."""
        return self.resources.items_per_call or max(1, self.cfg.labeler.requests_in_flight)

    def secret_env(self) -> list[str]:
        # workers started before this run (a shared cluster) don't have the driver's env: the key
        # travels with the actor's constructor arguments, never in our config, rows, files or
        # Ray's runtime_env (logged); LIMITS_ENV names the run's shared budget actor
        from ..labelers.budget import LIMITS_ENV

        return [self.cfg.labeler.api_key_env, "GOOGLE_GEMINI_BASE_URL", LIMITS_ENV]
    level = "segment"

    def __init__(self, cfg, output_dir, threads=None):
        super().__init__(cfg, output_dir, threads)
        self.stats = RunCost(model=cfg.labeler.model)
        self._loop: Optional[LoopThread] = None
        self._labeler = None
        self._pool = None
        self._limits = None
        self._shared = False  # the run's limits (the driver writes cost.json) or this stage's own
        self._worker = uuid.uuid4().hex[:12]

    def __getstate__(self) -> dict[str, Any]:  # picklable for Ray before and after setup
        state = dict(self.__dict__)
        state.update(_loop=None, _labeler=None, _pool=None, _limits=None, _ready=False)
        return state

    @property
    def resources(self) -> Resources:
        return self.cfg.labeler.resources

    def execution(self) -> str:
        return f"{self.cfg.labeler.kind} API: {self.cfg.labeler.model}" if self.active else ""

    @property
    def active(self) -> bool:
        lc = self.cfg.labeler
        return lc.kind != "none" and not lc.batch

    # ------------------------------------------------------------ lifecycle

    def setup(self) -> None:
        if not self.active:
            return
        from ..labelers.factory import make_labeler
        from ..labelers.budget import attach_limits
        from ..labelers.pool import LabelPool
        from ..taxonomy import TaxonomyError, load_taxonomy

        try:
            taxonomy = load_taxonomy(self.cfg.taxonomy)
        except TaxonomyError as e:
            raise UserError(f"taxonomy: {e}") from None
        api_key = read_api_key(self.cfg.labeler)  # kept only inside the client, never logged
        self._labeler = make_labeler(self.cfg.labeler, taxonomy, api_key)
        self._loop = LoopThread()
        self._limits, self._shared = attach_limits(self.cfg.labeler)
        self._pool = LabelPool(self._labeler, self.cfg.labeler, stats=self.stats, limits=self._limits)
        log.info("labeling with %s (%s mode, prompt %s, taxonomy %s)", self.cfg.labeler.model,
                 self.cfg.labeler.mode, self.cfg.labeler.prompt_version, taxonomy.name)

    def close(self) -> None:
        """Close connections and stop the loop thread (safe to call twice)."""
        if self._loop is not None:
            if self._labeler is not None:
                try:
                    self._loop.run(self._labeler.aclose())
                except Exception:  # noqa: BLE001
                    pass
            self._loop.close()
        self._loop = self._labeler = self._pool = self._limits = None
        self._ready = False

    # ------------------------------------------------------------ requests

    def request_for(self, item: WorkItem, context: list[str]) -> LabelRequest:
        seg = item.data.segment
        assert seg is not None
        return label_request(self.cfg.labeler, seg.segment_id, seg.text, root=self.output_dir, clip=item.data.clip_path,
                             audio=item.data.audio_path, context=context, start=seg.start, end=seg.end)

    def _contexts(self, items: list[WorkItem]) -> list[list[str]]:
        """Text mode: the `context_turns` utterances before each item among the batch's items of
        the same video (a batch rarely holds a whole video: the context is best effort)."""
        lc = self.cfg.labeler
        n = lc.context_turns if lc.mode == "text" else 0
        return context_turns(items, n, dialogue=lambda it: it.video_id, order=lambda it: it.data.segment.start,
                             line=lambda it: it.data.segment.text)

    # ------------------------------------------------------------ execution

    def process(self, item: WorkItem) -> list[WorkItem]:
        return self._label([item])

    def iter_batch(self, batch: pa.Table) -> Iterator[WorkItem]:
        """The whole batch's requests go to the pool at once (its concurrency is the point)."""
        yield from self._label(WorkItem.from_table(batch))

    def _label(self, items: list[WorkItem]) -> list[WorkItem]:
        live = [it for it in items if it.status == "segment" and it.data.segment is not None]
        if not self.active or not live:
            return items
        if not self._ready:
            self.setup()
            self._ready = True
        assert self._loop is not None and self._pool is not None
        requests = [self.request_for(it, ctx) for it, ctx in zip(live, self._contexts(live))]
        results = self._loop.run(self._pool.label_many(requests))
        for it, res in zip(live, results):
            if res.ok:
                it.data.annotation = res.annotation
            else:
                it.reject(self.name, res.reason or "labeler_error", res.message)
            it.times.append(StageTime(stage=self.name, seconds=res.seconds))
        self._write_cost()
        return items

    def _write_cost(self) -> None:
        if self._shared and self._loop is not None and self._limits is not None:
            self._loop.run(self._limits.merge_cost(self._worker, self.stats.to_dict()))
            return
        try:
            self.stats.write_json(OutputPaths(self.output_dir).cost)
        except OSError as e:
            log.warning("could not write %s: %s", OutputPaths(self.output_dir).cost, e)
