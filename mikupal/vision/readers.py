"""The videos a vision worker keeps open between utterances, so that an utterance starting a little
after the last one of its video ended goes on decoding from there instead of seeking back to a
keyframe (`media.VideoReader`: the frames are the same, a GOP of decoding less per utterance).

Thread-safe: a decode checks a reader out for itself, so the utterances a worker decodes side by
side (`vision/batching.py`) each get their own; at most `keep` idle readers stay open."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator, Optional

from .. import media


class VideoReaders:
    def __init__(self, keep: int = 2, threads: Optional[int] = None):
        self.keep, self.threads = max(1, int(keep)), threads
        self._idle: list[media.VideoReader] = []  # most recently returned last
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:  # a copy (a stage sent to another process) starts with none open
        return {"keep": self.keep, "threads": self.threads}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def _take(self, path: str, start: float) -> Optional[media.VideoReader]:
        """An idle reader of `path`, one that goes on to `start` if there is one."""
        with self._lock:
            mine = [r for r in self._idle if r.path == path]
            pick = next((r for r in reversed(mine) if r.can_continue(start)), mine[-1] if mine else None)
            if pick is not None:
                self._idle.remove(pick)
            return pick

    @contextmanager
    def reader(self, path: str, start: float) -> Iterator[media.VideoReader]:
        """A reader of `path` for a range at `start`, this caller's alone until the block ends."""
        path = str(path)
        r = self._take(path, start) or media.VideoReader(path, self.threads)
        try:
            yield r
        except BaseException:
            r.close()  # a failed decode leaves it wherever it stopped
            raise
        with self._lock:
            self._idle.append(r)
            stale, self._idle = self._idle[: -self.keep], self._idle[-self.keep :]
        for s in stale:
            s.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for r in idle:
            r.close()
