"""Network definitions: published checkpoints load strictly and run."""

from __future__ import annotations


import pytest
import torch
from torch.nn import functional as F

from mikupal.nets import remap_state_dict
from mikupal.nets.light_asd import LightASD, spatial_max_pool, temporal_conv
from mikupal.nets.lr_asd import LRASD
from mikupal.nets.talknet import TalkNet

torch.set_num_threads(1)


def _inputs(t: int, b: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 4 * t, 13, generator=g), torch.rand(b, t, 112, 112, generator=g) * 255


# ----------------------------------------------------------------------------- Light-ASD / LR-ASD


@pytest.mark.parametrize(
    "cls, rel, n_params",
    [
        (LightASD, "models/light-asd/pretrain_AVA_CVPR.model", 1_021_378),
        (LRASD, "models/lr-asd/pretrain_AVA.model", 836_898),
    ],
)
def test_published_asd_weights_load_strict(shared, cls, rel, n_params):
    path = shared / rel
    if not path.is_file():
        pytest.skip(f"{path} missing")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    converted = cls.convert_state_dict(raw)
    # every published key except the training-only visual head is used
    assert len(converted) == len([k for k in raw if not k.startswith("lossV.")])
    net = cls()
    net.load_state_dict(converted, strict=True)
    net.eval()
    assert sum(p.numel() for p in net.parameters()) == n_params  # 1.0M / 0.84M as in the papers
    mfcc, faces = _inputs(10)
    with torch.inference_mode():
        out = net(mfcc, faces)
    assert out.shape == (1, 10, 2)
    assert torch.isfinite(out).all()
    # also through the convenience constructor
    net2 = cls.from_checkpoint(path)
    with torch.inference_mode():
        assert torch.allclose(net2(mfcc, faces), out)


@pytest.mark.parametrize("cls", [LightASD, LRASD, TalkNet])
def test_batch_items_are_independent(cls):
    torch.manual_seed(0)
    net = cls().eval()
    mfcc, faces = _inputs(6, b=2, seed=1)
    with torch.inference_mode():
        both = net(mfcc, faces)
        first = net(mfcc[:1], faces[:1])
    assert both.shape == (2, 6, 2)
    assert torch.allclose(both[:1], first, atol=1e-4)


def test_fast_video_ops_match_3d_ops():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 7, 9, 10)
    for k in (1, 3, 5):
        conv = torch.nn.Conv3d(8, 6, (k, 1, 1), padding=(k // 2, 0, 0), bias=False)
        assert torch.allclose(temporal_conv(conv, x), conv(x), atol=1e-5)
    for y in (x, x.bfloat16(), x[:, :, :, :8, :7]):  # the CPU's strided maxima are the pool, exactly (odd sizes too)
        ref = F.max_pool3d(y.float(), kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)).to(y.dtype)
        assert torch.equal(spatial_max_pool(y), ref)


def test_remap_state_dict():
    sd = {"model.a": 1, "lossAV.FC.weight": 2, "lossV.FC.weight": 3, "other": 4}
    out = remap_state_dict(sd, {"model.": "", "lossAV.FC.": "head."}, drop=("lossV.",))
    assert out == {"a": 1, "head.weight": 2, "other": 4}


# ----------------------------------------------------------------------------- TalkNet


def _bn(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.weight": (c,),
        f"{prefix}.bias": (c,),
        f"{prefix}.running_mean": (c,),
        f"{prefix}.running_var": (c,),
        f"{prefix}.num_batches_tracked": (),
    }


def _ln(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,)}


def _attention(prefix: str, d: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.self_attn.in_proj_weight": (3 * d, d),
        f"{prefix}.self_attn.in_proj_bias": (3 * d,),
        f"{prefix}.self_attn.out_proj.weight": (d, d),
        f"{prefix}.self_attn.out_proj.bias": (d,),
        f"{prefix}.linear1.weight": (4 * d, d),
        f"{prefix}.linear1.bias": (4 * d,),
        f"{prefix}.linear2.weight": (d, 4 * d),
        f"{prefix}.linear2.bias": (d,),
        **_ln(f"{prefix}.norm1", d),
        **_ln(f"{prefix}.norm2", d),
    }


