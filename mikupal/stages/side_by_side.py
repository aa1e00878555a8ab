"""The items of one call side by side, each in its own thread, for a stage whose model calls are
merged across them (`Stage.side_by_side`, e.g. `vision/batching.Gather`). The item time limit
(SIGALRM) only works in the main thread, so here it is the longest item's, kept by the caller."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Optional


def side_by_side(fn: Callable[[Any], Any], args: Sequence[Any], gather, timeout_s: Optional[float] = None):
    """`fn(arg)` for every arg, each in its own thread, `gather` told when they start
    (`begin(n)`) and as each ends (`done()`); yields `(index, result)` as
    each finishes, and `(index, TimeoutError)` for those still running after `timeout_s` (their
    threads are left to finish on their own: Python cannot stop a thread)."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    def one(arg):
        try:
            return fn(arg)
        finally:
            gather.done()

    pool = ThreadPoolExecutor(max_workers=max(1, len(args)), thread_name_prefix="utterance")
    gather.begin(len(args))
    futures = {pool.submit(one, a): i for i, a in enumerate(args)}
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        while futures:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            finished, _ = wait(list(futures), timeout=left, return_when=FIRST_COMPLETED)
            if not finished:
                for f, i in futures.items():
                    yield i, TimeoutError(f"still running after {timeout_s:.0f} s")
                return
            for f in finished:
                yield futures.pop(f), f.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
