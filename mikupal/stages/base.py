"""The one shape every stage has.

A stage declares its resources and the model files it loads (`models`), checks what it needs of
the run in the driver before any worker starts (`preflight`), loads its models once in `setup()`
(once per Ray actor), maps one `WorkItem` to zero or more `WorkItem`s in `process()`, and lets
go of what it holds in `teardown()`. Executors (Ray Data, the sequential engine) adapt any stage
through `start`, `run_batch` and `teardown` without knowing what it does.

A model that will not load is a condition of the run, not of an item: `start()` turns any
failure of `setup()` into a `ModelLoadError` (a `UserError` naming the file), the one place both
engines meet it. The engines stop the run with its line (exit 2); the video is not committed.

The item itself (`WorkItem`: the engine's protocol, and the stages' payload in `item.data`) is
a record, in `records.py`. A dropped item passes through every later stage untouched.
"""

from __future__ import annotations

import os
import time
import traceback
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar, Iterable, Iterator, Literal, Optional

import pyarrow as pa

from .. import layout
from ..committed import VideoSummary
from ..config import Resources, RunConfig
from ..errors import ModelLoadError, StageError, UserError
from ..models_dir import ModelNeed, check, ensure
from ..records import StageTime, WorkItem
from .activity import ActivityFile
from .faults import injected_fault, is_disk_full
from .time_limit import TimeLimit, item_limit_s


