"""The stage list of a run, in order. The engines know only this list, never what a stage does."""

from __future__ import annotations

from ..committed import VideoSummary
from ..config import RunConfig
from ..models_dir import ModelNeed
from ..stages.base import Stage


def stage_classes(cfg: RunConfig) -> list[type[Stage]]:
    from ..stages.asr import AsrStage
    from ..stages.label import LabelStage
    from ..stages.probe import ProbeStage
    from ..stages.prosody import ProsodyStage
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
    if cfg.prosody.kind != "none":  # on the dataset audio vision wrote: after the last cut
        classes.append(ProsodyStage)
    if cfg.labeler.kind != "none":
        classes.append(LabelStage)
    return classes


def preflight(cfg: RunConfig) -> None:
    """Every stage's run-level checks (model files, a service's key), in stage order, before any
    worker starts: the first problem is the run's one-line UserError."""
    for cls in stage_classes(cfg):
        cls.preflight(cfg)


def model_needs(cfg: RunConfig) -> list[ModelNeed]:
    """The model files the configured run loads, stage by stage (`mikupal models`)."""
    return [need for cls in stage_classes(cfg) for need in cls.models(cfg)]


def video_group_size(cfg: RunConfig) -> int:
    """How many videos the video-level stages get per call at most (their `items_per_call`): the
    run's inputs are handed on in groups of this many, the same groups in every run."""
    return max([1] + [cls(cfg, "/tmp").items_per_call for cls in stage_classes(cfg) if cls.level == "video"])


def depends_on_call(cfg: RunConfig, video: VideoSummary) -> bool:
    """Whether a committed video's results depend on the other videos of its group (see
    `Stage.depends_on_call`): a resumed run then redoes it with them."""
    return any(cls(cfg, "/tmp").depends_on_call(video) for cls in stage_classes(cfg) if cls.level == "video")
