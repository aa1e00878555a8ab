"""The stage list of a run, in order. The engines know only this list, never what a stage does."""

from __future__ import annotations

from ..committed import VideoSummary
from ..config import RunConfig
from ..stages.base import Stage


def stage_classes(cfg: RunConfig) -> list[type[Stage]]:
    from ..stages.asr import AsrStage
    from ..stages.label import LabelStage
    from ..stages.probe import ProbeStage
    from ..stages.quality import QualityStage
    from ..stages.separate import SeparateStage
    from ..stages.speaker import SpeakerStage
    from ..stages.vad import VadStage
    from ..stages.vision import VisionStage

    classes: list[type[Stage]] = [ProbeStage, SeparateStage, VadStage, AsrStage]
    if cfg.speaker.kind != "none":
        classes.append(SpeakerStage)
    if cfg.quality.kind != "none":  # cheap: before vision, so what it drops costs no vision work
        classes.append(QualityStage)
    classes.append(VisionStage)
    if cfg.labeler.kind != "none":
        classes.append(LabelStage)
    return classes


def video_group_size(cfg: RunConfig) -> int:
    """How many videos the video-level stages get per call at most (their `items_per_call`): the
    run's inputs are handed on in groups of this many, the same groups in every run."""
    return max([1] + [cls(cfg, "/tmp").items_per_call for cls in stage_classes(cfg) if cls.level == "video"])


def depends_on_call(cfg: RunConfig, video: VideoSummary) -> bool:
    """Whether a committed video's results depend on the other videos of its group (see
    `Stage.depends_on_call`): a resumed run then redoes it with them."""
    return any(cls(cfg, "/tmp").depends_on_call(video) for cls in stage_classes(cfg) if cls.level == "video")
