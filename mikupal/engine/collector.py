"""Gathers the items that come out of the pipeline, per video, and commits each video once all of
its items have arrived (the fan-out told us how many)."""

from __future__ import annotations

from typing import Callable, Optional

from ..reasons import RUN_LEVEL_REASONS
from ..records import WorkItem
from .commit import OutputDir, VideoSummary
from .progress import Progress


class DiskFull(Exception):
    """A stage could not write under the output dir: the run stops (the video stays uncommitted)."""


def complete_utterances(items) -> int:
    """How many of a video's utterances have arrived whole (all their pieces)."""
    shares: dict[str, float] = {}
    for it in items:
        shares[it.origin] = shares.get(it.origin, 0.0) + it.share
    return sum(1 for v in shares.values() if v >= 1.0 - 1e-6)


class RunHalted(Exception):
    """An item carries a run-level failure (the labeler's key, model or quota): the run stops
    before committing it, like a stop signal."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class Collector:
    def __init__(self, out: OutputDir, progress: Progress, on_commit: Optional[Callable[[VideoSummary], None]] = None):
        self.out = out
        self.progress = progress
        self.pending: dict[str, dict[str, WorkItem]] = {}
        self.committed: set[str] = set()
        self.on_commit = on_commit

    def add(self, item: WorkItem) -> None:
        if item.status == "placeholder":  # committed earlier: it only kept its group's shape
            return
        full = next((r for r in item.rejects if r.reason == "disk_full"), None)
        if full is not None:
            raise DiskFull(full.message)
        halt = next((r for r in item.rejects if r.reason in RUN_LEVEL_REASONS), None)
        if halt is not None:
            raise RunHalted(halt.reason, halt.message)
        self.progress.saw(item)
        key = item.video_id
        # keyed by item id: an item a retried task passes on again replaces its first copy
        bucket = self.pending.setdefault(key, {})
        bucket[item.item_id] = item
        # the fan-out streams a video's utterances; only the last one says how many there are
        # (fanout_total 0 = more to come). An utterance split later arrives as pieces that each
        # carry a share of it: it is complete when its shares add up to one.
        expected = max(i.fanout_total for i in bucket.values())
        if expected and complete_utterances(bucket.values()) >= expected:
            self._commit(key, list(self.pending.pop(key).values()))

    def _commit(self, key: str, items: list[WorkItem]) -> None:
        summary = self.out.commit_video(key, items)
        self.committed.add(key)
        self.record(summary)

    def record(self, summary: VideoSummary) -> None:
        self.progress.record(summary)
        if self.on_commit:
            self.on_commit(summary)
