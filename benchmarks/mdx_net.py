"""An MDX-Net of the real shape, random weights, to time separation where the weights cannot be had.

The UVR MDX-Net vocal models that `separation.model` names (Kim_Vocal_2, UVR-MDX-NET-Voc_FT; the
Inst_HQ family is the same network) are KUIELab's ConvTDFNet (TFC-TDF U-Net) exported to ONNX:
input `[batch, 4, dim_f, dim_t]` (real and imaginary STFT of both channels), here with UVR's
published parameters dim_f 3072, dim_t 2^8 = 256, n_fft 7680, hop 1024, and the architecture's
num_blocks 11, l 3, g 48, k 3, bn 8: float32 weights of 66.8 MB, the size of those ONNX files.
audio-separator (0.47, `mdx_separator.py`) cuts the 44.1 kHz stereo input into segments of
hop x (segment_size - 1) = 261,120 samples at a step of (1 - overlap) of that (overlap 0.25:
4.44 s of new audio per segment), runs STFT -> network -> ISTFT per segment, and overlap-adds.

`python -m benchmarks.mdx_net` times that per media second on this CPU (ONNX Runtime, as the
stage runs it, and torch), batch 1 and 4, and writes `results/separation_cpu.json`. Timing only:
random weights separate nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from torch import nn

DIM_F, DIM_T, N_FFT, HOP = 3072, 256, 7680, 1024
SEGMENT = HOP * (DIM_T - 1)  # samples per segment at 44.1 kHz (audio-separator's chunk_size)
OVERLAP = 0.25
STEP_SECONDS = (1 - OVERLAP) * SEGMENT / 44100.0  # new media seconds per segment: 4.44 s
RESULTS = Path(__file__).resolve().parent / "results" / "separation_cpu.json"


class _TFC(nn.Module):
    def __init__(self, c: int, l: int, k: int):
        super().__init__()
        self.H = nn.ModuleList(nn.Sequential(nn.Conv2d(c, c, k, padding=k // 2), nn.BatchNorm2d(c), nn.ReLU()) for _ in range(l))

    def forward(self, x):
        for h in self.H:
            x = h(x)
        return x


class _TFC_TDF(nn.Module):
    def __init__(self, c: int, l: int, f: int, k: int, bn: int):
        super().__init__()
        self.tfc = _TFC(c, l, k)
        self.tdf = nn.Sequential(nn.Linear(f, f // bn), nn.BatchNorm2d(c), nn.ReLU(),
                                 nn.Linear(f // bn, f), nn.BatchNorm2d(c), nn.ReLU())

    def forward(self, x):
        x = self.tfc(x)
        return x + self.tdf(x)


class ConvTDFNet(nn.Module):
    """KUIELab's ConvTDFNet body (the part in the ONNX file): `[B, 4, dim_f, dim_t]` in and out."""

    def __init__(self, dim_c: int = 4, dim_f: int = DIM_F, num_blocks: int = 11, l: int = 3, g: int = 48, k: int = 3, bn: int = 8):
        super().__init__()
        self.n = num_blocks // 2
        self.first_conv = nn.Sequential(nn.Conv2d(dim_c, g, 1), nn.BatchNorm2d(g), nn.ReLU())
        f, c = dim_f, g
        self.encoding_blocks, self.ds = nn.ModuleList(), nn.ModuleList()
        for _ in range(self.n):
            self.encoding_blocks.append(_TFC_TDF(c, l, f, k, bn))
            self.ds.append(nn.Sequential(nn.Conv2d(c, c + g, 2, stride=2), nn.BatchNorm2d(c + g), nn.ReLU()))
            f, c = f // 2, c + g
        self.bottleneck_block = _TFC_TDF(c, l, f, k, bn)
        self.decoding_blocks, self.us = nn.ModuleList(), nn.ModuleList()
        for _ in range(self.n):
            self.us.append(nn.Sequential(nn.ConvTranspose2d(c, c - g, 2, stride=2), nn.BatchNorm2d(c - g), nn.ReLU()))
            f, c = f * 2, c - g
            self.decoding_blocks.append(_TFC_TDF(c, l, f, k, bn))
        self.final_conv = nn.Conv2d(c, dim_c, 1)

    def forward(self, x):
        x = self.first_conv(x)
        x = x.transpose(-1, -2)  # [B, C, T, F]: the TDF linears act on frequency
        skips = []
        for block, down in zip(self.encoding_blocks, self.ds):
            x = block(x)
            skips.append(x)
            x = down(x)
        x = self.bottleneck_block(x)
        for up, block, skip in zip(self.us, self.decoding_blocks, reversed(skips)):
            x = block(up(x) * skip)
        return self.final_conv(x.transpose(-1, -2))


