"""The stage list of a run, in order. The engines know only this list, never what a stage does."""

from __future__ import annotations

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
