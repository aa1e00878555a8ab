"""Measured delivery of one kept segment, from its dataset audio (the separated vocals), with no
model: pitch, speaking rate, loudness, peak level and an SNR estimate.

- **F0** (`pitch_track`, `pitch.py`): 10 ms frames on the audio resampled to 16 kHz, 60-500 Hz by
  default, by the tracker `prosody.pitch_tracker` names. The default, `world` (WORLD's DIO + StoneMask,
  MIT, with a periodicity, octave and run-length clean-up), was chosen over Praat's autocorrelation
  tracker (GPL-3.0, now the optional `praat`), Harvest and librosa's YIN / pYIN on the shared clips
  and synthetic tones (`benchmarks/prosody.md`): exact on harmonic tones 85-330 Hz, medians within 0.2
  semitones of Praat's and 5-95% ranges within 1.1 (save one creaky clip, where Praat's range takes in
  the creak an octave below), near Praat's cost (0.0066 CPU s per media second, Praat 0.0045, Harvest 0.19, pYIN 0.1);
  DIO without the clean-up puts noise and octave errors in the ranges (12 semitones wider on vr_face5).
  Median and mean over voiced frames; the range is the 5th to 95th percentile (octave errors and
  creaks at the tails stay out). Semitones are re 100 Hz (Praat's convention): 12 log2(f / 100).
- **Speaking rate**: syllables (`syllables.py`, any script) per second of speech, where the speech
  is the union of the word intervals, so pauses between words do not count (articulation rate).
- **Loudness**: integrated loudness, ITU-R BS.1770-4 (`pyloudnorm`, gated, LUFS) at the dataset
  rate; the peak is the sample peak in dBFS.
- **SNR**: the mean power of the 20 ms frames inside words over the mean power of the segment's
  quietest tenth of frames (its noise floor), in dB, held to [-10, 100]. Separated vocals with
  silent pauses score high (60+ dB); vocals with music or crowd noise left in score low.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..records import Prosody, Word
from .pitch import PitchSettings, pitch_track
from .syllables import count_syllables

__all__ = ["PitchSettings", "pitch_track", "measure", "semitones", "loudness_lufs", "peak_dbfs", "snr_db",
           "speech_intervals"]

FRAME_S = 0.02  # SNR frames
SNR_MIN_DB, SNR_MAX_DB = -10.0, 100.0
SEMITONE_REF_HZ = 100.0
MIN_VOICED_FRAMES = 5  # fewer voiced frames: no F0 figures (a whisper, a breath)


def semitones(hz: float, ref: float = SEMITONE_REF_HZ) -> float:
    return float(12.0 * np.log2(hz / ref))


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
