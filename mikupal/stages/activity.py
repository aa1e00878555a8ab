"""What each stage worker is on right now, for the terminal's stage activity line.

Every worker (a Ray actor or task, or the sequential engine's one process) keeps one small JSON
file under the output dir (`OUT/.work/activity/<stage>.<pid>`): the stage, the file it is on, how
far into it its current utterance ends, and whether it is busy. It is rewritten when an item starts
and when it ends, and as a fan-out passes utterances on (at most every `MIN_INTERVAL_S`), by
rename, never fsynced: a hint for the display, read by the driver (`read_activity`), gone with `.work/`.
The output dir is shared by every node of a cluster (commits need that), so this works there too.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..layout import OutputPaths
from ..records import WorkItem

#: a fan-out's progress within one video is written at most this often
MIN_INTERVAL_S = 0.25


class ActivityFile:
    """The writer, one per stage per process."""

    def __init__(self, output_dir: str | os.PathLike, stage: str):
        self.path = OutputPaths(output_dir).activity / f"{stage}.{os.getpid()}"
        self.stage = stage
        self._last = 0.0
        self._off = False

    def started(self, item: WorkItem) -> None:
        self._write(item, busy=True, force=True)

    def advanced(self, successor: WorkItem) -> None:
        """A fan-out passed an utterance on: how far into the video it has come."""
        self._write(successor, busy=True)

    def finished(self, item: WorkItem) -> None:
        self._write(item, busy=False, force=True)

    def _write(self, item: WorkItem, busy: bool, force: bool = False) -> None:
        now = time.monotonic()
        if self._off or (not force and now - self._last < MIN_INTERVAL_S):
            return
        self._last = now
        seg = item.data.segment
        state = {"stage": self.stage, "video_id": item.video_id, "source": os.path.basename(item.source),
                 "at": seg.end if seg is not None else None, "busy": busy, "t": time.time()}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            tmp.write_text(json.dumps(state), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:  # a full or read-only disk: the display goes without; the run reports it where it matters
            self._off = True


@dataclass
class StageActivity:
    """One stage, summed over its workers: how many are busy, and where the latest busy one is."""

    stage: str
    busy: int = 0
    workers: int = 0
    source: str = ""  # the file the latest busy worker is on
    at: Optional[float] = None  # how far into it (the end of its utterance; None: a whole video)
    _t: float = 0.0


def read_activity(output_dir: str | os.PathLike, since: float = 0.0) -> dict[str, StageActivity]:
    """Each stage's activity from the workers' files written after `since` (a wall-clock time)."""
    out: dict[str, StageActivity] = {}
    root = OutputPaths(output_dir).activity
    try:
        names = [p for p in root.iterdir() if not p.name.startswith(".")]
    except OSError:
        return out
    for p in names:
        try:
            state = json.loads(Path(p).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if state.get("t", 0.0) < since:
            continue
        a = out.setdefault(state["stage"], StageActivity(state["stage"]))
        a.workers += 1
        if state.get("busy"):
            a.busy += 1
            if state["t"] >= a._t:
                a.source, a.at, a._t = state.get("source", ""), state.get("at"), state["t"]
    return out


def clear_activity(output_dir: str | os.PathLike, remove: bool = False) -> None:
    """Remove an earlier run's files (the driver, before the workers start); `remove`: the folder too (the run's end)."""
    root = OutputPaths(output_dir).activity
    if not root.is_dir():
        return
    for p in root.iterdir():
        p.unlink(missing_ok=True)
    if remove:
        try:
            root.rmdir()
        except OSError:  # a worker still writing: the next run clears it
            pass
