"""The one shape every stage has.

A stage declares its resources, loads its models once in `setup()` (once per Ray actor), and
maps one `WorkItem` to zero or more `WorkItem`s in `process()`. Executors (Ray Data, the
sequential engine) adapt any stage through `run_batch` without knowing what it does.

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
from ..errors import StageError
from ..records import StageTime, WorkItem
from .faults import injected_fault, is_disk_full
from .time_limit import TimeLimit, item_limit_s


class Stage(ABC):
    """One pipeline step. Subclasses set `name`, implement `process`, and may override `setup`."""

    name: ClassVar[str]
    #: "video" stages run before the fan-out, "segment" stages after it
    level: ClassVar[Literal["video", "segment"]] = "segment"
    #: the fan-out stage (one video in, its utterances out, streamed)
    fans_out: ClassVar[bool] = False

    def __init__(self, cfg: RunConfig, output_dir: str | Path, threads: Optional[int] = None):
        self.cfg = cfg
        self.output_dir = Path(output_dir)
        self._ready = False
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

    def secret_env(self) -> list[str]:
        """Environment variables (names) the stage's workers need that must never be written to
        config, rows, files or Ray's logged runtime_env: they travel with the worker's constructor."""
        return []

    @property
    def work_dir(self) -> Path:
        """Scratch space for intermediate media (separated vocals ...), removed after commit."""
        return self.output_dir / layout.WORK

    def device(self) -> str:
        """"cuda" when the stage asks for a GPU and one is there, else "cpu"."""
        if self.resources.num_gpus > 0:
            import torch

            if torch.cuda.is_available():
                return "cuda"
        return "cpu"

    def setup(self) -> None:
        """Load models. Called once per worker, before the first item."""

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
        if not self._ready:
            self.setup()
            self._ready = True
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

    def iter_batch(self, batch: pa.Table) -> Iterator[WorkItem]:
        """Every item of an Arrow batch through `iter_items` (the labeler overrides it to batch requests)."""
        yield from self.iter_items(WorkItem.from_table(batch))

    def iter_items(self, items: list[WorkItem]) -> Iterator[WorkItem]:
        """One call's items (`items_per_call` of them), each through `iter_item`, in order. A stage
        that works on a call's items together (the ASR packs short videos into shared windows)
        overrides it and says so in `depends_on_call`."""
        for it in items:
            yield from self.iter_item(it)

    def depends_on_call(self, video: "VideoSummary") -> bool:
        """Whether a committed video's results depend on the other videos of its call. The engine
        hands a video-level stage the same videos together in every run (the inputs in order,
        `items_per_call` at a time); a resumed run redoes such a video with its call's unfinished
        ones, so it ends as an uninterrupted run would have."""
        return False

    def run_batch(self, batch: pa.Table) -> pa.Table:
        return WorkItem.to_table(list(self.iter_batch(batch)))

    __call__ = run_batch
