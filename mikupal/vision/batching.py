"""Batching across the utterances of one call: plumbing only, the algorithm is untouched.

The vision stage works on an utterance as one sequence of steps (decode, detect, track, ASD
passes that depend on the last one's answer). To batch the models across utterances without
rewriting that sequence, the utterances of one call run side by side in threads, and each model
call goes through a `Gather`: a caller waits until every thread still working has called in too
(or finished, or is itself waiting on another model), then one of them runs all the waiting calls
as one batched call and hands each its share. A thread busy elsewhere (decoding) holds the others
at most `max_wait_s`. The results are the ones each call would get alone: calls are batched only
with calls of the same input shape, so nothing is padded (a sequence model's edges would change).

On a GPU this turns a worker's many small forward passes (a 1 s window of one face) into one
per step; on the CPU (`items_per_call` 1, the default there) nothing of this runs.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["Gather", "BatchedDetector", "BatchedEncoders"]


class _Call:
    __slots__ = ("arg", "result", "error", "done", "queue", "since")

    def __init__(self, queue: str, arg: Any):
        self.queue, self.arg = queue, arg
        self.result = self.error = None
        self.done = False
        self.since = time.monotonic()


class Gather:
    """Merges the model calls of the threads working on one call's utterances (module docstring).

    `run(queue, fn, arg)`: `fn(list of args) -> list of results`, one per arg, is what a batch of
    the queue runs; one batch of a queue runs at a time. `begin(n)` before n threads start, `done()`
    as each ends; with none begun, every call runs at once, alone."""

    def __init__(self, max_wait_s: float = 0.05):
        self.max_wait_s = max_wait_s
        self._cv = threading.Condition()
        self._active = 0  # threads working on an utterance
        self._waiting = 0  # ... of which waiting on a model call
        self._pending: dict[str, list[_Call]] = defaultdict(list)
        self._running: set[str] = set()
        self.batches: dict[str, list[int]] = defaultdict(list)  # sizes of the batches run, per queue

    def begin(self, threads: int) -> None:
        """`threads` threads start working on utterances (before any of them starts)."""
        with self._cv:
            self._active += threads

    def done(self) -> None:
        """A thread finished its utterance: the others no longer wait for it."""
        with self._cv:
            self._active -= 1
            self._cv.notify_all()

    def run(self, queue: str, fn: Callable[[list[Any]], list[Any]], arg: Any) -> Any:
        call = _Call(queue, arg)
        with self._cv:
            self._pending[queue].append(call)
            self._waiting += 1
            self._cv.notify_all()
        self._wait(call, fn)
        if call.error is not None:
            raise call.error
        return call.result

    def _ready(self, queue: str) -> bool:
        pending = self._pending[queue]
        if not pending or queue in self._running:
            return False
        everyone = self._waiting >= self._active  # nobody still working could add to a batch
        return everyone or time.monotonic() - pending[0].since >= self.max_wait_s

    def _wait(self, call: _Call, fn: Callable[[list[Any]], list[Any]]) -> None:
        with self._cv:
            while not call.done:
                if self._ready(call.queue):
                    batch, self._pending[call.queue] = self._pending[call.queue], []
                    self._running.add(call.queue)
                    self._cv.release()
                    try:
                        self._execute(batch, fn)
                    finally:
                        self._cv.acquire()
                        self._running.discard(call.queue)
                        self._waiting -= len(batch)  # now, not when each wakes: a stale count would flush early
                        self._cv.notify_all()
                else:
                    self._cv.wait(timeout=self.max_wait_s / 4)

    def _execute(self, batch: list[_Call], fn: Callable[[list[Any]], list[Any]]) -> None:
        self.batches[batch[0].queue].append(len(batch))
        try:
            results = fn([c.arg for c in batch])
            for c, r in zip(batch, results):
                c.result = r
        except BaseException as e:  # noqa: BLE001 - every caller of the batch gets the error
            for c in batch:
                c.error = e
        for c in batch:
            c.done = True


class BatchedDetector:
    """A face detector whose `detect` calls from several threads run as one call (over all their
    frames, in order; S3FD then runs `faces.batch_size` frames per forward pass). It also keeps
    detectors that are not thread-safe (OpenCV's YuNet) to one call at a time."""

    def __init__(self, detector, gather: Gather):
        self.detector, self.gather = detector, gather

    def _detect_all(self, frame_lists: list[Sequence[np.ndarray]]) -> list[list[np.ndarray]]:
        flat = [f for frames in frame_lists for f in frames]
        found = self.detector.detect(flat) if flat else []
        out, i = [], 0
        for frames in frame_lists:
            out.append(list(found[i : i + len(frames)]))
            i += len(frames)
        return out

    def detect(self, frames_bgr: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self.gather.run("detect", self._detect_all, list(frames_bgr))


class BatchedEncoders:
    """The ASD model's encoders (`encode_audio`, `encode_visual`: [1, ...] in, [1, T, C] out), with
    the calls of several threads stacked into one batch per input shape."""

    def __init__(self, encoders, gather: Gather):
        self.encoders, self.gather = encoders, gather

    @staticmethod
    def _stacked(encode: Callable[[Any], Any], xs: list[Any]) -> list[Any]:
        import torch

        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, x in enumerate(xs):
            groups[(tuple(x.shape), x.device, x.dtype)].append(i)
        out: list[Any] = [None] * len(xs)
        for idx in groups.values():
            y = encode(torch.cat([xs[i] for i in idx])) if len(idx) > 1 else encode(xs[idx[0]])
            for j, i in enumerate(idx):
                out[i] = y[j : j + 1]
        return out

    def encode_audio(self, x):
        return self.gather.run("asd_audio", lambda xs: self._stacked(self.encoders.encode_audio, xs), x)

    def encode_visual(self, x):
        return self.gather.run("asd_visual", lambda xs: self._stacked(self.encoders.encode_visual, xs), x)

