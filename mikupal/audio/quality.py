"""DNSMOS speech quality: P.835 SIG / BAK / OVRL and P.808 MOS of a 16 kHz mono signal.

The models are Microsoft's DNS Challenge ONNX files as the PyPI wheel `speechmos` ships them
(MIT; `speechmos/dnsmos_models/sig_bak_ovr.onnx` and `model_v8.onnx`). Only the files are used:
the wheel's own `dnsmos.run` keeps a global session and imports `requests` and pandas, so the
scoring is redone here the way the reference (DNS-Challenge `DNSMOS/dnsmos_local.py`) does it:

- the signal is repeated until it is at least 9.01 s long;
- windows of 9.01 s, one per second of hop (`floor(len / sr - 9.01) + 1` of them);
- P.835: the raw waveform window into `sig_bak_ovr.onnx`, the three raw outputs mapped through the
  reference's second-order polynomial fit to listener MOS;
- P.808: a 120-band log-mel spectrogram (n_fft 321, hop 160, `(dB(ref=max) + 40) / 40`) of the
  window less its last 160 samples into `model_v8.onnx`;
- the per-window scores averaged, and held to the MOS scale [1, 5].

P.835 is most of the cost; `p835.P835` runs it so that frames shared by windows, or repeated within
one, cost once (same numbers). The mel features are computed here with numpy, as librosa computes
them (a worker spared librosa's import, ~1.4 CPU s).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .. import mel
from ..devices import check_onnx, onnx_providers
from ..errors import UserError
from ..models_dir import DNSMOS_P808, DNSMOS_P835, DNSMOS_SOURCE, dnsmos_dir
from .p835 import FRAME_HOP, P835

SAMPLE_RATE = 16000
WINDOW_SECONDS = 9.01
HOP_SECONDS = 1.0
MOS_MIN, MOS_MAX = 1.0, 5.0

# DNSMOS P.835 (not personalized): raw network output -> MOS, from the reference implementation
_P835_FIT = {
    "sig": np.poly1d([-0.08397278, 1.22083953, 0.0052439]),
    "bak": np.poly1d([-0.13166888, 1.60915514, -0.39604546]),
    "ovrl": np.poly1d([-0.06766283, 1.11546468, 0.04602535]),
}


@dataclass(frozen=True)
class DnsmosScores:
    sig: float
    bak: float
    ovrl: float
    p808: float


def find_models(model_dir: Optional[str | os.PathLike] = None) -> Path:
    """The folder holding both ONNX files; a missing one is a run-level error, in one line."""
    d = Path(os.path.expanduser(str(model_dir))) if model_dir else dnsmos_dir()
    if d is None or not (d / DNSMOS_P835).is_file() or not (d / DNSMOS_P808).is_file():
        raise UserError(
            f"DNSMOS models missing ({DNSMOS_P835}, {DNSMOS_P808}) in {d or 'the speechmos package'}: "
            f"pip install speechmos, or set quality.model_dir= to a folder with them (from {DNSMOS_SOURCE}), "
            "or quality.kind=none"
        )
    return d


MEL_FFT, MEL_HOP, MEL_BANDS = 321, 160, 120


def mel_filters(sr: int = SAMPLE_RATE, n_fft: int = MEL_FFT, n_mels: int = MEL_BANDS) -> np.ndarray:
    """The P.808 front end's filters (`mel.mel_filters`: librosa's, in numpy)."""
    return mel.mel_filters(sr, n_fft, n_mels)


def mel_features(window: np.ndarray) -> np.ndarray:
    """The P.808 model's input: [frames, 120] log-mel, scaled as the reference scales it. The
    reference's librosa calls, done in numpy: a centred STFT (zero padding, periodic Hann),
    power, mel filters, `power_to_db(ref=np.max)` (top 80 dB), then `(dB + 40) / 40`."""
    power = mel.power_mel(window, SAMPLE_RATE, MEL_FFT, MEL_HOP, MEL_BANDS)
    db = 10.0 * np.log10(np.maximum(1e-10, power)) - 10.0 * np.log10(max(1e-10, float(power.max())))
    db = np.maximum(db, db.max() - 80.0)
    return ((db + 40) / 40).astype(np.float32)


def repeated(audio: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The reference's fill: a signal shorter than one window, doubled until it is not."""
    if len(audio) == 0:
        raise ValueError("empty signal")
    while len(audio) < int(WINDOW_SECONDS * sr):
        audio = np.concatenate([audio, audio])
    return audio


def window_starts(audio: np.ndarray, sr: int = SAMPLE_RATE) -> list[int]:
    """First sample of each of the reference's 9.01 s windows, at a 1 s hop, of a filled signal."""
    need, hop = int(WINDOW_SECONDS * sr), int(HOP_SECONDS * sr)
    count = int(np.floor(len(audio) / sr) - WINDOW_SECONDS) + 1
    return [i * hop for i in range(count) if i * hop + need <= len(audio)]


