"""Active speaker detection: MFCC features and one scoring interface over several networks.

>>> model = ActiveSpeakerModel.load("light-asd", "shared/models/light-asd/pretrain_AVA_CVPR.model")
>>> scores = model.score(audio_mfcc(audio_16k), face_crops(frames, boxes))   # [T], > 0 = speaking

Inputs are the public models' conventions: 13 MFCCs at 100 frames/s from 16 kHz
audio (4 MFCC frames per video frame) and 112x112 grayscale face crops at 25 fps
(see :mod:`mikupal.vision.crops`). The score is the classifier's "speaking" logit, as
in the public demos.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch

__all__ = [
    "ActiveSpeakerModel",
    "audio_mfcc",
    "AsdKind",
    "DEFAULT_WINDOWS",
    "DEMO_WINDOWS",
    "FULL",
    "VIDEO_FPS",
    "MFCC_PER_FRAME",
    "use_bf16",
]

AsdKind = Literal["light-asd", "lr-asd", "talknet"]

VIDEO_FPS = 25.0  # the ASD models' frame rate: every utterance is decoded at it
MFCC_PER_FRAME = 4  # 100 MFCC frames/s over 25 video frames/s
FULL = math.inf  # a window length meaning "the whole track in one pass"
#: windows (s) averaged by the public demos' evaluate_network. Note: the demos
#: write them as a Python *set*, so they effectively average {1, 2, 3, 4, 5, 6}.
DEMO_WINDOWS: tuple[float, ...] = (1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6)
DEFAULT_WINDOWS: tuple[float, ...] = (6.0,)

_INT16_SCALE = 32768.0


def audio_mfcc(audio_16k: np.ndarray, scale: float | None = None) -> np.ndarray:
    """13 MFCCs at 100 frames/s (25 ms window, 10 ms step) of 16 kHz mono audio -> ``[T_a, 13]`` float32.

    The networks were trained on MFCCs of int16 PCM values (the demos pass the
    wav file's int16 samples straight to ``python_speech_features.mfcc``).
    Float audio in [-1, 1] is therefore multiplied by 32768 (``scale``
    overrides this; integer arrays are used as they are). Only the first
    coefficient (log frame energy) depends on this scale.
    """
    from python_speech_features import mfcc

    audio = np.asarray(audio_16k)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio [N], got shape {audio.shape}")
    if scale is None:
        scale = 1.0 if np.issubdtype(audio.dtype, np.integer) else _INT16_SCALE
    if len(audio) == 0:
        return np.zeros((0, 13), dtype=np.float32)
    x = audio.astype(np.float64) * scale
    feats = mfcc(x, 16000, numcep=13, winlen=0.025, winstep=0.010)
    return feats.astype(np.float32)


def _load_net(kind: str, path: str | Path, device: str | torch.device) -> torch.nn.Module:
    if kind == "light-asd":
        from ..nets.light_asd import LightASD

        return LightASD.from_checkpoint(path, device)
    if kind == "lr-asd":
        from ..nets.lr_asd import LRASD

        return LRASD.from_checkpoint(path, device)
    if kind == "talknet":
        from ..nets.talknet import TalkNet

        return TalkNet.from_checkpoint(path, device)
    raise ValueError(f"unknown ASD model kind {kind!r}")


class _OnnxEncoders:
    """The audio / visual encoders of a Light-ASD or LR-ASD network exported to ONNX
    (in memory) and run with ONNX Runtime on CPU, which is faster there than
    PyTorch's 3-D convolutions. Outputs equal the torch encoders' up to float
    rounding."""

    def __init__(self, net: torch.nn.Module, threads: int | None = None):
        import io
        import warnings

        import onnxruntime as ort

        class _Part(torch.nn.Module):
            def __init__(self, fn):
                super().__init__()
                self.net = net
                self.fn = fn

            def forward(self, x):
                return self.fn(x)

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.sessions = {}
        examples = {"audio": torch.zeros(1, 4 * 8, 13), "visual": torch.zeros(1, 8, 112, 112)}
        for name, fn in (("audio", net.encode_audio), ("visual", net.encode_visual)):
            part = _Part(fn).eval()
            buf = io.BytesIO()
            with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    part,
                    (examples[name],),
                    buf,
                    input_names=["x"],
                    output_names=["y"],
                    dynamic_axes={"x": {0: "batch", 1: "time"}, "y": {0: "batch", 1: "frames"}},
                    opset_version=17,
                    dynamo=False,
                )
            net.eval()  # the exporter restores the wrapper's mode; keep the net in eval
            self.sessions[name] = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])

    def _run(self, name: str, x: torch.Tensor) -> torch.Tensor:
        arr = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.sessions[name].run(None, {"x": arr})[0])

    def encode_audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        return self._run("audio", mfcc)

    def encode_visual(self, faces: torch.Tensor) -> torch.Tensor:
        return self._run("visual", faces)


def _window_frames(t: int, seconds: float) -> int:
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return t
    return max(1, min(t, int(round(seconds * VIDEO_FPS))))


def use_bf16(precision: str, device: str) -> bool:
    """bf16 autocast for ASD: asked for, or "auto" on a CPU that computes bf16 natively."""
    if precision == "bf16":
        return True
    if precision != "auto" or device != "cpu":
        return False
    cpu = torch.cpu
    try:  # native bf16 only: where oneDNN emulates it, it is no faster than fp32
        return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):
        return False


# Frames of temporal context each side that make chunked encoder outputs equal to
# a whole-sequence pass (receptive fields: Light-ASD ±6, LR-ASD ±9 video frames).
# TalkNet's encoders normalise over the whole sequence, so they cannot be chunked.
_ENCODER_CONTEXT = {"light-asd": 12, "lr-asd": 12, "talknet": None}


class ActiveSpeakerModel:
    """One interface over Light-ASD, LR-ASD and TalkNet.

    ``shared_encoders`` (default True, Light-ASD / LR-ASD only): run the audio and
    visual encoders once over the whole track (in chunks of ``max_chunk_frames``
    with enough overlap that the result equals one whole pass) and only the
    cheap temporal backend once per window. With False, every window runs the
    full network on its own slice, as the public demos do (each extra window
    then costs a full forward pass).

    ``runtime``: "auto" (default) / "onnx" run the encoders with ONNX Runtime
    when on CPU with shared encoders (exported in memory at construction,
    ~1-2 s; 2-2.5x faster than torch's 3-D convs on one core); if the export
    fails it warns and uses torch. "torch" never exports. ``threads``: ONNX
    Runtime intra-op threads (default: ``torch.get_num_threads()``).
    ``self.runtime`` tells which one is used.
    """

    def __init__(
        self,
        net: torch.nn.Module,
        kind: AsdKind,
        device: str | torch.device = "cpu",
        shared_encoders: bool = True,
        max_chunk_frames: int = 500,
        runtime: Literal["auto", "torch", "onnx"] = "auto",
        threads: int | None = None,
    ):
        if kind not in _ENCODER_CONTEXT:
            raise ValueError(f"unknown ASD model kind {kind!r}")
        if runtime not in ("auto", "torch", "onnx"):
            raise ValueError(f"unknown runtime {runtime!r}")
        self.net = net.eval()
        self.kind = kind
        self.device = torch.device(device)
        self.context = _ENCODER_CONTEXT[kind]
        self.shared_encoders = shared_encoders and self.context is not None
        self.max_chunk_frames = max(int(max_chunk_frames), 2 * (self.context or 0) + 1)
        self.encoders = self.net  # what runs encode_audio / encode_visual
        self.runtime = "torch"
        if runtime != "torch" and self.shared_encoders and self.device.type == "cpu":
            try:
                self.encoders = _OnnxEncoders(self.net, threads)
                self.runtime = "onnx"
            except Exception as exc:  # noqa: BLE001  # pragma: no cover - depends on the installed exporter
                import warnings

                warnings.warn(f"ONNX export of the {kind} encoders failed ({exc}); using torch", stacklevel=2)

    @classmethod
    def load(
        cls,
        kind: AsdKind,
        path: str | Path,
        device: str | torch.device = "cpu",
        **kw,
    ) -> "ActiveSpeakerModel":
        return cls(_load_net(kind, path, device), kind, device, **kw)

    # ------------------------------------------------------------------ scoring
    @staticmethod
    def aligned_length(n_mfcc: int, n_faces: int) -> int:
        """Frames scored for ``n_mfcc`` MFCC rows and ``n_faces`` crops:
        ``min(n_faces, ceil(n_mfcc / 4))``. MFCC framing of exactly T/25 s of
        audio yields 4T-1 rows; up to 3 missing rows are filled by repeating
        the last one, so the last video frame is not dropped."""
        return min(n_faces, -(-n_mfcc // MFCC_PER_FRAME))

    def score(
        self,
        mfcc: np.ndarray,
        faces: np.ndarray,
        windows: Sequence[float] = DEFAULT_WINDOWS,
    ) -> np.ndarray:
        """Speaking score per video frame, ``[T]`` float32 (> 0 means speaking).

        ``mfcc``: ``[4*T, 13]`` (:func:`audio_mfcc` of the track's audio);
        ``faces``: ``[T, 112, 112]`` uint8 grayscale crops (:func:`mikupal.vision.crops.face_crops`);
        ``windows``: window lengths in seconds; each splits the track into
        consecutive windows (:meth:`window_bounds`) scored independently, and
        the per-frame scores of all window lengths are averaged. ``FULL`` (inf)
        or <= 0 = the whole track in one window.
        The result has :meth:`aligned_length` entries (normally T).
        """
        mfcc = np.asarray(mfcc, dtype=np.float32).reshape(-1, 13)
        faces = np.asarray(faces)
        if faces.size == 0 or len(mfcc) == 0:
            return np.zeros((0,), dtype=np.float32)
        if faces.ndim != 3 or faces.shape[1:] != (112, 112):
            raise ValueError(f"faces must be [T, 112, 112], got {faces.shape}")
        t = self.aligned_length(len(mfcc), len(faces))
        if not windows:
            raise ValueError("windows must not be empty")
        need = t * MFCC_PER_FRAME
        if len(mfcc) < need:
            mfcc = np.concatenate([mfcc, np.repeat(mfcc[-1:], need - len(mfcc), axis=0)])
        a = torch.from_numpy(np.ascontiguousarray(mfcc[:need])).to(self.device)
        v = torch.from_numpy(np.ascontiguousarray(faces[:t])).to(self.device, torch.float32)

        with torch.inference_mode():
            if self.shared_encoders:
                emb_a, emb_v = self._encode_chunked(a, v)

                def run(s: int, e: int, n: int) -> torch.Tensor:
                    # n consecutive windows of (e - s) frames starting at s
                    w = e - s
                    ea = emb_a[s : s + n * w].reshape(n, w, -1)
                    ev = emb_v[s : s + n * w].reshape(n, w, -1)
                    return self.net.backend(ea, ev)[..., 1]
            else:

                def run(s: int, e: int, n: int) -> torch.Tensor:
                    w = e - s
                    xa = a[s * 4 : (s + n * w) * 4].reshape(n, w * 4, 13)
                    xv = v[s : s + n * w].reshape(n, w, *v.shape[1:])
                    return self.net(xa, xv)[..., 1]

            total = torch.zeros(t, dtype=torch.float32, device=self.device)
            # repeated lengths (the demo set repeats 1, 2, 3) are computed once and weighted
            for win, count in Counter(float(w) for w in windows).items():
                total += count * self._score_windows(run, t, win)
        return (total / len(windows)).cpu().numpy().astype(np.float32)

    @staticmethod
    def window_bounds(t: int, win: float) -> list[tuple[int, int]]:
        """Frame ranges of the windows of length ``win`` seconds over ``t`` frames.

        Windows are balanced: ``max(1, round(t / w))`` consecutive windows of
        near-equal length (w = win * 25 frames), so there is no short leftover
        window at the end (the demos' fixed-length split leaves one, whose
        scores lack context). ``FULL`` / non-finite / <= 0: one window."""
        if t <= 0:
            return []
        if win is None or not math.isfinite(win) or win <= 0:
            return [(0, t)]
        w = max(1.0, win * VIDEO_FPS)
        n = max(1, min(t, int(round(t / w))))
        edges = [round(i * t / n) for i in range(n + 1)]
        return list(zip(edges[:-1], edges[1:]))

    def _score_windows(self, run: Callable[[int, int, int], torch.Tensor], t: int, win: float) -> torch.Tensor:
        out = torch.empty(t, dtype=torch.float32, device=self.device)
        bounds = self.window_bounds(t, win)
        i = 0
        while i < len(bounds):
            # consecutive windows of equal length go through the network as one
            # batch (bounded in frames to bound memory)
            s, e = bounds[i]
            w = e - s
            n = 1
            while (
                i + n < len(bounds)
                and bounds[i + n][1] - bounds[i + n][0] == w
                and (n + 1) * w <= self.max_chunk_frames
            ):
                n += 1
            out[s : s + n * w] = run(s, e, n).reshape(-1)
            i += n
        return out

    def _encode_chunked(self, a: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder outputs ``[T, C]`` for the whole track, chunked with overlap."""
        t = v.shape[0]
        ctx = self.context or 0
        step = self.max_chunk_frames
        if t <= step + 2 * ctx:
            enc = self.encoders
            return enc.encode_audio(a[None])[0].to(self.device), enc.encode_visual(v[None])[0].to(self.device)
        outs_a, outs_v = [], []
        for s in range(0, t, step):
            e = min(t, s + step)
            cs, ce = max(0, s - ctx), min(t, e + ctx)
            ea = self.encoders.encode_audio(a[cs * 4 : ce * 4][None])[0].to(self.device)
            ev = self.encoders.encode_visual(v[cs:ce][None])[0].to(self.device)
            outs_a.append(ea[s - cs : e - cs])
            outs_v.append(ev[s - cs : e - cs])
        return torch.cat(outs_a), torch.cat(outs_v)

    def score_many(
        self,
        tracks: Sequence[tuple[np.ndarray, np.ndarray]],
        windows: Sequence[float] = DEFAULT_WINDOWS,
    ) -> list[np.ndarray]:
        """:meth:`score` for several ``(mfcc, faces)`` tracks."""
        return [self.score(m, f, windows) for m, f in tracks]

    def score_offsets(
        self,
        mfcc: np.ndarray,
        first_row: int,
        crops: np.ndarray,
        offsets: Sequence[int],
        windows: Sequence[float] = (0.0,),
        bf16: bool = False,
    ) -> np.ndarray:
        """ASD scores [len(offsets), T] of T face crops against audio shifted by each offset (frames).

        `mfcc` rows (4 per frame) hold the audio; `first_row` is the row of the crops' first frame.
        Offset o pairs video frame i with the audio of frame i + o. The visual encoder (the expensive
        part) runs once; only the cheap audio encoder and temporal backend run per offset. A model
        without separable encoders (TalkNet) is scored at offset 0 only (every row the same).
        `bf16`: run under CPU bf16 autocast.
        """
        import contextlib

        t = len(crops)
        offsets = list(offsets)
        out = np.zeros((len(offsets), t), dtype=np.float32)
        if t == 0:
            return out
        k = max(abs(o) for o in offsets)
        lo, hi = first_row - MFCC_PER_FRAME * k, first_row + MFCC_PER_FRAME * (t + k)
        idx = np.clip(np.arange(lo, hi), 0, max(0, len(mfcc) - 1))  # edge rows stand in past either end
        rows = np.asarray(mfcc, dtype=np.float32)[idx] if len(mfcc) else np.zeros((hi - lo, 13), np.float32)
        amp = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        net = self.net
        if not self.shared_encoders or not hasattr(net, "encode_visual"):
            a0 = rows[MFCC_PER_FRAME * k : MFCC_PER_FRAME * (k + t)]
            with amp:
                s = self.score(a0, crops, windows=list(windows))
            out[:, : len(s)] = s[None, :]
            return out
        dev = self.device
        enc = net if bf16 else self.encoders  # ONNX Runtime's fp32 encoders where exported
        with torch.inference_mode():
            with amp:  # the encoders are the cost; the small backend runs in fp32 (bf16 is slower there)
                ea = enc.encode_audio(torch.from_numpy(np.ascontiguousarray(rows))[None].to(dev))[0].to(dev).float()
                ev = enc.encode_visual(torch.from_numpy(np.ascontiguousarray(crops)).to(dev, torch.float32)[None])[0].to(dev).float()
            total = torch.zeros(len(offsets), t, device=dev)
            for w in windows:  # every offset of a window in one batch (3x faster than one at a time, equal within 2e-6)
                wf = _window_frames(t, w)
                for s in range(0, t, wf):
                    e = min(t, s + wf)
                    a = torch.stack([ea[k + o + s : k + o + e] for o in offsets])
                    total[:, s:e] += net.backend(a, ev[s:e][None].repeat(len(offsets), 1, 1))[..., 1]
            out[:] = (total / len(windows)).float().cpu().numpy()
        return out
