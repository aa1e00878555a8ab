"""TalkNet (Tao et al., ACM MM 2021): long-term audio-visual active speaker detection.

Our own implementation, laid out so that the official ``pretrain_TalkSet.model`` /
``pretrain_AVA.model`` checkpoints (keys ``model.visualFrontend...``,
``model.visualTCN...``, ``model.visualConv1D...``, ``model.audioEncoder...``,
``model.crossA2V...``, ``model.crossV2A...``, ``model.selfAV...``,
``lossAV.FC...``; ``lossA.`` / ``lossV.`` are training-only) load strictly
through :meth:`TalkNet.from_checkpoint`.

Architecture (per the paper):

* visual temporal encoder: a 5x7x7 3-D conv stem (temporal context of 5
  frames) + max-pool, an 18-layer ResNet per frame (512-d after 4x4 average
  pooling), a V-TCN of 5 residual depthwise-separable temporal conv blocks
  (ReLU, BN, depthwise conv k=3, PReLU, global layer norm, pointwise conv), and
  a conv1d head 512 -> 256 -> 128.
* audio temporal encoder: a ResNet-34-style stack of squeeze-excitation basic
  blocks ([3, 4, 6, 3] blocks, widths 16/32/64/128) over the MFCC "image"; the
  strides bring 100 Hz MFCCs to 25 Hz; mean over the MFCC axis -> 128-d.
* cross attention (audio attended with visual queries and vice versa, one
  transformer layer each, d=128, 8 heads), then self attention over the
  concatenated 256-d stream, and a 256 -> 2 linear classifier.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from . import load_checkpoint, remap_state_dict
from .separable import VISUAL_MEAN, VISUAL_STD

__all__ = ["TalkNet"]


def _bn2(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, momentum=0.01, eps=0.001)


# ----------------------------------------------------------------------------- visual


class _ResLayer(nn.Module):
    """Two basic residual units; the first may downsample (1x1 conv shortcut).

    Pre-activation-ish ordering as in the lip-reading ResNet TalkNet reuses:
    conv-bn-relu-conv, add shortcut, bn-relu; twice.
    """

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        self.conv1a = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1a = _bn2(cout)
        self.conv2a = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.downsample = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)  # unused when stride 1
        self.outbna = _bn2(cout)
        self.conv1b = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn1b = _bn2(cout)
        self.conv2b = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.outbnb = _bn2(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.stride == 1 else self.downsample(x)
        mid = self.conv2a(F.relu(self.bn1a(self.conv1a(x)))) + shortcut
        y = F.relu(self.outbna(mid))
        y = self.conv2b(F.relu(self.bn1b(self.conv1b(y)))) + mid
        return F.relu(self.outbnb(y))


class _FrameResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer1 = _ResLayer(64, 64, 1)
        self.layer2 = _ResLayer(64, 128, 2)
        self.layer3 = _ResLayer(128, 256, 2)
        self.layer4 = _ResLayer(256, 512, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return F.avg_pool2d(x, kernel_size=4, stride=1).flatten(1)


class _VisualFrontend(nn.Module):
    def __init__(self):
        super().__init__()
        self.frontend3D = nn.Sequential(
            nn.Conv3d(1, 64, kernel_size=(5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
            nn.BatchNorm3d(64, momentum=0.01, eps=0.001),
            nn.ReLU(),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        self.resnet = _FrameResNet()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, T, 112, 112]`` -> ``[B, T, 512]``."""
        b, _, t = x.shape[:3]
        y = self.frontend3D(x)  # [B, 64, T, 28, 28]
        c, h, w = y.shape[1], y.shape[3], y.shape[4]
        y = y.transpose(1, 2).reshape(b * t, c, h, w)
        return self.resnet(y).view(b, t, 512)


