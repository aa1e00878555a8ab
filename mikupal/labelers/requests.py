"""The one way to ask about a segment: its `LabelRequest`, and in text mode the dialogue turns
before it. The pipeline (`stages.label`), `mikupal label` (`relabel.LabelDataset`) and the
benchmarks (`evaluate.label_benchmark`) all build their requests here, so a segment is asked
about the same way wherever it is labeled."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any, Callable, Hashable, Optional, Sequence, TypeVar

from ..config import LabelerConfig
from .base import LabelRequest

T = TypeVar("T")


def earlier_turns(
    items: Sequence[T], n: Optional[int], *, dialogue: Callable[[T], Hashable], order: Callable[[T], Any]
) -> list[list[T]]:
    """For each item (in input order), the items before it in its dialogue, oldest first: at most
    `n` of them (None: all; 0 or less: none)."""
    groups: dict[Hashable, list[int]] = {}
    for i, it in enumerate(items):
        groups.setdefault(dialogue(it), []).append(i)
    out: list[list[T]] = [[] for _ in items]
    for members in groups.values():
        members.sort(key=lambda i: order(items[i]))
        for pos, i in enumerate(members):
            first = 0 if n is None else max(0, pos - n)
            out[i] = [items[j] for j in members[first:pos]]
    return out


def context_turns(
    items: Sequence[T], n: int, *, dialogue: Callable[[T], Hashable], order: Callable[[T], Any],
    line: Callable[[T], str],
) -> list[list[str]]:
    """Text mode's context of each item: the `n` turns before it in its dialogue as prompt lines
    (`line`, e.g. the transcript or `Speaker: text`); turns without text are left out."""
    return [[s for s in map(line, before) if s] for before in earlier_turns(items, n, dialogue=dialogue, order=order)]


def label_request(
    cfg: LabelerConfig,
    segment_id: str,
    transcript: Optional[str],
    *,
    root: Optional[Path] = None,
    clip: Optional[str | PathLike] = None,
    audio: Optional[str | PathLike] = None,
    context: Sequence[str] = (),
    duration: Optional[float] = None,
    start: Optional[float] = None,
    end: Optional[float] = None,
) -> LabelRequest:
    """The request for one segment in `cfg.mode`. `clip`/`audio` are relative to `root` (an output
    dir) when one is given; the context is sent in text mode only; the duration is `duration`, else
    `end - start`, else unknown (0: the backend measures the media)."""
    if duration is None and start is not None and end is not None:
        duration = end - start
    return LabelRequest(
        segment_id=segment_id,
        transcript=transcript or "",
        mode=cfg.mode,
        clip_path=_path(root, clip),
        audio_path=_path(root, audio),
        context=list(context) if cfg.mode == "text" else [],
        duration=max(0.0, float(duration or 0.0)),
    )


def _path(root: Optional[Path], path: Optional[str | PathLike]) -> Optional[Path]:
    if not path:
        return None
    return root / path if root is not None else Path(path)
