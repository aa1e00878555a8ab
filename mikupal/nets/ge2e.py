"""GE2E voice encoder (Wan et al., ICASSP 2018), laid out so Resemblyzer's published
``pretrained.pt`` (Apache-2.0) loads strictly.

Input: 40-channel mel power spectrogram frames (25 ms window, 10 ms step, 16 kHz, no log), batch
first ``[B, T, 40]``. Three LSTM layers of 256, a 256 -> 256 linear layer on the last hidden
state, ReLU, L2 norm: one unit-length 256-d embedding per input, trained so that cosine
similarity separates speakers.
"""

from __future__ import annotations

import torch
from torch import nn

from . import remap_state_dict

MEL_CHANNELS = 40
HIDDEN = 256
EMBEDDING = 256
LAYERS = 3


class Ge2eEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(MEL_CHANNELS, HIDDEN, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, EMBEDDING)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / torch.linalg.vector_norm(raw, dim=1, keepdim=True).clamp_min(1e-12)

    def forward_prefixes(self, mels: torch.Tensor) -> torch.Tensor:
        """``[B, T, 256]``: step t is the embedding of frames ``0..t`` alone (the LSTM is causal, so
        one pass gives every prefix's embedding, equal to `forward` on the prefix)."""
        out, _ = self.lstm(mels)
        raw = torch.relu(self.linear(out))
        return raw / torch.linalg.vector_norm(raw, dim=2, keepdim=True).clamp_min(1e-12)

    @classmethod
    def from_checkpoint(cls, path, map_location="cpu") -> "Ge2eEncoder":
        """Load Resemblyzer's ``{"model_state": state_dict, ...}`` (or a bare state_dict), strictly."""
        state = torch.load(path, map_location=map_location, weights_only=True)
        if isinstance(state, dict) and "model_state" in state:
            state = state["model_state"]
        # the GE2E loss's scale and bias are training-only
        state = remap_state_dict(state, {}, drop=("similarity_",))
        net = cls()
        net.load_state_dict(state, strict=True)
        return net.eval()