class _GlobalLayerNorm(nn.Module):
    """Normalise over channels *and* time of ``[B, C, T]`` (Conv-TasNet's gLN)."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, channels, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2), keepdim=True)
        var = (x - mean).pow(2).mean(dim=(1, 2), keepdim=True)
        return self.gamma * (x - mean) / torch.sqrt(var + 1e-8) + self.beta


class _DSConvUnit(nn.Module):
    def __init__(self, channels: int = 512):
        super().__init__()
        self.net = nn.Sequential(
            nn.ReLU(),
            nn.BatchNorm1d(channels),
            nn.Conv1d(channels, channels, 3, padding=1, groups=channels, bias=False),
            nn.PReLU(),
            _GlobalLayerNorm(channels),
            nn.Conv1d(channels, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class _VisualTCN(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(*[_DSConvUnit(512) for _ in range(5)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _VisualConv1D(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(512, 256, 5, padding=2),
            nn.BatchNorm1d(256),
            nn.ReLU(),
            nn.Conv1d(256, 128, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# ----------------------------------------------------------------------------- audio


class _SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction),
            nn.ReLU(),
            nn.Linear(channels // reduction, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.fc(x.mean(dim=(2, 3)))
        return x * w[:, :, None, None]


class _SEBasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.se = _SqueezeExcite(cout)
        if stride not in (1, (1, 1)) or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn1(F.relu(self.conv1(x)))  # (ReLU before BN, as trained)
        y = self.se(self.bn2(self.conv2(y)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(y + shortcut)


class _AudioEncoder(nn.Module):
    def __init__(self, layers=(3, 4, 6, 3), widths=(16, 32, 64, 128)):
        super().__init__()
        self.conv1 = nn.Conv2d(1, widths[0], 7, stride=(2, 1), padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        strides = (1, (2, 2), (2, 2), (1, 1))
        cin = widths[0]
        for i, (n, w, s) in enumerate(zip(layers, widths, strides)):
            blocks = [_SEBasicBlock(cin, w, s)] + [_SEBasicBlock(w, w) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            cin = w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, 13, 4T]`` -> ``[B, T, 128]``."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=2).transpose(1, 2)


# ----------------------------------------------------------------------------- attention


class _AttentionLayer(nn.Module):
    """One post-norm transformer layer whose queries come from ``tar`` and
    keys/values from ``src``; the residual is ``src``."""

    def __init__(self, d_model: int, nhead: int = 8):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, batch_first=True)
        self.linear1 = nn.Linear(d_model, 4 * d_model)
        self.linear2 = nn.Linear(4 * d_model, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, src: torch.Tensor, tar: torch.Tensor) -> torch.Tensor:
        attended, _ = self.self_attn(tar, src, src, need_weights=False)
        x = self.norm1(src + attended)
        return self.norm2(x + self.linear2(F.relu(self.linear1(x))))


# ----------------------------------------------------------------------------- model


class TalkNet(nn.Module):
    """TalkNet + its audio-visual classifier head.

    ``forward(mfcc [B, 4T, 13], faces [B, T, 112, 112] in 0..255) -> logits [B, T, 2]``.
    Its encoders are not local in time (global layer norm, attention), so
    results depend on the window they are run on.
    """

    def __init__(self):
        super().__init__()
        self.visualFrontend = _VisualFrontend()
        self.visualTCN = _VisualTCN()
        self.visualConv1D = _VisualConv1D()
        self.audioEncoder = _AudioEncoder()
        self.crossA2V = _AttentionLayer(128)
        self.crossV2A = _AttentionLayer(128)
        self.selfAV = _AttentionLayer(256)
        self.head = nn.Linear(256, 2)

    def encode_visual(self, faces: torch.Tensor) -> torch.Tensor:
        x = (faces.unsqueeze(1) / 255.0 - VISUAL_MEAN) / VISUAL_STD
        x = self.visualFrontend(x).transpose(1, 2)  # [B, 512, T]
        return self.visualConv1D(self.visualTCN(x)).transpose(1, 2)

    def encode_audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        return self.audioEncoder(mfcc.transpose(1, 2).unsqueeze(1))

    def backend(self, a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        a_c = self.crossA2V(a, v)
        v_c = self.crossV2A(v, a)
        x = torch.cat((a_c, v_c), dim=2)
        return self.head(self.selfAV(x, x))

    def forward(self, mfcc: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        return self.backend(self.encode_audio(mfcc), self.encode_visual(faces))

    @staticmethod
    def convert_state_dict(state) -> dict[str, torch.Tensor]:
        return remap_state_dict(state, {"model.": "", "lossAV.FC.": "head."}, drop=("lossA.", "lossV."))

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> "TalkNet":
        net = cls()
        net.load_state_dict(cls.convert_state_dict(load_checkpoint(path)), strict=True)
        return net.to(device).eval()
