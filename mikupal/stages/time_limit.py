"""A time limit on one stage working on one item, so a pathological input (a decoder stuck in a
broken stream, whisper looping on noise) cannot hold a worker for hours.

In the main thread (where Ray runs a sync actor's or task's work, and where the sequential engine
runs) the limit is SIGALRM-based; in any other thread (the local engine's workers) a watchdog
thread raises the same exception in it (`PyThreadState_SetAsyncExc`). Either way
`StageError("timeout")` comes at the next Python bytecode, so a single long native call (one ONNX
run) finishes first."""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Optional

from ..errors import StageError

log = logging.getLogger(__name__)


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
        if self.deadline is None:
            return self
        if threading.current_thread() is not threading.main_thread():
            _WATCHDOG.arm(self)
            return self
        left = self.deadline - time.monotonic()
        if left <= 0:
            self._fire(signal.SIGALRM, None)
        self._previous = signal.signal(signal.SIGALRM, self._fire)
        signal.setitimer(signal.ITIMER_REAL, left)
        return self

    def __exit__(self, *exc) -> None:
        if self.deadline is not None and threading.current_thread() is not threading.main_thread():
            if _WATCHDOG.disarm(self):  # fired, not yet raised in this thread: raise it here instead
                self._fire(signal.SIGALRM, None)
            return
        if self._previous is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)
            self._previous = None


class _Watchdog:
    """One daemon thread for the whole process: raises a worker thread's timeout in it once its
    armed limit's deadline passes."""

    def __init__(self) -> None:
        self._armed: dict[int, TimeLimit] = {}  # thread id -> its limit
        self._fired: set[int] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def arm(self, limit: TimeLimit) -> None:
        with self._lock:
            self._armed[threading.get_ident()] = limit
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._watch, name="mikupal-time-limits", daemon=True)
                self._thread.start()
        self._wake.set()

    def disarm(self, limit: TimeLimit) -> bool:
        """Off for this thread; True when it fired and its exception is still pending (cancelled here)."""
        tid = threading.get_ident()
        with self._lock:
            if self._armed.get(tid) is limit:
                del self._armed[tid]
            if tid not in self._fired:
                return False
            self._fired.discard(tid)
            pending = _raise_in(tid, None)  # cancel the asynchronous exception if it has not come yet
        return pending > 0

    def _watch(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                due = [(tid, lim) for tid, lim in self._armed.items() if lim.deadline is not None and lim.deadline <= now]
                for tid, lim in due:
                    del self._armed[tid]
                    self._fired.add(tid)
                    _raise_in(tid, _timeout_class(lim))
                nxt = min((lim.deadline for lim in self._armed.values() if lim.deadline is not None), default=None)
            self._wake.clear()
            self._wake.wait(timeout=1.0 if nxt is None else max(0.01, min(1.0, nxt - time.monotonic())))


def _timeout_class(limit: TimeLimit) -> type:
    """An exception class (what `PyThreadState_SetAsyncExc` takes) that is this limit's StageError."""

    def init(self) -> None:  # noqa: ANN001
        StageError.__init__(self, "timeout", f"{limit.what} took longer than {limit.seconds:.0f} s "
                                             "(engine.item_timeout_s, engine.item_timeout_per_media_s)")

    return type("StageTimeout", (StageError,), {"__init__": init})


def _raise_in(thread_id: int, exc: Optional[type]) -> int:
    """Raise `exc` in the thread at its next bytecode (None: cancel a pending one); the threads affected."""
    import ctypes

    return ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else None)


_WATCHDOG = _Watchdog()
