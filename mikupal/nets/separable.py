"""What Light-ASD and LR-ASD share: separable audio and visual encoders feeding a temporal backend.

Running the encoders once over a track and only the cheap backend per window or per audio/video
offset (see `mikupal.stages.vision.score_offsets`) depends on exactly this split. Both published
checkpoints name their parts the same way (``model.*``, ``lossAV.FC.*`` for the head, ``lossV.*``
for an auxiliary visual-only head we do not use)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from . import load_checkpoint, remap_state_dict

# face crops are normalised like this before the visual encoder (the published demos' constants)
VISUAL_MEAN = 0.4161
VISUAL_STD = 0.1688


class SeparableAsdNet(nn.Module):
    """``forward(mfcc [B, 4T, 13], faces [B, T, 112, 112] in 0..255) -> logits [B, T, 2]``.

    Subclasses build ``visualEncoder``, ``audioEncoder`` and ``head`` and define ``backend``."""

    visualEncoder: nn.Module
    audioEncoder: nn.Module

    def encode_visual(self, faces: torch.Tensor) -> torch.Tensor:
        x = (faces.unsqueeze(1) / 255.0 - VISUAL_MEAN) / VISUAL_STD
        return self.visualEncoder(x)

    def encode_audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        return self.audioEncoder(mfcc.transpose(1, 2).unsqueeze(1))

    def backend(self, a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, mfcc: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        return self.backend(self.encode_audio(mfcc), self.encode_visual(faces))

    @staticmethod
    def convert_state_dict(state) -> dict[str, torch.Tensor]:
        """Published layout (``model.*``, ``lossAV.FC.*``, ``lossV.*``) -> ours."""
        return remap_state_dict(state, {"model.": "", "lossAV.FC.": "head."}, drop=("lossV.",))

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu"):
        net = cls()
        net.load_state_dict(cls.convert_state_dict(load_checkpoint(path)), strict=True)
        return net.to(device).eval()
