"""The one shape every stage has, and the typed work item that flows between stages.

A stage declares its resources, loads its models once in `setup()` (once per Ray actor), and
maps one `WorkItem` to zero or more `WorkItem`s in `process()`. Executors (Ray Data, the
sequential engine) adapt any stage through `run_batch` without knowing what it does.

An item that is rejected becomes `status="dropped"` with a `Reject` attached; later stages pass
it through untouched, so it still reaches the writer and lands in `rejects/`: nothing is lost.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
import traceback
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar, Iterable, Iterator, Literal, Optional

import pyarrow as pa
from pydantic import Field

from .. import layout
from ..config import Resources, RunConfig
from ..errors import StageError
from ..records import (
    EmotionAnnotation,
    FaceTrack,
    Float32,
    Record,
    Reject,
    SourceVideo,
    SpeechRegion,
    SpeechSegment,
    VoiceWindows,
)
from .time_limit import TimeLimit, item_limit_s


#: errno values that mean the output filesystem is full (a run-level condition, not a bad item)
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
#: below this much free space, an unexpected write failure is taken for a full disk (some writers,
#: libsndfile's, report a bare "System error." without the errno)
LOW_SPACE_BYTES = 16 << 20

#: test-only fault injection, off unless set: "STAGE:ITEM:ACTION[:MARKER]" entries joined by ";".
#: ITEM is an item id, a video id or "*"; ACTION is "raise" (the stage raises: a `stage_error`
#: reject) or "exit" (the worker process dies: os._exit(1)); with MARKER (a file path) the fault
#: fires once, on the attempt that creates MARKER. Workers under Ray get it from the driver.
FAULT_ENV = "MIKUPAL_FAULT_INJECT"


def _injected_fault(stage: str, item: "WorkItem") -> None:
    spec = os.environ.get(FAULT_ENV, "")
    for entry in filter(None, (e.strip() for e in spec.split(";"))):
        parts = entry.split(":", 3)
        if len(parts) < 3 or parts[0] != stage or parts[1] not in ("*", item.item_id, item.video_id):
            continue
        if len(parts) == 4:
            try:
                os.close(os.open(parts[3], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                continue
        if parts[2] == "exit":
            os._exit(1)
        raise RuntimeError(f"injected fault ({FAULT_ENV}={entry})")


def is_disk_full(exc: BaseException, output_dir: Path, heuristic: bool = True) -> bool:
    """Whether `exc` (or what caused it) is the output filesystem running out of space or quota;
    with `heuristic`, also any error while that filesystem has less than LOW_SPACE_BYTES free."""
    e: Optional[BaseException] = exc
    for _ in range(16):  # the cause chain, bounded
        if e is None:
            break
        if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS:
            return True
        e = e.__cause__ or e.__context__
    if not heuristic:
        return False
    try:
        return shutil.disk_usage(output_dir).free < LOW_SPACE_BYTES
    except OSError:
        return False


class StageTime(Record):
    stage: str
    seconds: float
    gpus: str = ""  # the GPUs the worker was given (CUDA_VISIBLE_DEVICES under Ray), for placement checks


class WorkItem(Record):
    """A video (before the ASR fan-out) or one utterance of it (after)."""

    source: str  # the input path as given
    path: str = ""  # the resolved absolute path (workers may run elsewhere than the driver's cwd)
    video_id: str = ""
    status: Literal["video", "segment", "dropped"] = "video"
    fanout_total: int = 1  # items this video became at the fan-out: the writer commits when all arrived
    # an utterance a later stage split into pieces: each piece carries its utterance's id and its
    # share of it (1/k of its parent's share), so the writer knows when every piece has arrived
    origin_id: str = ""
    share: float = 1.0
    video: Optional[SourceVideo] = None
    vocals_path: Optional[str] = None  # full-band vocals (dataset rate), under the work dir
    analysis_path: Optional[str] = None  # 16 kHz mono analysis audio, under the work dir
    speech_seconds: float = 0.0
    regions: list[SpeechRegion] = Field(default_factory=list)
    segment: Optional[SpeechSegment] = None
    tracks: list[FaceTrack] = Field(default_factory=list)
    speaker_track: Optional[int] = None
    speaker_boxes: list[list[float]] = Field(default_factory=list)
    asd_score: Optional[float] = None
    speaking_fraction: Optional[float] = None
    voice: Optional[VoiceWindows] = None  # window embeddings over the utterance (speaker stage)
    speaker_embedding: list[Float32] = Field(default_factory=list)
    other_faces: list[list[float]] = Field(default_factory=list)  # median boxes of the other faces on screen
    audio_path: Optional[str] = None  # relative to the output dir
    clip_path: Optional[str] = None  # relative to the output dir
    dnsmos_sig: Optional[float] = None  # DNSMOS scores, from the quality stage
    dnsmos_bak: Optional[float] = None
    dnsmos_ovrl: Optional[float] = None
    dnsmos_p808: Optional[float] = None
    annotation: Optional[EmotionAnnotation] = None
    rejects: list[Reject] = Field(default_factory=list)
    times: list[StageTime] = Field(default_factory=list)

    @property
    def item_id(self) -> str:
        return self.segment.segment_id if self.segment else self.video_id or self.source

    @property
    def origin(self) -> str:
        """The id of the utterance this item is (a piece of)."""
        return self.origin_id or self.item_id

    def pieces(self, segments: list[SpeechSegment], rejects: list[Reject]) -> list["WorkItem"]:
        """This utterance cut into `segments` (each its own item from here on), with the stretches
        cut away as `rejects` riding on the first piece. No segment left: this item, dropped with
        exactly those span rejects (their seconds are the whole account of it)."""
        if not segments:
            self.rejects.extend(rejects)
            self.status = "dropped"
            return [self]
        origin, share = self.origin, self.share / len(segments)
        out = []
        for k, seg in enumerate(segments):
            it = self.model_copy(update={"segment": seg, "origin_id": origin, "share": share,
                                         "rejects": list(self.rejects) + list(rejects) if k == 0 else [],
                                         "times": list(self.times) if k == 0 else []})
            out.append(it)
        return out

    def span_reject(self, stage: str, reason: str, message: str, start: float, end: float) -> Reject:
        """A reject row for a stretch [start, end) of this video that never became an utterance."""
        return Reject.span(self.video_id, self.source, stage, reason, message, start, end)

    def reject(self, stage: str, reason: str, message: str = "") -> "WorkItem":
        """Drop this item with a reason; it still travels to the writer."""
        start = end = None
        if self.segment is not None:
            start, end = self.segment.start, self.segment.end
        self.rejects.append(
            Reject(
                item_id=self.item_id,
                video_id=self.video_id,
                source=self.source,
                stage=stage,
                reason=reason,
                message=message or reason,
                start=start,
                end=end,
            )
        )
        self.status = "dropped"
        return self


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
    def batch_size(self) -> int:
        """Items per call: `resources.batch_size`, else 1 (one utterance at a time)."""
        return self.resources.batch_size or 1

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
        if item.status == "dropped":
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
                _injected_fault(self.name, item)
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
            held = item.model_copy(update={"rejects": [], "times": [], "segment": None, "status": "video"})
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
        if item.segment is not None:
            media_s = item.segment.end - item.segment.start
        else:
            media_s = item.video.duration if item.video is not None else 0.0
        return item_limit_s(e.item_timeout_s, e.item_timeout_per_media_s, media_s)

    def _not_last(self, item: WorkItem) -> WorkItem:
        if self.fans_out:
            item.fanout_total = 0  # more of this video's items are coming
        return item

    def iter_batch(self, batch: pa.Table) -> Iterator[WorkItem]:
        """Every item of an Arrow batch through `iter_item` (the labeler overrides it to batch requests)."""
        for it in WorkItem.from_table(batch):
            yield from self.iter_item(it)

    def run_batch(self, batch: pa.Table) -> pa.Table:
        return WorkItem.to_table(list(self.iter_batch(batch)))

    __call__ = run_batch