def windows(audio: np.ndarray, sr: int = SAMPLE_RATE) -> list[np.ndarray]:
    """The reference's 9.01 s windows at a 1 s hop, after repeating a short signal to fill one."""
    audio = repeated(audio, sr)
    need = int(WINDOW_SECONDS * sr)
    return [audio[s : s + need] for s in window_starts(audio, sr)]


def spread(items: list, count: Optional[int]) -> list:
    """`count` items evenly spaced over `items`, the first and last included (all when None or more).

    The reference's rule makes a short utterance cost many windows (a 4 s one is doubled to 16 s:
    7 windows of circularly shifted copies of itself) that score almost alike: 3 of them give the
    mean of all to within about 0.02 OVRL (benchmarks/quality.md) for at most 3 windows' cost."""
    if count is None or len(items) <= count:
        return items
    idx = np.unique(np.round(np.linspace(0, len(items) - 1, count)).astype(int))
    return [items[i] for i in idx]


class Dnsmos:
    """Both models' ONNX sessions, loaded once; `score` is thread-compatible (ONNX Runtime sessions are)."""

    def __init__(self, model_dir: Optional[str | os.PathLike] = None, threads: Optional[int] = None,
                 gpu: bool = False, require_gpu: bool = False):
        """`gpu`: the worker holds a GPU, so every session asks for ONNX Runtime's CUDA provider and
        is checked (`devices.py`: a CPU fallback warns, or stops the run with `require_gpu`)."""
        import onnxruntime as ort

        d = find_models(model_dir)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        # no memory arena: it keeps P.835's largest intermediate tensors (a 9 s window at full
        # resolution) for the worker's life, ~125 MB, for ~5% of the stage's CPU time
        opts.enable_cpu_mem_arena = False

        def check(session, part: str) -> None:
            check_onnx(session, f"quality (DNSMOS {part})", gpu, require_gpu)

        self.p835 = P835(d / DNSMOS_P835, opts, onnx_providers(gpu), check)
        self.p808 = ort.InferenceSession(str(d / DNSMOS_P808), opts, providers=onnx_providers(gpu))
        check(self.p808, "P.808")
        self._p808_input = self.p808.get_inputs()[0].name

    def score(self, audio: np.ndarray, sr: int = SAMPLE_RATE, max_windows: Optional[int] = None) -> DnsmosScores:
        """Mean scores over the reference's windows of a mono float signal at 16 kHz (clipped to
        [-1, 1]). With `max_windows`, a signal shorter than one window (so repeated to fill it)
        is scored on that many of its windows, evenly spaced (`spread`); a longer one on at least
        its first and last (9.01 s each at a 1 s hop: together they cover every sample of it)."""
        if sr != SAMPLE_RATE:
            raise ValueError(f"DNSMOS needs {SAMPLE_RATE} Hz audio, got {sr}")
        audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
        need = int(WINDOW_SECONDS * sr)
        if max_windows is not None and FRAME_HOP < len(audio) < need:
            # whole 10 ms frames, so the repeated signal's period is a whole number of frames and P.835
            # runs over one period (`P835.raw`): a 2.005 s piece cost 2.3x a 2.000 s one. Under 10 ms
            # of the end goes (a cut's own rounding); max_windows=None keeps the reference's exact input
            audio = audio[: len(audio) - len(audio) % FRAME_HOP]
        filled = repeated(audio, sr)
        starts = window_starts(filled, sr)
        if max_windows is not None:
            starts = spread(starts, max_windows if len(audio) < need else max(2, max_windows))
        # a filled signal repeats every len(audio) samples: in whole frames when that is a multiple of the hop
        period = len(audio) // FRAME_HOP if len(audio) < need and len(audio) % FRAME_HOP == 0 else None
        chosen = [filled[s : s + need] for s in starts]
        raw = self.p835.raw(chosen, starts, period)
        p808 = [float(self.p808.run(None, {self._p808_input: mel_features(w[:-160])[np.newaxis]})[0][0][0])
                for w in chosen]
        fitted = {k: [float(_P835_FIT[k](r[i])) for r in raw] for i, k in enumerate(("sig", "bak", "ovrl"))}

        def mean(values: list[float]) -> float:
            # on the MOS scale: the polynomial fit can dip under 1 on pure noise, P.808 is unbounded
            return float(np.clip(np.mean(values), MOS_MIN, MOS_MAX))

        return DnsmosScores(sig=mean(fitted["sig"]), bak=mean(fitted["bak"]), ovrl=mean(fitted["ovrl"]), p808=mean(p808))
