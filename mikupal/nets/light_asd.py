"""Light-ASD (Liao et al., CVPR 2023): a lightweight audio-visual active speaker detector.

Our own implementation, laid out so that the published ``pretrain_AVA_CVPR.model``
loads strictly through :meth:`LightASD.from_checkpoint`.

Architecture summary (per the paper):

* visual encoder: three blocks, each with two parallel branches (3x3 and 5x5
  spatial conv -> 3 and 5 temporal conv, i.e. (2+1)D factorised) that are summed
  and mixed by a 1x1x1 conv; spatial max-pools between blocks; global spatial
  max pooling gives a 128-d vector per frame.
* audio encoder: the same two-branch design in 2-D over (MFCC, time), with
  temporal max-pools that bring 100 Hz MFCC frames down to 25 Hz; mean over the
  MFCC axis gives a 128-d vector per video frame.
* backend: audio + visual embeddings are summed and fed to a "bidirectional"
  GRU built from two unidirectional GRUs (forward, then backward over the
  forward GRU's GELU output), followed by a 128 -> 2 linear classifier.

All BatchNorms use eps=1e-3 (as trained).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .separable import VISUAL_MEAN, VISUAL_STD, SeparableAsdNet

__all__ = ["LightASD", "VISUAL_MEAN", "VISUAL_STD"]

_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01


def _conv_bn(conv_cls, bn_cls, cin, cout, kernel, stride=1):
    padding = tuple(k // 2 for k in kernel)
    conv = conv_cls(cin, cout, kernel_size=kernel, stride=stride, padding=padding, bias=False)
    return conv, bn_cls(cout, eps=_BN_EPS, momentum=_BN_MOMENTUM)


def temporal_conv(conv: nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
    """A ``(k, 1, 1)`` Conv3d over ``[B, C, T, H, W]``, computed as a Conv2d with
    kernel ``(k, 1)`` over the ``[B, C, T, H*W]`` view: same result, and several
    times faster on CPU than PyTorch's Conv3d path for these kernels."""
    b, _, t, h, w = x.shape
    y = F.conv2d(
        x.reshape(b, x.shape[1], t, h * w),
        conv.weight.squeeze(-1),
        conv.bias,
        stride=(conv.stride[0], 1),
        padding=(conv.padding[0], 0),
    )
    return y.view(b, y.shape[1], y.shape[2], h, w)


def spatial_max_pool(x: torch.Tensor) -> torch.Tensor:
    """3x3 stride-2 max pool over H, W of ``[B, C, T, H, W]`` (a (1, 3, 3) MaxPool3d). On CPU it
    is the maximum of the nine strided views (`_shifted_max_pool`): the same values, ~6x less time
    than PyTorch's pool over the many channels of this layout (a fifth of the visual encoder's)."""
    if x.device.type == "cpu" and not torch.onnx.is_in_onnx_export():
        return _shifted_max_pool(x)
    b, c, t, h, w = x.shape
    y = F.max_pool2d(x.reshape(b, c * t, h, w), kernel_size=3, stride=2, padding=1)
    return y.view(b, c, t, y.shape[-2], y.shape[-1])


def _shifted_max_pool(x: torch.Tensor) -> torch.Tensor:
    """``max_pool2d(kernel_size=3, stride=2, padding=1)`` over the last two axes: rows, then
    columns, each the maximum of three strided views of the input padded with -inf (a maximum
    picks one of its inputs, so the result is exactly the pool's)."""
    oh, ow = (x.shape[-2] + 1) // 2, (x.shape[-1] + 1) // 2
    xp = F.pad(x, (1, 1, 1, 1), value=float("-inf"))
    rows = torch.maximum(torch.maximum(xp[..., 0 : 2 * oh : 2, :], xp[..., 1 : 2 * oh + 1 : 2, :]), xp[..., 2 : 2 * oh + 2 : 2, :])
    return torch.maximum(torch.maximum(rows[..., 0 : 2 * ow : 2], rows[..., 1 : 2 * ow + 1 : 2]), rows[..., 2 : 2 * ow + 2 : 2])


