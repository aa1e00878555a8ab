"""Label: MLLM emotion annotation of each kept segment (see `mikupal.labelers`).

A thin adapter over a `labelers.session.LabelSession` (the backend, its `LabelPool`, the run's
limits and the event loop, set up once per worker): all live segment items of a batch are labeled
concurrently (bounded concurrency, RPM/TPM limits, backoff, budget); each item gets `item.data.annotation` or is rejected
with the labeler's reason (`labeler_invalid_output`, `labeler_rate_limited`,
`labeler_server_error`, `labeler_timeout`, `labeler_safety_block`, `labeler_max_tokens`,
`budget_exhausted`, ...). Budget, rate limits and the stop switch are the run's (`labelers.budget`): shared by every label
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

import uuid
from typing import Any, Iterator, Optional

import pyarrow as pa

from ..config import Resources
from ..labelers.base import LabelRequest
from ..labelers.requests import context_turns, label_request
from ..labelers.pricing import RunCost
from ..records import StageTime, WorkItem
from .base import Stage


class LabelStage(Stage):
    name = "label"
    holds_model = True  # the client, its connection pool and the budget handle live in the worker
    level = "segment"

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

    def __init__(self, cfg, output_dir, threads=None):
        super().__init__(cfg, output_dir, threads)
        self.stats = RunCost(model=cfg.labeler.model)
        self.session = None  # a labelers.session.LabelSession once set up
        self._worker = uuid.uuid4().hex[:12]

    def __getstate__(self) -> dict[str, Any]:  # picklable for Ray before and after setup
        state = dict(self.__dict__)
        state.update(session=None, _ready=False)
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

    @property
    def _labeler(self):
        """The backend of the open session (None before setup or after close)."""
        return self.session.labeler if self.session is not None else None

    # ------------------------------------------------------------ lifecycle

    @classmethod
    def preflight(cls, cfg) -> None:
        """The labeler's key present and accepted, its model served, a price known for max_usd
        (`labelers/preflight.py`): one line now, not a failure after the heavy stages ran."""
        super().preflight(cfg)
        from ..labelers.preflight import preflight

        preflight(cfg.labeler)

    def setup(self) -> None:
        if not self.active:
            return
        from ..labelers.session import LabelSession, load_run_taxonomy

        self.session = LabelSession.open(self.cfg.labeler, load_run_taxonomy(self.cfg.taxonomy), stats=self.stats,
                                         shared=True)

    def teardown(self) -> None:
        self.close()

    def close(self) -> None:
        """Close connections and stop the loop thread (safe to call twice)."""
        if self.session is not None:
            self.session.close()
        self.session = None
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
        self.start()
        assert self.session is not None
        try:
            requests = [self.request_for(it, ctx) for it, ctx in zip(live, self._contexts(live))]
            results = self.session.label(requests)
        except Exception as e:  # noqa: BLE001 - the batch's fault isolation (Stage.iter_item's, for many items)
            for it in live:
                it.reject(self.name, "stage_error", f"{type(e).__name__}: {e}")
            return items
        for it, res in zip(live, results):
            if res.ok:
                it.data.annotation = res.annotation
            else:
                it.reject(self.name, res.reason or "labeler_error", res.message)
            it.times.append(StageTime(stage=self.name, seconds=res.seconds))
        self.session.report_cost(self.output_dir, self._worker)
        return items
