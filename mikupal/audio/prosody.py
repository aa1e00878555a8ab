"""Measured delivery of one kept segment, from its dataset audio (the separated vocals), with no
model: pitch, speaking rate, loudness, peak level and an SNR estimate.

- **F0** (`pitch_track`): Praat's autocorrelation pitch tracker (`praat-parselmouth`,
  `Sound.to_pitch_ac`, 10 ms steps, 60-500 Hz by default) on the audio resampled to 16 kHz. Chosen
  over WORLD (`pyworld` DIO + StoneMask, Harvest) and librosa (YIN, pYIN) on the shared clips and
  synthetic tones (`benchmarks/prosody.md`): Praat and WORLD are exact on harmonic tones (85-330 Hz
  within 0.03 Hz), Praat costs 0.005 CPU s per media second (DIO 0.007, Harvest 0.18, pYIN 0.09)
  and its voicing decision keeps octave jumps out of the ranges (vr_face3: a 98 Hz 5-95% range
  where DIO finds 176 and Harvest 211); `pyworld` 0.3.5 also needs setuptools' `pkg_resources` to
  import. praat-parselmouth is GPL-3.0, as Praat is. Median and mean over voiced
  frames; the range is the 5th to 95th percentile (octave errors and creaks at the tails stay
  out). Semitones are re 100 Hz (Praat's convention): 12 log2(f / 100).
- **Speaking rate**: syllables (`syllables.py`, any script) per second of speech, where the speech
  is the union of the word intervals, so pauses between words do not count (articulation rate).
- **Loudness**: integrated loudness, ITU-R BS.1770-4 (`pyloudnorm`, gated, LUFS) at the dataset
  rate; the peak is the sample peak in dBFS.
- **SNR**: the mean power of the 20 ms frames inside words over the mean power of the segment's
  quietest tenth of frames (its noise floor), in dB, held to [-10, 100]. Separated vocals with
  silent pauses score high (60+ dB); vocals with music or crowd noise left in score low.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..records import Prosody, Word
from .syllables import count_syllables

PITCH_RATE = 16000  # the pitch tracker's input rate: speech F0 and its harmonics are far below 8 kHz
FRAME_S = 0.02  # SNR frames
SNR_MIN_DB, SNR_MAX_DB = -10.0, 100.0
SEMITONE_REF_HZ = 100.0
MIN_VOICED_FRAMES = 5  # fewer voiced frames: no F0 figures (a whisper, a breath)


@dataclass(frozen=True)
class PitchSettings:
    floor_hz: float = 60.0
    ceiling_hz: float = 500.0
    step_s: float = 0.01


def semitones(hz: float, ref: float = SEMITONE_REF_HZ) -> float:
    return float(12.0 * np.log2(hz / ref))


def pitch_track(audio: np.ndarray, sample_rate: int, settings: PitchSettings = PitchSettings()) -> np.ndarray:
    """F0 in Hz of every 10 ms frame Praat finds voiced (unvoiced frames left out)."""
    import parselmouth

    x = np.asarray(audio, dtype=np.float64)
    if sample_rate != PITCH_RATE:
        from scipy.signal import resample_poly

        g = np.gcd(int(sample_rate), PITCH_RATE)
        x = resample_poly(x, PITCH_RATE // g, int(sample_rate) // g)
    min_len = 3.0 / settings.floor_hz  # Praat needs three periods of the lowest pitch
    if len(x) < min_len * PITCH_RATE:
        return np.zeros(0)
    sound = parselmouth.Sound(x, sampling_frequency=PITCH_RATE)
    pitch = sound.to_pitch_ac(time_step=settings.step_s, pitch_floor=settings.floor_hz,
                              pitch_ceiling=settings.ceiling_hz)
    f0 = pitch.selected_array["frequency"]
    return f0[f0 > 0]


def speech_intervals(words: Sequence[Word], offset: float, duration: float) -> list[tuple[float, float]]:
    """The union of the word intervals, in seconds from `offset` (the audio's start), inside the audio."""
    spans = sorted((max(0.0, w.start - offset), min(duration, w.end - offset)) for w in words)
    out: list[tuple[float, float]] = []
    for a, b in spans:
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def loudness_lufs(audio: np.ndarray, sample_rate: int) -> Optional[float]:
    """Integrated loudness (BS.1770-4, gated); None for audio under one 400 ms block or all silent."""
    import pyloudnorm

    x = np.asarray(audio, dtype=np.float64)
    if len(x) < int(0.4 * sample_rate):
        return None
    value = pyloudnorm.Meter(sample_rate).integrated_loudness(x)
    return round(float(value), 2) if np.isfinite(value) else None


def peak_dbfs(audio: np.ndarray) -> Optional[float]:
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    return round(20.0 * np.log10(peak), 2) if peak > 0 else None


def snr_db(audio: np.ndarray, sample_rate: int, speech: Sequence[tuple[float, float]]) -> Optional[float]:
    """Word frames' mean power over the quietest tenth of the frames (see the module's docstring)."""
    n = int(round(FRAME_S * sample_rate))
    frames = len(audio) // n
    if frames < 10:
        return None
    power = np.mean(np.square(np.asarray(audio[: frames * n], dtype=np.float64).reshape(frames, n)), axis=1)
    mask = np.zeros(frames, dtype=bool)
    for a, b in speech:
        mask[int(a / FRAME_S): int(np.ceil(b / FRAME_S))] = True
    if not mask.any():
        return None
    quiet = np.sort(power)[: max(1, frames // 10)]
    noise = max(float(np.mean(quiet)), 1e-12)
    signal = max(float(np.mean(power[mask])) - noise, 1e-12)
    return round(float(np.clip(10.0 * np.log10(signal / noise), SNR_MIN_DB, SNR_MAX_DB)), 2)


def measure(audio: np.ndarray, sample_rate: int, words: Sequence[Word], start: float, language: str = "",
            pitch: PitchSettings = PitchSettings()) -> Prosody:
    """Every descriptor of one segment: `audio` is its dataset audio (mono), which begins at
    `start` seconds of the source (the word times' clock)."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    duration = len(audio) / float(sample_rate)
    speech = speech_intervals(words, start, duration)
    speech_s = sum(b - a for a, b in speech)
    syllables = sum(count_syllables(w.word, language) for w in words)
    f0 = pitch_track(audio, sample_rate, pitch)
    frames = max(1, int(duration / pitch.step_s))
    out = Prosody(voiced_fraction=round(min(1.0, len(f0) / frames), 4), syllables=syllables,
                  speech_seconds=round(speech_s, 3),
                  syllables_per_second=round(syllables / speech_s, 3) if speech_s > 0 and syllables else None,
                  loudness_lufs=loudness_lufs(audio, sample_rate), peak_dbfs=peak_dbfs(audio),
                  vocals_snr_db=snr_db(audio, sample_rate, speech))
    if len(f0) >= MIN_VOICED_FRAMES:
        lo, med, hi = (float(v) for v in np.percentile(f0, [5, 50, 95]))
        out.f0_median_hz, out.f0_median_semitones = round(med, 2), round(semitones(med), 3)
        out.f0_range_hz, out.f0_range_semitones = round(hi - lo, 2), round(semitones(hi, lo), 3)
        out.f0_mean_hz, out.f0_std_hz = round(float(np.mean(f0)), 2), round(float(np.std(f0)), 2)
        out.f0_std_semitones = round(float(np.std(12.0 * np.log2(f0 / SEMITONE_REF_HZ))), 3)
    return out
