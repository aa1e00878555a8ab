"""The plan's workers as threads of this one process: one machine, no cluster (a laptop, a CPU box).

The same stages, worker groups, pool sizes and math-library threads as the Ray executor
(`plan.make_plan` for this machine's cores), joined by bounded queues instead of Ray Data operators:
no Ray to start, no process (and imports, models, copies of every item) per worker. On 2 cores
a local Ray run of the 5-minute benchmark spent 168 CPU-s where this one spent 136, and peaked
at 6.0 GB where this one peaked at 2.4 (benchmarks/README.md). The heavy work (decoding, ONNX Runtime, torch, CTranslate2, OpenCV, x264)
runs outside the GIL, so the threads of the vision pool and the stages before it share the cores.

Each worker thread takes calls from its group's queue (`items_per_call` items: a group of videos
before the fan-out, utterances after it), runs them through its stages (`calls.chain`, as a Ray
worker does) and puts each successor on the next group's queue as it comes, so the vision pool
starts on a video's first utterances while the ASR transcribes the rest. A worker whose models
will not load passes the run's one-line error on with its items, as a Ray worker does."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

from ..config import EngineConfig, RunConfig
from ..errors import UserError
from ..records import WorkItem
from ..stages.base import Stage
from .calls import chain, user_error_items
from .plan import Cluster, WorkerGroup, make_plan
from .stages import stage_classes
from .thread_names import name_os_thread

log = logging.getLogger(__name__)

#: items waiting between two groups, per worker of the group that takes them: enough to keep its
#: workers busy, few enough that a fan-out does not run far ahead of the pool it feeds
QUEUE_PER_WORKER = 4
#: how often a waiting thread looks at the stop flag
POLL_S = 0.2

_END = object()  # no more calls for this group


def machine_cores(engine: EngineConfig) -> float:
    """The cores a local run places its workers on: `engine.num_cpus`, else the ones this process may use."""
    if engine.num_cpus:
        return float(engine.num_cpus)
    return float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def machine(cfg: RunConfig) -> Cluster:
    """This machine's cores, and no GPU: the local engine runs the CPU plan (GPU pools go through
    Ray: `engine=auto` picks it for them)."""
    return Cluster(cpus=machine_cores(cfg.engine))


def pool_workers(group: WorkerGroup, cluster: Cluster) -> int:
    """Threads for a group: its pool size; a task group (Ray runs as many as fit) one per core."""
    return group.placed.workers or max(1, int(cluster.cpus))


@dataclass
class _Group:
    """One worker group at run time: its queue of calls, its threads, and how many are still working."""

    index: int
    spec: WorkerGroup
    classes: tuple[type[Stage], ...]
    workers: int
    inbox: "queue.Queue" = field(init=False)
    alive: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.inbox = queue.Queue(maxsize=QUEUE_PER_WORKER * self.workers)

    @property
    def video_level(self) -> bool:
        return self.classes[0].level == "video"


class _Pipeline:
    def __init__(self, cfg: RunConfig, out_dir: Path, items: list[WorkItem]):
        self.cfg, self.out_dir, self.items = cfg, out_dir, items
        self.cluster = machine(cfg)
        plan = make_plan(cfg, self.cluster)
        classes = stage_classes(cfg)
        self.groups = [
            _Group(i, g, tuple(classes[k] for k in g.stages), pool_workers(g, self.cluster))
            for i, g in enumerate(plan.workers)
        ]
        self.out: "queue.Queue" = queue.Queue(maxsize=QUEUE_PER_WORKER * 2)
        self.stop = threading.Event()
        self.error: Optional[BaseException] = None
        self.threads: list[threading.Thread] = []
        # a video-level group taking several videos per call gets each group of videos whole
        self.videos_per_group = Counter(it.group for it in items)
        self.input_order = {it.video_id: k for k, it in enumerate(items)}  # a call's videos in input order
        self._pending: dict[int, dict[int, list[WorkItem]]] = {g.index: {} for g in self.groups}

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        for g in self.groups:
            g.alive = g.workers
            for w in range(g.workers):
                t = threading.Thread(target=self._worker, args=(g,), name=f"mikupal-{g.spec.placed.stage}-{w}", daemon=True)
                self.threads.append(t)
                t.start()
        feeder = threading.Thread(target=self._feed, name="mikupal-feed", daemon=True)
        self.threads.append(feeder)
        feeder.start()

    def results(self) -> Iterator[WorkItem]:
        """The last group's items as they come; the first worker failure (a bug, not an item's
        problem: those are rejects) is raised here."""
        while True:
            try:
                got = self.out.get(timeout=POLL_S)
            except queue.Empty:
                if self.error is not None:
                    raise self.error
                continue
            if got is _END:
                if self.error is not None:
                    raise self.error
                return
            yield got

    def close(self, wait_s: float = 5.0) -> None:
        """Stop every thread: they finish the call they are in (a native call cannot be cut) and tear
        their stages down; the run's end does not wait past `wait_s` for one stuck in a model."""
        self.stop.set()
        deadline = time.monotonic() + wait_s
        for t in self.threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------ moving calls

    def _put(self, q: "queue.Queue", value) -> bool:
        while not self.stop.is_set():
            try:
                q.put(value, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: "queue.Queue"):
        while not self.stop.is_set():
            try:
                return q.get(timeout=POLL_S)
            except queue.Empty:
                continue
        return _END

    def _feed(self) -> None:
        first = self.groups[0]
        try:
            for it in self.items:
                if not self._hand_on(first, it):
                    return
            self._flush(first)
        except BaseException as e:  # noqa: BLE001 - a bug here must end the run, not hang it
            self._fail(e)
        finally:
            for _ in range(first.workers):
                self._put(first.inbox, _END)

    def _hand_on(self, group: _Group, item: WorkItem) -> bool:
        """Put `item` on `group`'s queue: alone, or, where the group takes several videos per call,
        with the rest of its group of videos (the same videos together in every run)."""
        k = group.spec.placed.items_per_call
        if not group.video_level or k <= 1:
            return self._put(group.inbox, [item])
        pending = self._pending[group.index]
        with group.lock:
            part = pending.setdefault(item.group, [])
            part.append(item)
            whole = len(part) >= self.videos_per_group[item.group]
            if whole:
                del pending[item.group]
        return self._put(group.inbox, self._in_input_order(part)) if whole else True

    def _in_input_order(self, part: list[WorkItem]) -> list[WorkItem]:
        """The order videos arrive in depends on which worker finished first; a packing stage lays
        them into windows in call order, so a call gets them in input order."""
        return sorted(part, key=lambda it: self.input_order.get(it.video_id, 0))

    def _flush(self, group: _Group) -> None:
        """Groups of videos still incomplete when the input ends (an item lost upstream): handed on as they are."""
        with group.lock:
            parts = list(self._pending[group.index].values())
            self._pending[group.index].clear()
        for part in parts:
            self._put(group.inbox, self._in_input_order(part))

    def _next_call(self, group: _Group) -> object:
        """A call for one of `group`'s workers: a list of items, or _END. Segment-level calls of
        more than one item wait for that many (as Ray Data's batches do), or the end."""
        first = self._get(group.inbox)
        if first is _END:
            return _END
        k = group.spec.placed.items_per_call
        if group.video_level or k <= 1:
            return first
        call = list(first)
        while len(call) < k:
            more = self._get(group.inbox)
            if more is _END:
                self._put(group.inbox, _END)  # for a sibling: this worker ends after this call
                break
            call.extend(more)
        return call

    # ------------------------------------------------------------ one worker

    def _worker(self, group: _Group) -> None:
        name_os_thread(threading.current_thread().name.removeprefix("mikupal-"))
        nxt = self.groups[group.index + 1] if group.index + 1 < len(self.groups) else None
        stages = [cls(self.cfg, self.out_dir) for cls in group.classes]
        error: Optional[tuple[str, UserError]] = None
        try:
            for stage in stages:  # models load now, side by side with the other workers'
                stage.threads = group.spec.placed.threads
                try:
                    stage.start()
                except UserError as e:
                    error = error or (stage.name, e)
            while not self.stop.is_set():
                call = self._next_call(group)
                if call is _END:
                    break
                batch = WorkItem.to_table(call)
                outs = user_error_items(batch, *error) if error else chain(stages, batch)
                for out in outs:
                    if nxt is None:
                        ok = self._put(self.out, out)
                    else:
                        ok = self._hand_on(nxt, out)
                    if not ok:
                        return
        except BaseException as e:  # noqa: BLE001 - a bug in a worker ends the run in the driver
            self._fail(e)
        finally:
            for stage in stages:
                if stage._ready:
                    try:
                        stage.teardown()
                    except Exception:  # noqa: BLE001 - the end of a run must not hide why it ended
                        log.exception("%s teardown failed", stage.name)
            self._worker_done(group, nxt)

    def _worker_done(self, group: _Group, nxt: Optional[_Group]) -> None:
        with group.lock:
            group.alive -= 1
            last = group.alive == 0
        if not last:
            return
        if nxt is None:
            self._put(self.out, _END)
            return
        self._flush(nxt)
        for _ in range(nxt.workers):
            self._put(nxt.inbox, _END)

    def _fail(self, e: BaseException) -> None:
        if self.error is None:
            self.error = e
        log.error("local engine worker failed: %s", e, exc_info=e)
        self.stop.set()


def stream(cfg: RunConfig, out_dir: Path, items: list[WorkItem]) -> Iterator[WorkItem]:
    """Every item through every stage on this machine's threads; successors as they come."""
    pipeline = _Pipeline(cfg, Path(out_dir), items)
    pipeline.start()
    try:
        yield from pipeline.results()
    finally:
        pipeline.close()
