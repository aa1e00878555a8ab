"""Where a run stands, in the terms a user asks about: media seconds done of the total, elapsed
time and what is left, what was kept, what a resumed run skipped.

The collector feeds it every item that leaves the pipeline (`saw`: an uncommitted video counts as
far as its furthest finished utterance) and every commit (`record`). The total is this run's
media seconds, read from the container headers by a background thread (`probe_durations`) while
the pipeline starts, so the display never waits for it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

from ..committed import VideoSummary
from ..records import WorkItem


@dataclass
class Progress:
    videos_total: int
    videos_done: int = 0
    segments_kept: int = 0
    rejects: int = 0
    media_seconds: float = 0.0  # committed this run
    kept_seconds: float = 0.0  # committed this run
    cost_usd: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    #: this run's media seconds (None until every header was read) and what is known so far
    media_total: Optional[float] = None
    media_probed: float = 0.0
    probed: int = 0
    #: uncommitted videos: the furthest end of their utterances that left the pipeline
    partial: dict[str, float] = field(default_factory=dict)
    #: committed by an earlier run of the same command: skipped
    skipped_videos: int = 0
    skipped_seconds: float = 0.0

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def speed_ratio(self) -> float:
        dt = self.elapsed
        return self.media_seconds / dt if dt > 0 else 0.0

    @property
    def done_seconds(self) -> float:
        return self.media_seconds + sum(self.partial.values())

    @property
    def eta_seconds(self) -> Optional[float]:
        """Seconds left at the pace so far; None before any media is done or while the total is unknown."""
        done, total = self.done_seconds, self.media_total
        if total is None or done <= 0:
            return None
        return max(0.0, (total - done) * self.elapsed / done)

    def saw(self, item: WorkItem) -> None:
        seg = item.data.segment
        if seg is not None:
            self.partial[item.video_id] = max(self.partial.get(item.video_id, 0.0), seg.end)

    def record(self, summary: VideoSummary) -> None:
        self.videos_done += 1
        self.segments_kept += summary.kept
        self.rejects += summary.rejects
        self.media_seconds += summary.duration
        self.kept_seconds += summary.kept_seconds
        self.cost_usd += summary.cost_usd or 0.0
        self.partial.pop(summary.video_id, None)
        self.partial.pop(summary.key, None)

    def skip(self, summary: Optional[VideoSummary]) -> None:
        """A video an earlier run committed: counted done, and reported as skipped."""
        self.videos_done += 1
        self.skipped_videos += 1
        self.skipped_seconds += summary.duration if summary is not None else 0.0

    def line(self) -> str:
        """One plain line: for logs and terminals that are not TTYs."""
        parts = [f"[{clock(self.elapsed)}] videos {self.videos_done}/{self.videos_total}", f"media {self.media_fraction()}"]
        eta = self.eta_seconds
        if eta is not None:
            parts.append(f"ETA {clock(eta)}")
        parts.append(f"kept {seconds(self.kept_seconds)} in {self.segments_kept} segment{'s' * (self.segments_kept != 1)}")
        parts.append(f"rejects {self.rejects}")
        return ", ".join(parts)

    def media_fraction(self) -> str:
        done = self.done_seconds
        if self.media_total is None:
            return f"{done:.1f} s of >= {self.media_probed:.1f} s (reading {self.probed}/{self.videos_total - self.skipped_videos})"
        pct = 100.0 * done / self.media_total if self.media_total else 100.0
        return f"{done:.1f} s of {self.media_total:.1f} s ({pct:.0f}%)"


def clock(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def seconds(s: float) -> str:
    """2.7 s, 4.2 min, 1.35 h: kept media, in the unit that reads best."""
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def probe_durations(progress: Progress, paths: Sequence[str]) -> threading.Event:
    """Read each video's duration from its container header on a daemon thread; set the returned
    event to stop early (the run ended). `progress.media_total` is set once all are read."""
    from .. import media

    stop = threading.Event()

    def work() -> None:
        total = 0.0
        for p in paths:
            if stop.is_set():
                return
            total += media.duration_seconds(p)
            progress.media_probed, progress.probed = total, progress.probed + 1
        progress.media_total = total

    threading.Thread(target=work, name="mikupal-durations", daemon=True).start()
    return stop
