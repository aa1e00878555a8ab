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
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import UserError
from ..models_dir import DNSMOS_P808, DNSMOS_P835, DNSMOS_SOURCE, dnsmos_dir

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


def mel_features(window: np.ndarray) -> np.ndarray:
    """The P.808 model's input: [frames, 120] log-mel, scaled as the reference scales it."""
    import librosa

    mel = librosa.feature.melspectrogram(y=window, sr=SAMPLE_RATE, n_fft=321, hop_length=160, n_mels=120)
    return ((librosa.power_to_db(mel, ref=np.max) + 40) / 40).T


def windows(audio: np.ndarray, sr: int = SAMPLE_RATE) -> list[np.ndarray]:
    """The reference's 9.01 s windows at a 1 s hop, after repeating a short signal to fill one."""
    need = int(WINDOW_SECONDS * sr)
    if len(audio) == 0:
        raise ValueError("empty signal")
    while len(audio) < need:
        audio = np.concatenate([audio, audio])
    hop = int(HOP_SECONDS * sr)
    count = int(np.floor(len(audio) / sr) - WINDOW_SECONDS) + 1
    out = [audio[i * hop : i * hop + need] for i in range(count)]
    return [w for w in out if len(w) == need]


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
    """Both ONNX sessions, loaded once; `score` is thread-compatible (ONNX Runtime sessions are)."""

    def __init__(self, model_dir: Optional[str | os.PathLike] = None, threads: Optional[int] = None):
        import onnxruntime as ort

        d = find_models(model_dir)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        self.p835 = ort.InferenceSession(str(d / DNSMOS_P835), opts, providers=providers)
        self.p808 = ort.InferenceSession(str(d / DNSMOS_P808), opts, providers=providers)
        self._p835_input = self.p835.get_inputs()[0].name
        self._p808_input = self.p808.get_inputs()[0].name

    def score_window(self, window: np.ndarray) -> DnsmosScores:
        w = np.asarray(window, dtype=np.float32)
        raw = self.p835.run(None, {self._p835_input: w[np.newaxis, :]})[0][0]
        mel = mel_features(w[:-160]).astype(np.float32)[np.newaxis]
        p808 = float(self.p808.run(None, {self._p808_input: mel})[0][0][0])
        sig, bak, ovrl = (float(_P835_FIT[k](v)) for k, v in zip(("sig", "bak", "ovrl"), raw))
        return DnsmosScores(sig=sig, bak=bak, ovrl=ovrl, p808=p808)

    def score(self, audio: np.ndarray, sr: int = SAMPLE_RATE, max_windows: Optional[int] = None) -> DnsmosScores:
        """Mean scores over the reference's windows of a mono float signal at 16 kHz (clipped to
        [-1, 1]). With `max_windows`, a signal shorter than one window (so repeated to fill it)
        is scored on that many of its windows, evenly spaced (`spread`); a longer one on at least
        its first and last (9.01 s each at a 1 s hop: together they cover every sample of it)."""
        if sr != SAMPLE_RATE:
            raise ValueError(f"DNSMOS needs {SAMPLE_RATE} Hz audio, got {sr}")
        audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
        chosen = windows(audio, sr)
        if max_windows is not None:
            chosen = spread(chosen, max_windows if len(audio) < int(WINDOW_SECONDS * sr) else max(2, max_windows))
        per = [self.score_window(w) for w in chosen]

        def mean(name: str) -> float:
            # on the MOS scale: the polynomial fit can dip under 1 on pure noise, P.808 is unbounded
            return float(np.clip(np.mean([getattr(s, name) for s in per]), MOS_MIN, MOS_MAX))

        return DnsmosScores(sig=mean("sig"), bak=mean("bak"), ovrl=mean("ovrl"), p808=mean("p808"))