def talknet_official_layout() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the official TalkNet checkpoint (TaoRuijie/TalkNet-ASD,
    ``pretrain_TalkSet.model``): ``talkNet`` holds ``model`` (talkNetModel),
    ``lossAV`` (FC 256->2), ``lossA`` and ``lossV`` (FC 128->2)."""
    m = "model."
    shapes: dict[str, tuple[int, ...]] = {}
    # visualFrontend: frontend3D = [Conv3d(1,64,(5,7,7)), BN3d, ReLU, MaxPool3d] + lip-reading ResNet-18
    shapes[m + "visualFrontend.frontend3D.0.weight"] = (64, 1, 5, 7, 7)
    shapes.update(_bn(m + "visualFrontend.frontend3D.1", 64))
    for i, (cin, cout) in enumerate([(64, 64), (64, 128), (128, 256), (256, 512)], start=1):
        p = f"{m}visualFrontend.resnet.layer{i}."
        shapes[p + "conv1a.weight"] = (cout, cin, 3, 3)
        shapes.update(_bn(p + "bn1a", cout))
        shapes[p + "conv2a.weight"] = (cout, cout, 3, 3)
        shapes[p + "downsample.weight"] = (cout, cin, 1, 1)
        shapes.update(_bn(p + "outbna", cout))
        shapes[p + "conv1b.weight"] = (cout, cout, 3, 3)
        shapes.update(_bn(p + "bn1b", cout))
        shapes[p + "conv2b.weight"] = (cout, cout, 3, 3)
        shapes.update(_bn(p + "outbnb", cout))
    # visualTCN: 5 x DSConv1d.net = [ReLU, BN1d(512), dwConv1d(512,k3), PReLU, gLN(512), Conv1d(512,512,1)]
    for i in range(5):
        p = f"{m}visualTCN.net.{i}.net."
        shapes.update(_bn(p + "1", 512))
        shapes[p + "2.weight"] = (512, 1, 3)
        shapes[p + "3.weight"] = (1,)
        shapes[p + "4.gamma"] = (1, 512, 1)
        shapes[p + "4.beta"] = (1, 512, 1)
        shapes[p + "5.weight"] = (512, 512, 1)
    # visualConv1D.net = [Conv1d(512,256,5), BN1d(256), ReLU, Conv1d(256,128,1)]
    shapes[m + "visualConv1D.net.0.weight"] = (256, 512, 5)
    shapes[m + "visualConv1D.net.0.bias"] = (256,)
    shapes.update(_bn(m + "visualConv1D.net.1", 256))
    shapes[m + "visualConv1D.net.3.weight"] = (128, 256, 1)
    shapes[m + "visualConv1D.net.3.bias"] = (128,)
    # audioEncoder: conv1 7x7 (16) + SE-ResNet layers [3,4,6,3] x widths [16,32,64,128], SE reduction 8
    a = m + "audioEncoder."
    shapes[a + "conv1.weight"] = (16, 1, 7, 7)
    shapes.update(_bn(a + "bn1", 16))
    cin = 16
    for i, (n, w) in enumerate(zip((3, 4, 6, 3), (16, 32, 64, 128)), start=1):
        for j in range(n):
            p = f"{a}layer{i}.{j}."
            c_in = cin if j == 0 else w
            shapes[p + "conv1.weight"] = (w, c_in, 3, 3)
            shapes.update(_bn(p + "bn1", w))
            shapes[p + "conv2.weight"] = (w, w, 3, 3)
            shapes.update(_bn(p + "bn2", w))
            shapes[p + "se.fc.0.weight"] = (w // 8, w)
            shapes[p + "se.fc.0.bias"] = (w // 8,)
            shapes[p + "se.fc.2.weight"] = (w, w // 8)
            shapes[p + "se.fc.2.bias"] = (w,)
            if j == 0 and i > 1:  # stride 2 (layers 2, 3) or width change (layer 4)
                shapes[p + "downsample.0.weight"] = (w, c_in, 1, 1)
                shapes.update(_bn(p + "downsample.1", w))
        cin = w
    shapes.update(_attention(m + "crossA2V", 128))
    shapes.update(_attention(m + "crossV2A", 128))
    shapes.update(_attention(m + "selfAV", 256))
    shapes["lossAV.FC.weight"] = (2, 256)
    shapes["lossAV.FC.bias"] = (2,)
    shapes["lossA.FC.weight"] = (2, 128)
    shapes["lossA.FC.bias"] = (2,)
    shapes["lossV.FC.weight"] = (2, 128)
    shapes["lossV.FC.bias"] = (2,)
    return shapes


def random_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(1000)
        elif key.endswith("running_var"):
            out[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith("running_mean"):
            out[key] = torch.randn(shape, generator=g) * 0.1
        else:
            fan_in = max(1, int(torch.tensor(shape[1:]).prod().item())) if len(shape) > 1 else 1
            out[key] = torch.randn(shape, generator=g) / fan_in**0.5
    return out


def test_talknet_loads_official_layout_strict():
    shapes = talknet_official_layout()
    ours = {k: tuple(v.shape) for k, v in TalkNet().state_dict().items()}
    assert len(ours) == len(shapes) - 4  # lossA / lossV dropped
    net = TalkNet()
    net.load_state_dict(TalkNet.convert_state_dict(random_state(shapes)), strict=True)
    net.eval()
    mfcc, faces = _inputs(8)
    with torch.inference_mode():
        out = net(mfcc, faces)
    assert out.shape == (1, 8, 2)
    assert torch.isfinite(out).all()


def test_talknet_checkpoint_file_roundtrip(tmp_path):
    path = tmp_path / "pretrain_TalkSet.model"
    torch.save(random_state(talknet_official_layout(), seed=1), path)
    net = TalkNet.from_checkpoint(path)
    mfcc, faces = _inputs(5)
    with torch.inference_mode():
        assert net(mfcc, faces).shape == (1, 5, 2)
