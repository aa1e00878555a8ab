"""VAD: speech regions of the analysis audio, with their SNR before and after separation."""

from __future__ import annotations

from pathlib import Path

from .. import media
from ..audio import vad
from ..config import Resources
from ..records import WorkItem
from .base import Stage


class VadStage(Stage):
    name = "vad"
    level = "video"

    @property
    def resources(self) -> Resources:
        return self.cfg.vad.resources

    def execution(self) -> str:
        return "WebRTC VAD: CPU"

    def process(self, item: WorkItem) -> list[WorkItem]:
        cfg = self.cfg.vad
        mixture = None
        if item.data.analysis_path:
            audio = item.data.analysis_path
            m = Path(item.data.analysis_path).with_name("mixture16k.wav")
            if m.is_file():
                mixture = str(m)  # separation ran: the analysis audio is the vocals
        else:  # run alone on a file: analyse the mixture itself
            audio = media.decode_audio(item.data.video.path if item.data.video else item.source)
        res = vad.detect(audio, cfg, media.ANALYSIS_RATE if not isinstance(audio, str) else None)
        vad.fill_snr(res.regions, audio, mixture, frame_ms=int(cfg.frame_ms), analysis_power=res.power)
        item.data.regions = res.regions
        item.data.speech_seconds = round(res.speech_seconds, 3)
        for d in res.dropped:
            item.rejects.append(
                item.span_reject(
                    self.name, "too_short", f"speech burst of {d.end - d.start:.2f} s < min_speech_ms {cfg.min_speech_ms}", d.start, d.end
                )
            )
        if not res.regions:
            item.reject(self.name, "no_speech", f"no speech found in {res.duration:.1f} s of audio")
        return [item]
