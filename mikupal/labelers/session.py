"""One labeling session: the backend, its `LabelPool`, the run's limits and the event loop they
run on, set up in one place for every caller.

The pipeline's label stage, `mikupal label` (`label_output.py`) and the benchmarks
(`evaluate/label_benchmark.py`) all label through a session, so a segment is sent, retried,
limited and counted the same way wherever it is labeled:

    with LabelSession.open(cfg.labeler, taxonomy, shared=True) as session:
        results = session.label(requests)            # blocking; concurrent inside
        session.run(my_coroutine(session.pool))      # any other async work on the same loop
        session.report_cost(output_dir, worker_id)   # the run's cost report

The pool lives on a private event loop thread for the session's lifetime, so synchronous callers
(a Ray actor, a command) never manage a loop. `shared=True` attaches to the run's budget, rate
limits and stop switch when a driver started them ($MIKUPAL_LABELER_LIMITS, see `budget.py`);
otherwise, or when none was started, the session's limits are its own.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable, Coroutine, Iterable, Optional

from ..config import LabelerConfig
from ..errors import UserError
from ..layout import OutputPaths
from .base import LabelRequest, LabelResult, Labeler, read_api_key
from .pricing import RunCost

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


def load_run_taxonomy(name: str):
    """The configured taxonomy, or a one-line UserError."""
    from ..taxonomy import TaxonomyError, load_taxonomy

    try:
        return load_taxonomy(name)
    except TaxonomyError as e:
        raise UserError(f"taxonomy: {e}") from None


class LabelSession:
    """A backend, its pool and limits on a private loop. Build it with `open`; close it (or use it
    as a context manager) to close the connections and stop the loop."""

    def __init__(self, cfg: LabelerConfig, labeler: Labeler, *, stats: Optional[RunCost] = None,
                 shared: bool = False):
        from .budget import LimitsClient, attach_limits
        from .pool import LabelPool

        self.cfg = cfg
        self.labeler = labeler
        self.stats = stats or RunCost(model=cfg.model)
        self.loop = LoopThread()
        self.limits, self.shared = attach_limits(cfg) if shared else (LimitsClient.private(cfg), False)
        self.pool = self.run(self._make_pool(LabelPool))  # its semaphore belongs to the session's loop

    async def _make_pool(self, pool_class):
        return pool_class(self.labeler, self.cfg, stats=self.stats, limits=self.limits)

    @classmethod
    def open(cls, cfg: LabelerConfig, taxonomy, *, stats: Optional[RunCost] = None, shared: bool = False,
             api_key: Optional[str] = None) -> "LabelSession":
        """The backend `cfg.kind` names, with the key from the config's source (never logged)."""
        from ..taxonomy import TaxonomyError
        from .factory import make_labeler

        try:
            labeler = make_labeler(cfg, taxonomy, api_key if api_key is not None else read_api_key(cfg))
        except TaxonomyError as e:
            raise UserError(f"taxonomy: {e}") from None
        log.info("labeling with %s (%s mode, prompt %s, taxonomy %s)", cfg.model, cfg.mode, cfg.prompt_version,
                 getattr(taxonomy, "name", taxonomy))
        return cls(cfg, labeler, stats=stats, shared=shared)

    # ------------------------------------------------------------ labeling

    def label(self, requests: Iterable[LabelRequest],
              on_result: Optional[Callable[[LabelResult], None]] = None) -> list[LabelResult]:
        """Label concurrently (at most `requests_in_flight` at once); results in input order."""
        return self.run(self.pool.label_many(list(requests), on_result))

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on the session's loop (where the pool lives) and wait for it."""
        return self.loop.run(coro)

    # ------------------------------------------------------------ cost

    def report_cost(self, output_dir: Path, worker: str) -> None:
        """Hand this session's cost report in: to the run's limits when they are shared (the driver
        writes their sum once), else to `<output>/labeler/cost.json` directly."""
        if self.shared:
            self.run(self.limits.merge_cost(worker, self.stats.to_dict()))
            return
        path = OutputPaths(output_dir).cost
        try:
            self.stats.write_json(path)
        except OSError as e:
            log.warning("could not write %s: %s", path, e)

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close connections and stop the loop (safe to call twice)."""
        if self.loop is None:
            return
        try:
            self.loop.run(self.labeler.aclose())
        except Exception:  # noqa: BLE001 - closing must not hide what ended the session
            pass
        self.loop.close()
        self.loop = None  # type: ignore[assignment]

    def __enter__(self) -> "LabelSession":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
