"""Short videos share whisper windows instead of each being padded to 30 s alone.

Whisper always encodes a 30 s window: a 4 s clip transcribed alone costs what 30 s of speech
does (the encoder is ~80% of tiny.en's time on such a clip). When a stage call holds several
videos (`asr.resources.items_per_call`), the clips of each *short* video (one no longer than a
window, whose speech clips fit in one together) are laid one after another into shared windows,
with `GAP_SECONDS` of silence between clips, in the order of the call's videos; a video is never
split across windows. A longer video's clips are each their own window, as before, so its text
does not depend on its neighbours.

A packed clip's text can differ from its text alone (whisper hears its neighbours), so the
engine hands the stage the same videos together in every run (inputs in order, `items_per_call`
at a time), and a resumed run redoes a short video's whole call (`Stage.depends_on_call`).
Packing is on only where the language is known (`asr.language` set, or an English-only model):
one window gets one language detection, and two videos may not share a language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

GAP_SECONDS = 1.0  # silence between two packed clips: whisper ends a segment there


@dataclass
class Placed:
    """A clip in a window: its source (the call's video index), the clip's index among that
    source's clips, and where it starts in the window."""

    source: int
    index: int
    offset: float
    duration: float

    @property
    def end(self) -> float:
        return self.offset + self.duration


@dataclass
class Window:
    """What one whisper window holds: one clip, or several short videos' clips with gaps."""

    placed: list[Placed] = field(default_factory=list)

    @property
    def length(self) -> float:
        return self.placed[-1].end if self.placed else 0.0

    def add(self, source: int, index: int, duration: float, gap: float = GAP_SECONDS) -> None:
        offset = self.length + gap if self.placed else 0.0
        self.placed.append(Placed(source, index, offset, duration))

    def locate(self, t: float) -> int:
        """The placed clip a time of the window belongs to: the one it falls in, else the nearest
        (a word whisper timed in a gap belongs to the clip it is closest to)."""
        best, dist = 0, float("inf")
        for k, p in enumerate(self.placed):
            d = 0.0 if p.offset <= t <= p.end else min(abs(t - p.offset), abs(t - p.end))
            if d < dist:
                best, dist = k, d
        return best


def fits_one_window(durations: Sequence[float], max_seconds: float, gap: float = GAP_SECONDS) -> bool:
    """A video's clips laid out with gaps fit in one window."""
    return bool(durations) and sum(durations) + gap * (len(durations) - 1) <= max_seconds + 1e-9


def plan_windows(clip_durations: Sequence[Sequence[float]], packable: Sequence[bool], max_seconds: float,
                 gap: float = GAP_SECONDS) -> list[Window]:
    """The windows of a call, in the order of its sources and their clips: a packable source's
    clips join the open window when they all fit in it (else they open the next one); any other
    source gives each of its clips a window of its own and leaves the open window as it is, so
    the packing of the short videos is the same whether a long one is there or not (a resumed run
    passes a committed long video over)."""
    windows: list[Window] = []
    open_window: Optional[Window] = None
    for s, durations in enumerate(clip_durations):
        if not durations:
            continue
        if packable[s] and fits_one_window(durations, max_seconds, gap):
            need = sum(durations) + gap * len(durations)  # with the gap before the first
            if open_window is None or open_window.length + need > max_seconds + 1e-9:
                open_window = Window()
                windows.append(open_window)
            for k, d in enumerate(durations):
                open_window.add(s, k, d, gap)
            continue
        for k, d in enumerate(durations):
            w = Window()
            w.add(s, k, d, gap)
            windows.append(w)
    return windows


__all__ = ["GAP_SECONDS", "Placed", "Window", "fits_one_window", "plan_windows"]