def make_net(seed: int = 0) -> ConvTDFNet:
    torch.manual_seed(seed)
    return ConvTDFNet().eval()


def n_bytes(net: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in net.parameters())


class Spectral:
    """audio-separator's STFT front end and ISTFT back end around the network (`uvr_lib_v5/stft.py`)."""

    def __init__(self, device: str = "cpu"):
        self.window = torch.hann_window(N_FFT, periodic=True, device=device)

    def stft(self, wave):  # [B, 2, SEGMENT] -> [B, 4, DIM_F, DIM_T]
        b = wave.shape[0]
        spec = torch.stft(wave.reshape(-1, wave.shape[-1]), n_fft=N_FFT, hop_length=HOP, window=self.window,
                          center=True, return_complex=True)
        spec = torch.view_as_real(spec).permute(0, 3, 1, 2).reshape(b, 4, N_FFT // 2 + 1, -1)
        return spec[:, :, :DIM_F]

    def istft(self, spec):  # [B, 4, DIM_F, DIM_T] -> [B, 2, SEGMENT]
        b, t = spec.shape[0], spec.shape[-1]
        full = torch.cat([spec, spec.new_zeros(b, 4, N_FFT // 2 + 1 - DIM_F, t)], 2)
        full = full.reshape(b * 2, 2, N_FFT // 2 + 1, t).permute(0, 2, 3, 1).contiguous()
        return torch.istft(torch.view_as_complex(full), n_fft=N_FFT, hop_length=HOP, window=self.window,
                           center=True).reshape(b, 2, -1)


def segments_per_media_second() -> float:
    return 1.0 / STEP_SECONDS


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def cpu_figures(threads: int, batches: list[int], repeats: int) -> dict:
    """CPU-seconds per media second of separation: STFT + network + ISTFT per segment, ONNX Runtime
    (what the stage runs) and torch, at each batch size."""
    import io

    import onnxruntime as ort

    torch.set_num_threads(threads)
    net, spectral = make_net(), Spectral()
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(net, (torch.zeros(1, 4, DIM_F, DIM_T),), buf, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=17, dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
    out = {"threads": threads, "weights_mb": round(n_bytes(net) / 1e6, 1), "segment_seconds": round(SEGMENT / 44100, 3),
           "media_seconds_per_segment": round(STEP_SECONDS, 3), "by_batch": {}}
    for b in batches:
        wave = torch.randn(b, 2, SEGMENT) * 0.1
        spec = spectral.stft(wave)
        with torch.no_grad():
            t_front = _time(lambda: spectral.istft(spectral.stft(wave)), repeats)
            t_torch = _time(lambda: net(spec), repeats)
        t_onnx = _time(lambda: sess.run(None, {"input": spec.numpy()}), repeats)
        per = segments_per_media_second() / b
        out["by_batch"][str(b)] = {
            "onnxruntime_s_per_media_s": round((t_onnx + t_front) * per, 4),
            "torch_s_per_media_s": round((t_torch + t_front) * per, 4),
            "stft_istft_s_per_media_s": round(t_front * per, 4),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    runs = [cpu_figures(t, args.batches, args.repeats) for t in args.threads]
    result = {"what": "MDX-Net (ConvTDFNet, UVR vocal model shape, random weights) on CPU: wall seconds per media second",
              "command": "python -m benchmarks.mdx_net " + " ".join(
                  f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in vars(args).items()),
              "cpu": os.cpu_count(), "time": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": runs}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
