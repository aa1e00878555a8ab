"""Prosody: the measured delivery of each kept segment (pitch, speaking rate, loudness, peak,
SNR; `audio/prosody.py`), read from the dataset audio the vision stage wrote, so the figures
describe exactly what the dataset holds.

It runs after vision (the last stage that cuts an utterance into pieces) and costs about 0.006 CPU
s per media second (`benchmarks/prosody.md`), so one worker keeps up, and it reserves no CPU (its
share would crowd the CPU profile's pools, which already fill 2 cores). It is a long-lived worker
(`holds_model`) although it holds no model: run as Ray tasks, each of the many
small task workers Ray started imported the pitch tracker, scipy and pyloudnorm on its own, which cost ~0.2 s per
segment on the 5-minute speed benchmark (27 CPU s in task workers against 4). A measurement never
rejects a segment: a figure the audio cannot give (no voiced frame for pitch) stays null. The
optional Praat tracker (`prosody.pitch_tracker=praat`, GPL-3.0) not installed stops the run at
preflight in one line naming the extra.
"""

from __future__ import annotations

from .. import media
from ..audio.pitch import require_tracker
from ..audio.prosody import PitchSettings, measure
from ..config import Resources
from ..errors import StageError
from ..records import WorkItem
from .base import Stage


class ProsodyStage(Stage):
    name = "prosody"
    level = "segment"
    holds_model = True  # one worker imports the libraries once (see the module docstring)

    @classmethod
    def preflight(cls, cfg) -> None:
        """The chosen pitch tracker installed (the optional Praat one may not be): one line now."""
        super().preflight(cfg)
        require_tracker(cfg.prosody.pitch_tracker)

    def setup(self) -> None:
        # imported once per worker, before the first item
        if self.cfg.prosody.pitch_tracker == "praat":
            import parselmouth  # noqa: F401
        else:
            import pyworld  # noqa: F401
        import pyloudnorm  # noqa: F401

    @property
    def resources(self) -> Resources:
        return self.cfg.prosody.resources

    def process(self, item: WorkItem) -> list[WorkItem]:
        d, seg = item.data, item.data.segment
        if seg is None or not d.audio_path:
            raise StageError("no_audio", "the prosody stage needs the segment's dataset audio")
        samples, rate = media.read_samples(self.output_dir / d.audio_path)
        pc = self.cfg.prosody
        d.prosody = measure(samples.mean(axis=1), rate, seg.words, seg.start, seg.language,
                            PitchSettings(floor_hz=pc.pitch_floor_hz, ceiling_hz=pc.pitch_ceiling_hz,
                                          tracker=pc.pitch_tracker))
        return [item]