class Stage(ABC):
    """One pipeline step. Subclasses set `name`, implement `process`, and may override `setup`."""

    name: ClassVar[str]
    #: "video" stages run before the fan-out, "segment" stages after it
    level: ClassVar[Literal["video", "segment"]] = "segment"
    #: the fan-out stage (one video in, its utterances out, streamed)
    fans_out: ClassVar[bool] = False
    #: CPU-seconds per media second of the stage's CPU-side work (measured), where the plan should
    #: estimate how fast a pool of it can feed its GPU
    cpu_cost: ClassVar[Optional[float]] = None

    def __init__(self, cfg: RunConfig, output_dir: str | Path, threads: Optional[int] = None):
        self.cfg = cfg
        self.output_dir = Path(output_dir)
        self._ready = False
        self._activity: Optional[ActivityFile] = None  # made in the worker (its pid names the file)
        #: math-library threads this worker may use (decoders, torch, OpenCV, ONNX Runtime,
        #: CTranslate2); None = each library's default (all cores: one process running everything)
        self.threads = threads

    @property
    def resources(self) -> Resources:
        return Resources()

    # what executors read to run a stage; none of them ever looks at a stage's name

    #: the stage keeps a model loaded: executors run it as a pool of long-lived workers (Ray
    #: actors), so the model loads once per worker; other stages run as tasks Ray may fuse
    holds_model: bool = False

    @property
    def items_per_call(self) -> int:
        """Items the executor hands one call: `resources.items_per_call`, else 1 (one utterance at a time)."""
        return self.resources.items_per_call or 1

    @property
    def model_batch(self) -> Optional[int]:
        """The model's own forward batch (segments, chunks, frames per pass), where it has one."""
        return None

    @property
    def holds_gpu(self) -> bool:
        return self.resources.num_gpus > 0

    def execution(self) -> str:
        """What runs the stage's models, as asked for (device / execution provider): shown by the
        plan; each model logs what it really got (`devices.py`)."""
        return ""

    def secret_env(self) -> list[str]:
        """Environment variables (names) the stage's workers need that must never be written to
        config, rows, files or Ray's logged runtime_env: they travel with the worker's constructor."""
        return []

    @property
    def work_dir(self) -> Path:
        """Scratch space for intermediate media (separated vocals ...), removed after commit."""
        return self.output_dir / layout.WORK

    def device(self, what: Optional[str] = None) -> str:
        """"cuda" when the stage asks for a GPU and torch sees one, else "cpu"; a stage holding a GPU
        whose model would run on the CPU says so, or stops the run under `engine.require_gpu`."""
        from ..devices import torch_device

        return torch_device(what or f"{self.name} ({type(self).__name__})", self.holds_gpu, self.cfg.engine.require_gpu)

    @classmethod
    def models(cls, cfg: RunConfig) -> list[ModelNeed]:
        """The model files this stage loads under `cfg` (built with `models_dir`'s helpers):
        `preflight` resolves them, `mikupal models` lists and checks them."""
        return []

    @classmethod
    def preflight(cls, cfg: RunConfig) -> None:
        """Run-level checks, in the driver, before any worker starts: each model file present and
        whole (downloaded now when it may be). A problem is a one-line UserError. Stages that need
        more of the run (a service's key) extend it."""
        for need in cls.models(cfg):
            ensure(need, cfg.models_dir, cfg.offline)

    def setup(self) -> None:
        """Load models. Called once per worker, before the first item (through `start`)."""

    def start(self) -> None:
        """`setup()` once. Its failure is the run's, not an item's: a `ModelLoadError` naming the
        file that will not load (each model is loaded again, as its runtime loads it, to find which)."""
        if self._ready:
            return
        self.limit_blas()
        try:
            self.setup()
        except UserError:
            raise
        except Exception as e:  # noqa: BLE001 - whatever a loader raises, the run cannot go on without it
            raise self._load_error(e) from None
        self._ready = True

    def _load_error(self, e: Exception) -> ModelLoadError:
        """Which file will not load, and why: the check's own words when it finds the file broken,
        else the loader's error (a whole file of the wrong model, say)."""
        try:
            needs = self.models(self.cfg)
            broken = [st for st in (check(n, load=True) for n in needs) if st.state != "present"]
        except Exception:  # noqa: BLE001 - naming the file is a courtesy: the load error itself must come out
            needs, broken = [], []
        if broken:
            why = "; ".join(f"{st.need.path}: {st.problem or st.state}" for st in broken)
        else:
            where = ", ".join(str(n.path) for n in needs) or "its model"
            why = f"{where}: {type(e).__name__}: {' '.join(str(e).split())[:160]}"
        return ModelLoadError(f"{self.name} stage could not load {why}; replace the file (`mikupal models` checks each one)")

    def teardown(self) -> None:
        """Let go of what `setup()` holds (connections, threads, sessions). Called once when a
        worker ends: by the Ray actor's shutdown, and by the sequential engine at the end."""

    def limit_blas(self) -> None:
        """Cap NumPy's BLAS pool (OpenBLAS: one per process) at `threads` (no-op when None). Its
        idle workers spin after each call, and where the pools already hold every core that spin
        is lost: on a 2-core run of 40 short clips, OpenBLAS's one extra thread used 12.5 CPU-s of
        88 (4.3 with the pool capped at one, the rest of the run unchanged)."""
        if not self.threads:
            return
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=int(self.threads), user_api="blas")

    def limit_threads(self) -> None:
        """Cap this process's torch and OpenCV thread pools at `threads` (no-op when None)."""
        if not self.threads:
            return
        import cv2
        import torch

        cv2.setNumThreads(int(self.threads))
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(int(self.threads))

    @abstractmethod
    def process(self, item: WorkItem) -> Iterable[WorkItem]:
        """Map one live item to its successors (usually one; several at the fan-out, where a
        generator passes each on as soon as it is ready)."""

    # ------------------------------------------------------------ executor side

    def run_item(self, item: WorkItem) -> list[WorkItem]:
        """Process with fault isolation: any exception becomes a reject of this item."""
        return list(self.iter_item(item))

    def iter_item(self, item: WorkItem) -> Iterator[WorkItem]:
        """`process` with fault isolation, streamed: successors are passed on as `process` yields
        them (a fan-out stage's first utterances reach the next stage while it still works on the
        rest). Any exception becomes a reject: of this item, or, after some successors were
        already passed on, one more item carrying the reject. This stage's time rides on the last
        item; a fan-out stage marks the last one with how many there were (`fanout_total`, 0 =
        more to come), so the writer knows when a video is complete."""
        if item.passes_through:
            yield item
            return
        self.start()
        if self._activity is None:
            self._activity = ActivityFile(self.output_dir, self.name)
        self._activity.started(item)
        t0 = time.perf_counter()
        held: Optional[WorkItem] = None  # the latest successor, passed on when the next one comes
        n = 0
        failure: Optional[tuple[str, str]] = None
        limit = TimeLimit(self._time_limit_s(item), f"{self.name} on {item.item_id}")
        try:
            with limit:
                injected_fault(self.name, item)
                outputs = iter(self.process(item))
            while True:
                with limit:  # the alarm is off while a successor is handed on
                    out = next(outputs, None)
                if out is None:
                    break
                if held is not None:
                    yield self._not_last(held)
                held, n = out, n + 1
                self._activity.advanced(out)
        except StageError as e:
            if is_disk_full(e, self.output_dir, heuristic=False):
                failure = ("disk_full", f"no space left under {self.output_dir}: {e.message}")
            else:
                failure = (e.reason, e.message)
        except MemoryError:
            failure = ("out_of_memory", f"{self.name} ran out of memory")
        except Exception as e:  # noqa: BLE001 - one bad item must never end the run
            tb = traceback.format_exception_only(type(e), e)[-1].strip()
            if is_disk_full(e, self.output_dir):  # the driver stops the run; the video is redone on resume
                failure = ("disk_full", f"no space left under {self.output_dir}: {tb}")
            else:
                failure = ("stage_error", f"{tb}")
        if failure is not None and held is not None:
            yield self._not_last(held)
            # what the input carried (video-level rejects, earlier stage times) went out with the
            # first successor: the reject item carries only the failure
            held = item.model_copy(update={"rejects": [], "times": [], "status": "video",
                                            "data": item.data.model_copy(update={"segment": None})})
            held = held.reject(self.name, *failure)
            n += 1
        elif failure is not None:
            held, n = item.reject(self.name, *failure), 1
        elif held is None:  # a stage may not swallow an item
            held, n = item.reject(self.name, "lost_item", f"{self.name} returned nothing for this item"), 1
        if self.fans_out:
            held.fanout_total = n
        held.times.append(StageTime(stage=self.name, seconds=time.perf_counter() - t0, gpus=os.environ.get("CUDA_VISIBLE_DEVICES", "")))
        self._activity.finished(held)
        yield held

    def _time_limit_s(self, item: WorkItem) -> Optional[float]:
        e = self.cfg.engine
        if item.data.segment is not None:
            media_s = item.data.segment.end - item.data.segment.start
        else:
            media_s = item.data.video.duration if item.data.video is not None else 0.0
        return item_limit_s(e.item_timeout_s, e.item_timeout_per_media_s, media_s)

    def _not_last(self, item: WorkItem) -> WorkItem:
        if self.fans_out:
            item.fanout_total = 0  # more of this video's items are coming
        return item

    def side_by_side(self):
        """What merges the model calls of one call's items when they run side by side (a `Gather`:
        `begin(n)`, `done()`), or None: one item after another. Asked after `setup`."""
        return None

    def iter_batch(self, batch: pa.Table) -> Iterator[WorkItem]:
        """Every item of an Arrow batch through `iter_items` (the labeler overrides it to batch
        requests)."""
        yield from self.iter_items(WorkItem.from_table(batch))

    def depends_on_call(self, video: "VideoSummary") -> bool:
        """Whether a committed video's results depend on the other videos of its call. The engine
        hands a video-level stage the same videos together in every run (the inputs in order,
        `items_per_call` at a time); a resumed run redoes such a video with its call's unfinished
        ones, so it ends as an uninterrupted run would have (the ASR's packing)."""
        return False

    def iter_items(self, items: list[WorkItem]) -> Iterator[WorkItem]:
        """One call's items (`items_per_call` of them), each through `iter_item`, in order; side by
        side in threads when the stage merges their model calls. A stage that works on a call's
        items together (the ASR packs short videos into shared windows) overrides it."""
        if len(items) > 1 and self.items_per_call > 1:
            if not self._ready:
                self.setup()  # a UserError (a model that will not load) stops the run, here
                self._ready = True
            gather = self.side_by_side()
            if gather is not None:
                yield from self._side_by_side(items, gather)
                return
        for it in items:
            yield from self.iter_item(it)

    def _side_by_side(self, items: list[WorkItem], gather) -> Iterator[WorkItem]:
        from .side_by_side import side_by_side

        limits = [self._time_limit_s(it) for it in items]
        timeout = None if None in limits else max(limits)
        for i, out in side_by_side(self.run_item, items, gather, timeout):
            yield from ([items[i].reject(self.name, "timeout", f"{self.name} on {items[i].item_id}: {out}")]
                        if isinstance(out, TimeoutError) else out)

    def run_batch(self, batch: pa.Table) -> pa.Table:
        return WorkItem.to_table(list(self.iter_batch(batch)))

    __call__ = run_batch
