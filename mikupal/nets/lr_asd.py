"""LR-ASD (Liao et al., IJCV 2025): Light-ASD's successor, smaller and more robust.

Our own implementation, laid out so that the published ``pretrain_AVA.model``
loads strictly through :meth:`LRASD.from_checkpoint`.

Differences from Light-ASD:

* encoder blocks are a single sequential chain instead of two parallel
  branches: spatial (or MFCC-axis) conv k=5 to half the output width, conv k=3
  to full width, then temporal conv k=5 and k=3, each conv followed by BN+ReLU.
* fusion: audio and visual embeddings are concatenated (256-d) and re-weighted
  channel-wise by a sigmoid gate computed with a pointwise conv + BN.
* detector: two unidirectional GRUs (hidden 64) run forward and backward over
  the fused sequence; their outputs are concatenated (128-d) and gated again
  the same way, then a 128 -> 2 linear classifier.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .light_asd import spatial_max_pool, temporal_conv
from .separable import SeparableAsdNet

__all__ = ["LRASD"]

_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01


class _ChainBlock(nn.Module):
    """conv(k1)->conv(k2) on the first axis group, then conv(k1)->conv(k2) along time.

    ndim 3 (video ``[B, C, T, H, W]``): first pair is spatial ``(1, k, k)``
    (attributes ``s_1``, ``s_2``), the second temporal ``(k, 1, 1)`` (``t_1``, ``t_2``).
    ndim 2 (audio ``[B, C, M, T]``): first pair along MFCC ``(k, 1)`` (``m_1``, ``m_2``),
    the second along time ``(1, k)``.
    """

    def __init__(self, cin: int, cout: int, ndim: int, downsample: bool = False, k1: int = 5, k2: int = 3):
        super().__init__()
        conv, bn = (nn.Conv3d, nn.BatchNorm3d) if ndim == 3 else (nn.Conv2d, nn.BatchNorm2d)
        first = "s" if ndim == 3 else "m"

        def kern(k: int, axis: str):
            if ndim == 3:
                return ((1, k, k), (0, k // 2, k // 2)) if axis == "first" else ((k, 1, 1), (k // 2, 0, 0))
            return ((k, 1), (k // 2, 0)) if axis == "first" else ((1, k), (0, k // 2))

        plan = [
            (f"{first}_1", f"{first}_norm_1", cin, cout // 2, k1, "first"),
            (f"{first}_2", f"{first}_norm_2", cout // 2, cout, k2, "first"),
            ("t_1", "t_norm_1", cout, cout, k1, "time"),
            ("t_2", "t_norm_2", cout, cout, k2, "time"),
        ]
        self._order = []  # (conv name, bn name, is a video temporal conv)
        for i, (cname, bname, ci, co, k, axis) in enumerate(plan):
            kernel, pad = kern(k, axis)
            stride = (1, 2, 2) if (downsample and i == 0) else 1
            setattr(self, cname, conv(ci, co, kernel_size=kernel, stride=stride, padding=pad, bias=False))
            setattr(self, bname, bn(co, eps=_BN_EPS, momentum=_BN_MOMENTUM))
            self._order.append((cname, bname, ndim == 3 and axis == "time"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for cname, bname, video_time in self._order:
            conv = getattr(self, cname)
            x = temporal_conv(conv, x) if video_time else conv(x)
            x = F.relu(getattr(self, bname)(x))
        return x


class _VisualEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.block1 = _ChainBlock(1, 32, ndim=3, downsample=True)
        self.block2 = _ChainBlock(32, 64, ndim=3)
        self.block3 = _ChainBlock(64, 128, ndim=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = spatial_max_pool(self.block1(x))
        x = spatial_max_pool(self.block2(x))
        return self.block3(x).amax(dim=(3, 4)).transpose(1, 2)


class _AudioEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.block1 = _ChainBlock(1, 32, ndim=2)
        self.block2 = _ChainBlock(32, 64, ndim=2)
        self.block3 = _ChainBlock(64, 128, ndim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = dict(kernel_size=(1, 3), stride=(1, 2), padding=(0, 1))
        x = F.max_pool2d(self.block1(x), **pool)
        x = F.max_pool2d(self.block2(x), **pool)
        return self.block3(x).mean(dim=2).transpose(1, 2)


class _ChannelGate(nn.Module):
    """Concatenate along channels, then scale each channel by sigmoid(BN(W x))."""

    def __init__(self, channels: int):
        super().__init__()
        self.attention = nn.Conv1d(channels, channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm1d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        x = torch.cat((x1, x2), dim=2).transpose(1, 2)  # [B, C, T]
        return (x * torch.sigmoid(self.bn(self.attention(x)))).transpose(1, 2)


class _Detector(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        hidden = channels // 4
        self.gru_forward = nn.GRU(channels, hidden, batch_first=True)
        self.gru_backward = nn.GRU(channels, hidden, batch_first=True)
        self.attention = _ChannelGate(2 * hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fwd = self.gru_forward(x)[0]
        bwd = self.gru_backward(x.flip(1))[0].flip(1)
        return self.attention(fwd, bwd)


class LRASD(SeparableAsdNet):
    """LR-ASD network + its audio-visual classifier head.

    ``forward(mfcc [B, 4T, 13], faces [B, T, 112, 112] in 0..255) -> logits [B, T, 2]``.
    """

    def __init__(self):
        super().__init__()
        self.visualEncoder = _VisualEncoder()
        self.audioEncoder = _AudioEncoder()
        self.fusion = _ChannelGate(256)
        self.detector = _Detector(256)
        self.head = nn.Linear(128, 2)

    def backend(self, a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.head(self.detector(self.fusion(a, v)))
