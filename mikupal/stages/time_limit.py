"""A time limit on one stage working on one item, so a pathological input (a decoder stuck in a
broken stream, whisper looping on noise) cannot hold a worker for hours.

The limit is SIGALRM-based: it interrupts Python code in the main thread (where Ray runs a sync
actor's or task's work, and where the sequential engine runs), raising `StageError("timeout")` at
the next Python bytecode, so a single long native call (one ONNX run) finishes first. In any
other thread it is not enforced (said once in the log)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Optional

from ..errors import StageError

log = logging.getLogger(__name__)
_warned = False


def item_limit_s(base_s: float, per_media_s: float, media_seconds: float) -> Optional[float]:
    """The time one stage may spend on an item of `media_seconds`: base + per_media x seconds; None = no limit."""
    if base_s <= 0 and per_media_s <= 0:
        return None
    return max(0.0, base_s) + max(0.0, per_media_s) * max(0.0, media_seconds)


class TimeLimit:
    """`with limit.armed():` around each piece of a stage's work on one item; the clock keeps
    running in between (while a streamed successor is being handed on, the alarm is off)."""

    def __init__(self, seconds: Optional[float], what: str):
        self.seconds = seconds
        self.what = what
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self._previous = None

    def _fire(self, signum, frame):  # noqa: ARG002
        raise StageError("timeout", f"{self.what} took longer than {self.seconds:.0f} s (engine.item_timeout_s, "
                                    "engine.item_timeout_per_media_s)")

    def __enter__(self) -> "TimeLimit":
        global _warned
        if self.deadline is None:
            return self
        if threading.current_thread() is not threading.main_thread():
            if not _warned:
                log.info("item time limits are not enforced outside the main thread")
                _warned = True
            self.deadline = None
            return self
        left = self.deadline - time.monotonic()
        if left <= 0:
            self._fire(signal.SIGALRM, None)
        self._previous = signal.signal(signal.SIGALRM, self._fire)
        signal.setitimer(signal.ITIMER_REAL, left)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)
            self._previous = None
