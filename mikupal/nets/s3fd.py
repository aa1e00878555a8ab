"""S3FD (Zhang et al., ICCV 2017): single-shot scale-invariant face detector on VGG16.

Our own implementation, with the parameter layout of the public ``sfd_face.pth``
(``vgg.N``, ``L2Norm{3,4,5}_3.weight``, ``extras.N``, ``loc.N``, ``conf.N``).

Network: VGG16 conv1_1..conv5_3 (``vgg`` indices count ReLUs and pools too, as
in the original ModuleList), fc6 as a dilated 3x3 conv and fc7 as 1x1 conv
(1024 channels), two extra stages (conv6, conv7). Six detection heads at
strides 4..128 read conv3_3, conv4_3, conv5_3 (each L2-normalised with a
learned per-channel scale), fc7, conv6_2, conv7_2; one square anchor per
location with size 4x the stride. The stride-4 head predicts 3 background
logits that are max-pooled into one ("max-out background label").

:meth:`S3FD.forward` returns raw ``loc [B, P, 4]`` and face probabilities
``[B, P]``; :func:`prior_boxes` and :func:`decode_boxes` turn them into boxes.
Input: RGB float image minus :data:`RGB_MEAN`, not scaled.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from . import load_checkpoint

__all__ = ["S3FD", "RGB_MEAN", "STRIDES", "ANCHOR_SIZES", "VARIANCES", "prior_boxes", "decode_boxes"]

RGB_MEAN = (123.0, 117.0, 104.0)
STRIDES = (4, 8, 16, 32, 64, 128)
ANCHOR_SIZES = (16, 32, 64, 128, 256, 512)
VARIANCES = (0.1, 0.2)

# VGG16 trunk: numbers are 3x3 conv output widths, "M" a 2x2 max-pool, "C" the
# same with ceil_mode (conv3 pool). Indices in the ModuleList include ReLUs.
_VGG_PLAN = (64, 64, "M", 128, 128, "M", 256, 256, 256, "C", 512, 512, 512, "M", 512, 512, 512, "M")
# ModuleList positions right after conv3_3+ReLU, conv4_3+ReLU, conv5_3+ReLU
_TAP_3_3, _TAP_4_3, _TAP_5_3 = 16, 23, 30


class _L2Norm(nn.Module):
    def __init__(self, channels: int, init_scale: float):
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(init_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10
        return x / norm * self.weight.view(1, -1, 1, 1)


def _vgg_layers() -> nn.ModuleList:
    layers: list[nn.Module] = []
    cin = 3
    for item in _VGG_PLAN:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        elif item == "C":
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        else:
            layers += [nn.Conv2d(cin, item, 3, padding=1), nn.ReLU(inplace=True)]
            cin = item
    layers += [
        nn.Conv2d(512, 1024, 3, padding=6, dilation=6),  # fc6
        nn.ReLU(inplace=True),
        nn.Conv2d(1024, 1024, 1),  # fc7
        nn.ReLU(inplace=True),
    ]
    return nn.ModuleList(layers)


class S3FD(nn.Module):
    def __init__(self):
        super().__init__()
        self.vgg = _vgg_layers()
        self.L2Norm3_3 = _L2Norm(256, 10)
        self.L2Norm4_3 = _L2Norm(512, 8)
        self.L2Norm5_3 = _L2Norm(512, 5)
        self.extras = nn.ModuleList(
            [
                nn.Conv2d(1024, 256, 1),
                nn.Conv2d(256, 512, 3, stride=2, padding=1),
                nn.Conv2d(512, 128, 1),
                nn.Conv2d(128, 256, 3, stride=2, padding=1),
            ]
        )
        source_channels = (256, 512, 512, 1024, 512, 256)
        self.loc = nn.ModuleList([nn.Conv2d(c, 4, 3, padding=1) for c in source_channels])
        self.conf = nn.ModuleList(
            [nn.Conv2d(c, 4 if i == 0 else 2, 3, padding=1) for i, c in enumerate(source_channels)]
        )

    def _sources(self, x: torch.Tensor) -> list[torch.Tensor]:
        sources = []
        norms = {_TAP_3_3: self.L2Norm3_3, _TAP_4_3: self.L2Norm4_3, _TAP_5_3: self.L2Norm5_3}
        for i, layer in enumerate(self.vgg):
            if i in norms:
                sources.append(norms[i](x))
            x = layer(x)
        sources.append(x)  # fc7
        for i, layer in enumerate(self.extras):
            x = F.relu(layer(x))
            if i % 2 == 1:
                sources.append(x)
        return sources

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
        """``x [B, 3, H, W]`` -> (loc ``[B, P, 4]``, face probability ``[B, P]``, feature map sizes)."""
        locs, logits, sizes = [], [], []
        for i, src in enumerate(self._sources(x)):
            loc = self.loc[i](src)
            conf = self.conf[i](src)
            if i == 0:  # max-out background: 3 background logits -> 1
                conf = torch.cat([conf[:, :3].amax(dim=1, keepdim=True), conf[:, 3:]], dim=1)
            sizes.append((int(src.shape[2]), int(src.shape[3])))
            locs.append(loc.permute(0, 2, 3, 1).reshape(x.shape[0], -1, 4))
            logits.append(conf.permute(0, 2, 3, 1).reshape(x.shape[0], -1, 2))
        prob = torch.softmax(torch.cat(logits, dim=1), dim=-1)[..., 1]
        return torch.cat(locs, dim=1), prob, sizes

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> "S3FD":
        net = cls()
        net.load_state_dict(load_checkpoint(path), strict=True)
        return net.to(device).eval()


def prior_boxes(image_hw: tuple[int, int], feature_sizes: list[tuple[int, int]]) -> torch.Tensor:
    """Anchors ``[P, 4]`` as (cx, cy, w, h), fractions of the image size; row-major per map."""
    h, w = image_hw
    out = []
    for (fh, fw), stride, size in zip(feature_sizes, STRIDES, ANCHOR_SIZES):
        ys, xs = torch.meshgrid(torch.arange(fh, dtype=torch.float32), torch.arange(fw, dtype=torch.float32), indexing="ij")
        cx = (xs.reshape(-1) + 0.5) * stride / w
        cy = (ys.reshape(-1) + 0.5) * stride / h
        out.append(torch.stack([cx, cy, torch.full_like(cx, size / w), torch.full_like(cy, size / h)], dim=1))
    return torch.cat(out)


def decode_boxes(loc: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """SSD box decoding -> ``[..., 4]`` x1, y1, x2, y2 in image fractions."""
    centre = priors[..., :2] + loc[..., :2] * VARIANCES[0] * priors[..., 2:]
    size = priors[..., 2:] * torch.exp(loc[..., 2:] * VARIANCES[1])
    return torch.cat([centre - size / 2, centre + size / 2], dim=-1)
