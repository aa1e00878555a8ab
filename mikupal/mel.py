"""Mel power spectrograms as librosa computes them, in numpy: the DNSMOS P.808 front end and the
GE2E voice encoder's both need librosa's numbers, and importing librosa for them costs a worker
~200 MB (it brings numba and llvmlite). tests/unit/test_mel.py holds these to librosa's output."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=None)
def mel_filters(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """[n_mels, 1 + n_fft // 2] triangular filters on the Slaney mel scale, Slaney-normalized: what
    `librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)` gives (its defaults)."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0  # linear below 1 kHz, logarithmic above
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0

    def hz_to_mel(f: float) -> float:
        return min_log_mel + np.log(f / min_log_hz) / logstep if f >= min_log_hz else f / f_sp

    mels = np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2.0), n_mels + 2)
    mel_f = np.where(mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), f_sp * mels)
    ramps = np.subtract.outer(mel_f, np.fft.rfftfreq(n_fft, 1.0 / sr))
    fdiff = np.diff(mel_f)[:, np.newaxis]
    tri = np.maximum(0, np.minimum(-ramps[:-2] / fdiff[:-1], ramps[2:] / fdiff[1:]))
    return (tri * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, np.newaxis]).astype(np.float32)


def power_mel(audio: np.ndarray, sr: int, n_fft: int, hop: int, n_mels: int) -> np.ndarray:
    """[frames, n_mels] mel power: `librosa.feature.melspectrogram(y=audio, sr=sr, n_fft=n_fft,
    hop_length=hop, n_mels=n_mels).T` (a centred STFT with zero padding and a periodic Hann window,
    power 2, the filters above)."""
    y = np.pad(np.asarray(audio, dtype=np.float32).reshape(-1), n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop]
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    spec = np.fft.rfft(frames * hann, axis=1).astype(np.complex64)
    return (spec.real**2 + spec.imag**2) @ mel_filters(sr, n_fft, n_mels).T
