"""Quality: DNSMOS of each kept utterance, and a `low_quality` reject below the configured minimum.

It scores the 16 kHz analysis audio (`item.data.analysis_path`): the separated vocals resampled to
16 kHz, the rate DNSMOS was trained at (with `separation=none`, the mixture). It runs after the
speaker stage (each voice's piece is scored on its own) and before the vision stage: an utterance
costs DNSMOS a seventh or less of what vision costs it (0.03-0.05 against 0.30 CPU s per media
second), so what quality drops never reaches vision (or the labeler). A piece the vision stage cuts
out later keeps its utterance's scores.
"""

from __future__ import annotations

from typing import Optional

from .. import media
from ..audio.quality import SAMPLE_RATE, Dnsmos, DnsmosScores
from ..config import Resources, RunConfig
from ..models_dir import ModelNeed, dnsmos_needs
from ..devices import onnx_providers
from ..errors import StageError
from ..records import WorkItem
from .base import Stage

#: (score attribute, config minimum, column name) in the order a reject message lists them
CHECKS = (("ovrl", "min_ovrl", "dnsmos_ovrl"), ("sig", "min_sig", "dnsmos_sig"),
          ("bak", "min_bak", "dnsmos_bak"), ("p808", "min_p808", "dnsmos_p808"))


class QualityStage(Stage):
    name = "quality"
    holds_model = True
    level = "segment"

    scorer: Optional[Dnsmos] = None

    @property
    def resources(self) -> Resources:
        return self.cfg.quality.resources

    @classmethod
    def models(cls, cfg: RunConfig) -> list[ModelNeed]:
        return dnsmos_needs(cfg.quality.model_dir)

    def execution(self) -> str:
        return f"DNSMOS: onnxruntime {onnx_providers(self.holds_gpu)[0]}"

    def setup(self) -> None:
        self.scorer = Dnsmos(self.cfg.quality.model_dir, threads=self.threads, gpu=self.holds_gpu,
                             require_gpu=self.cfg.engine.require_gpu)

    def below_minimum(self, scores: DnsmosScores) -> list[str]:
        """'dnsmos_ovrl 2.41 < 3.00' for each score under its configured minimum."""
        out = []
        for attr, key, column in CHECKS:
            minimum = getattr(self.cfg.quality, key)
            value = getattr(scores, attr)
            if minimum is not None and value < minimum:
                out.append(f"{column} {value:.2f} < {minimum:.2f}")
        return out

    def process(self, item: WorkItem) -> list[WorkItem]:
        if self.scorer is None:
            self.start()
        assert self.scorer is not None and item.data.segment is not None
        seg = item.data.segment
        audio = media.decode_audio(item.data.analysis_path or item.path or item.source, seg.start, seg.end, SAMPLE_RATE)
        if audio.size == 0:
            raise StageError("audio_decode_failed", f"no audio in [{seg.start:.2f}, {seg.end:.2f}) s")
        scores = self.scorer.score(audio, max_windows=self.cfg.quality.max_windows)
        item.data.dnsmos_sig, item.data.dnsmos_bak = scores.sig, scores.bak
        item.data.dnsmos_ovrl, item.data.dnsmos_p808 = scores.ovrl, scores.p808
        failed = self.below_minimum(scores)
        if failed:
            return [item.reject(self.name, "low_quality", "; ".join(failed))]
        return [item]
