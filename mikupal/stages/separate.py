"""Separate: vocals for the dataset (full band) and a 16 kHz mono copy for VAD and ASR."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .. import media
from ..audio.separation import VocalSeparator
from ..config import Resources, RunConfig
from ..models_dir import ModelNeed, mdx_need
from ..devices import onnx_providers
from ..records import WorkItem
from .base import Stage


class SeparateStage(Stage):
    name = "separate"

    @property
    def holds_model(self) -> bool:
        """MDX-Net stays loaded in a worker; with `separation=none` it only decodes audio: a task."""
        return self.cfg.separation.kind != "none"
    level = "video"

    separator: Optional[VocalSeparator] = None

    @property
    def resources(self) -> Resources:
        return self.cfg.separation.resources

    @classmethod
    def models(cls, cfg: RunConfig) -> list[ModelNeed]:
        return [mdx_need(cfg.models_dir, cfg.separation.model)] if cfg.separation.kind == "mdx" else []

    @property
    def model_batch(self) -> Optional[int]:
        return self.cfg.separation.batch_size if self.holds_model else None

    def execution(self) -> str:
        return f"MDX-Net: onnxruntime {onnx_providers(self.holds_gpu)[0]}" if self.holds_model else ""

    def setup(self) -> None:
        self.separator = VocalSeparator(
            self.cfg.separation,
            self.cfg.models_dir,
            dataset_rate=self.cfg.dataset.sample_rate,
            offline=self.cfg.offline,
            gpu=self.holds_gpu,
            require_gpu=self.cfg.engine.require_gpu,
        )
        self.separator.load()

    def teardown(self) -> None:
        if self.separator is not None:
            self.separator.close()
            self.separator = None
        self._ready = False

    def video_dir(self, item: WorkItem) -> Path:
        return self.work_dir / item.video_id

    def process(self, item: WorkItem) -> list[WorkItem]:
        if self.separator is None:
            self.start()
        assert self.separator is not None
        src = item.data.video.path if item.data.video else item.source
        if not item.video_id:
            item.video_id = media.content_id(src)
        d = self.video_dir(item)
        mixture = d / "mixture16k.wav" if self.cfg.separation.kind != "none" else None
        vocals, analysis = self.separator.separate(src, d / "vocals.flac", d / "analysis16k.wav", mixture)
        item.data.vocals_path = vocals
        item.data.analysis_path = analysis
        return [item]
