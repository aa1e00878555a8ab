"""The stage list of a run, in order. The engines know only this list, never what a stage does."""

from __future__ import annotations

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
    classes.append(VisionStage)
    if cfg.quality.kind != "none":
        classes.append(QualityStage)
    if cfg.labeler.kind != "none":
        classes.append(LabelStage)
    return classes


#: stages that hold models: Ray runs them as actor pools (the model loads once per actor)
ACTOR_STAGES = {"separate", "asr", "speaker", "vision", "quality", "label"}


def runs_as_actor(stage: Stage) -> bool:
    """A stage with a model to keep loaded runs as an actor pool; the rest as tasks, which Ray Data
    fuses with their neighbours (no actor start-up, no hand-over between operators). Separation
    with `separation=none` only decodes the audio: a task."""
    if stage.name == "separate":
        return stage.cfg.separation.kind != "none"
    return stage.name in ACTOR_STAGES
