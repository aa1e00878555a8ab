"""The same stages in one process, one group of videos after another: for debugging, and the
baseline the Ray pipeline is measured against. Video-level stages get each group in one call
(`items_per_call`, as under Ray), so both engines give the same dataset; after the fan-out each
utterance goes down the rest of the chain as it comes, so a group's first video commits before
its last one is transcribed."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from ..config import RunConfig
from ..records import WorkItem
from .stages import stage_classes, video_group_size


def stream(cfg: RunConfig, out_dir: Path, items: list[WorkItem]) -> Iterator[WorkItem]:
    """Each item through every stage. A stage's `setup()` failure (`Stage.start`) leaves as the
    run's UserError before its video is passed on; every stage that set up is torn down at the end."""
    stages = [cls(cfg, out_dir, threads=cfg.engine.threads) for cls in stage_classes(cfg)]
    k = video_group_size(cfg)
    try:
        for g in range(0, len(items), k):
            current: Iterable[WorkItem] = items[g : g + k]
            for stage in stages:
                if stage.level == "video":  # a video-level call gets its group whole
                    current = stage.iter_items(list(current))
                else:  # each item down the rest of the chain as it comes: a video commits when done
                    current = _each(stage, current)
            yield from current
    finally:
        for stage in stages:
            if stage._ready:
                stage.teardown()


def _each(stage, items: Iterable[WorkItem]) -> Iterator[WorkItem]:
    for it in items:
        yield from stage.iter_item(it)