class _TwoBranchBlock(nn.Module):
    """Two factorised conv branches (kernel 3 and 5) summed, then a pointwise mix.

    ``ndim`` 3: video ``[B, C, T, H, W]``: the first conv of a branch is spatial
    ``(1, k, k)`` (attribute ``s_k``), the second temporal ``(k, 1, 1)`` (``t_k``).
    ``ndim`` 2: audio ``[B, C, M, T]``: the first conv runs along the MFCC axis
    ``(k, 1)`` (``m_k``), the second along time ``(1, k)`` (``t_k``).
    """

    def __init__(self, cin: int, cout: int, ndim: int, downsample: bool = False):
        super().__init__()
        self.ndim = ndim
        if ndim == 3:
            conv, bn, first = nn.Conv3d, nn.BatchNorm3d, "s"
            stride = (1, 2, 2) if downsample else 1
        else:
            conv, bn, first = nn.Conv2d, nn.BatchNorm2d, "m"
            stride = 1
        self._first = first
        for k in (3, 5):
            if ndim == 3:
                k_first, k_second = (1, k, k), (k, 1, 1)
            else:
                k_first, k_second = (k, 1), (1, k)
            c1, b1 = _conv_bn(conv, bn, cin, cout, k_first, stride)
            c2, b2 = _conv_bn(conv, bn, cout, cout, k_second)
            setattr(self, f"{first}_{k}", c1)
            setattr(self, f"bn_{first}_{k}", b1)
            setattr(self, f"t_{k}", c2)
            setattr(self, f"bn_t_{k}", b2)
        one = (1, 1, 1) if ndim == 3 else (1, 1)
        self.last, self.bn_last = _conv_bn(conv, bn, cout, cout, one)

    def _branch(self, x: torch.Tensor, k: int) -> torch.Tensor:
        f = self._first
        x = F.relu(getattr(self, f"bn_{f}_{k}")(getattr(self, f"{f}_{k}")(x)), inplace=True)
        t_conv = getattr(self, f"t_{k}")
        x = temporal_conv(t_conv, x) if self.ndim == 3 else t_conv(x)
        return F.relu(getattr(self, f"bn_t_{k}")(x), inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._branch(x, 3).add_(self._branch(x, 5))  # in place, as the ReLUs: the same values, fewer large buffers
        y = temporal_conv(self.last, y) if self.ndim == 3 else self.last(y)
        return F.relu(self.bn_last(y), inplace=True)


class _VisualEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.block1 = _TwoBranchBlock(1, 32, ndim=3, downsample=True)
        self.block2 = _TwoBranchBlock(32, 64, ndim=3)
        self.block3 = _TwoBranchBlock(64, 128, ndim=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, T, H, W]`` normalised -> ``[B, T, 128]``."""
        x = spatial_max_pool(self.block1(x))
        x = spatial_max_pool(self.block2(x))
        x = self.block3(x)
        return x.amax(dim=(3, 4)).transpose(1, 2)


class _AudioEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.block1 = _TwoBranchBlock(1, 32, ndim=2)
        self.block2 = _TwoBranchBlock(32, 64, ndim=2)
        self.block3 = _TwoBranchBlock(64, 128, ndim=2)

    @staticmethod
    def _pool(x: torch.Tensor) -> torch.Tensor:
        # halve the time axis (last dim) only
        return F.max_pool2d(x, kernel_size=(1, 3), stride=(1, 2), padding=(0, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, 13, 4T]`` -> ``[B, T, 128]``."""
        x = self._pool(self.block1(x))
        x = self._pool(self.block2(x))
        x = self.block3(x)
        return x.mean(dim=2).transpose(1, 2)


class _StackedBiGRU(nn.Module):
    """Forward GRU, GELU, then a GRU over the time-reversed result, GELU."""

    def __init__(self, channels: int):
        super().__init__()
        self.gru_forward = nn.GRU(channels, channels, batch_first=True)
        self.gru_backward = nn.GRU(channels, channels, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.gelu(self.gru_forward(x)[0])
        y = self.gru_backward(y.flip(1))[0].flip(1)
        return F.gelu(y)


class LightASD(SeparableAsdNet):
    """Light-ASD network + its audio-visual classifier head.

    ``forward(mfcc [B, 4T, 13], faces [B, T, 112, 112] in 0..255) -> logits [B, T, 2]``.
    """

    def __init__(self):
        super().__init__()
        self.visualEncoder = _VisualEncoder()
        self.audioEncoder = _AudioEncoder()
        self.GRU = _StackedBiGRU(128)
        self.head = nn.Linear(128, 2)

    def backend(self, a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.head(self.GRU(a + v))
