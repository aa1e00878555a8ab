"""F0 of speech, every 10 ms: the pitch trackers the prosody descriptors can use (`prosody.pitch_tracker`).

- **world** (default; `pyworld-prebuilt`, MIT, as WORLD is): DIO (`speed=2`, `allowed_range=0.2`) and
  StoneMask refinement, then a clean-up of DIO's weak voicing decision. DIO alone calls noise and
  breaths voiced and takes octave errors and creaks into the tails (vr_face5: a 5-95% range 12
  semitones wider than Praat's). Three checks keep a frame:
  1. *periodic*: the 30 ms around it correlates with itself one period later (normalized, r >= 0.4;
     Praat's voicing threshold is 0.45 on its own measure), so noise with a guessed F0 goes;
  2. *within an octave of the segment's median F0*, so octave jumps and creaks stay out of the range;
  3. *in a voiced run of at least 3 frames* (30 ms), so isolated clicks go.
  On the shared clips its median is within 0.2 semitones of Praat's and its 5-95% range within 1.1,
  save vr_face4, where Praat follows a creak an octave below the voice (10% of its frames at 80-96 Hz
  against a 204 Hz median) that this tracker leaves out; exact on harmonic tones 85-330 Hz (within
  0.03 Hz); 0.0066 CPU s per media second against Praat's 0.0045 in the same run
  (`benchmarks/prosody.md`), DIO alone 0.0066 at full rate.
- **praat** (optional, `pip install "mikupal[praat]"`): Praat's autocorrelation tracker
  (`praat-parselmouth`, `Sound.to_pitch_ac`). praat-parselmouth is GPL-3.0, as Praat is, so the
  default install leaves it out.

Both run on the audio resampled to 16 kHz: speech F0 and the harmonics that carry it lie far below 8 kHz.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import UserError

PITCH_RATE = 16000  # the trackers' input rate
TRACKERS = ("world", "praat")
PRAAT_EXTRA = 'prosody.pitch_tracker=praat needs praat-parselmouth (GPL-3.0): pip install "mikupal[praat]"'

DIO_SPEED = 2  # DIO decimates 16 kHz to 8 kHz: 2.3x cheaper, the same figures on the shared clips
DIO_ALLOWED_RANGE = 0.2  # DIO's own voicing tolerance (0.1 by default): looser, the checks below decide
PERIODIC_WINDOW_S = 0.03
MIN_PERIODICITY = 0.4
MAX_OCTAVES_FROM_MEDIAN = 1.0
MIN_VOICED_RUN = 3


@dataclass(frozen=True)
class PitchSettings:
    floor_hz: float = 60.0
    ceiling_hz: float = 500.0
    step_s: float = 0.01
    tracker: Literal["world", "praat"] = "world"


def require_tracker(tracker: str) -> None:
    """The tracker's library is installed, else a one-line UserError naming what to install."""
    import importlib.util

    if tracker not in TRACKERS:
        raise UserError(f"prosody.pitch_tracker={tracker}: not one of {', '.join(TRACKERS)}")
    if tracker == "praat" and importlib.util.find_spec("parselmouth") is None:
        raise UserError(PRAAT_EXTRA)


def pitch_track(audio: np.ndarray, sample_rate: int, settings: PitchSettings = PitchSettings()) -> np.ndarray:
    """F0 in Hz of every frame the tracker finds voiced (unvoiced frames left out)."""
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    if sample_rate != PITCH_RATE:
        from scipy.signal import resample_poly

        g = np.gcd(int(sample_rate), PITCH_RATE)
        x = resample_poly(x, PITCH_RATE // g, int(sample_rate) // g)
    if len(x) < 3.0 / settings.floor_hz * PITCH_RATE:  # three periods of the lowest pitch, at least
        return np.zeros(0)
    f0 = _praat(x, settings) if settings.tracker == "praat" else _world(x, settings)
    return f0[f0 > 0]


def _praat(x: np.ndarray, settings: PitchSettings) -> np.ndarray:
    try:
        import parselmouth
    except ImportError:
        raise UserError(PRAAT_EXTRA) from None
    sound = parselmouth.Sound(x, sampling_frequency=PITCH_RATE)
    pitch = sound.to_pitch_ac(time_step=settings.step_s, pitch_floor=settings.floor_hz,
                              pitch_ceiling=settings.ceiling_hz)
    return pitch.selected_array["frequency"]


def _world(x: np.ndarray, settings: PitchSettings) -> np.ndarray:
    import pyworld

    f0, times = pyworld.dio(x, PITCH_RATE, f0_floor=settings.floor_hz, f0_ceil=settings.ceiling_hz,
                            frame_period=settings.step_s * 1000.0, speed=DIO_SPEED, allowed_range=DIO_ALLOWED_RANGE)
    f0 = pyworld.stonemask(x, f0, times, PITCH_RATE)
    f0 = np.where(periodicity(x, f0, times) >= MIN_PERIODICITY, f0, 0.0)
    voiced = f0 > 0
    if voiced.any():
        far = np.abs(np.log2(np.where(voiced, f0, 1.0) / np.median(f0[voiced]))) > MAX_OCTAVES_FROM_MEDIAN
        f0 = np.where(voiced & ~far, f0, 0.0)
    return np.where(long_runs(f0 > 0, MIN_VOICED_RUN), f0, 0.0)


def periodicity(x: np.ndarray, f0: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Per frame, the normalized correlation of the 30 ms around it with the 30 ms one period (1 / f0)
    later: near 1 for a voice, low for noise; 0 where f0 is 0."""
    out = np.zeros(len(f0))
    frames = np.nonzero(f0 > 0)[0]
    if not len(frames):
        return out
    win = int(PERIODIC_WINDOW_S * PITCH_RATE)
    lag = np.rint(PITCH_RATE / f0[frames]).astype(np.int64)
    pad = win + int(lag.max())
    padded = np.concatenate([np.zeros(pad), x, np.zeros(pad)])
    start = np.rint(times[frames] * PITCH_RATE).astype(np.int64) - (win + lag) // 2 + pad
    idx = start[:, None] + np.arange(win)[None, :]
    a, b = padded[idx], padded[idx + lag[:, None]]
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denom = np.sqrt(np.sum(a * a, axis=1) * np.sum(b * b, axis=1))
    out[frames] = np.where(denom > 0, np.sum(a * b, axis=1) / np.maximum(denom, 1e-30), 0.0)
    return out


def long_runs(mask: np.ndarray, min_run: int) -> np.ndarray:
    """`mask` with its runs of True shorter than `min_run` set False."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
    out = np.zeros(len(mask), dtype=bool)
    for a, b in zip(starts, ends):
        if b - a >= min_run:
            out[a:b] = True
    return out
