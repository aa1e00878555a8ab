"""WebRTC VAD over 16 kHz mono audio, and the SNR of each speech region against its noise floor.

`detect` streams the audio (an array or a file path) in blocks, so an hour of audio costs only
one flag and one power value per frame. Speech runs are bridged over gaps shorter than the
hangover, runs shorter than `min_speech_ms` are dropped (reported as `too_short`), the rest are
padded on both sides and merged where they touch.
"""

from __future__ import annotations

import math

import os
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence, Union

import numpy as np

from .. import media
from ..config import VadConfig
from ..records import SpeechRegion

AudioSource = Union[np.ndarray, str, os.PathLike]

EPS_POWER = 1e-10  # -100 dBFS: the floor of any power estimate (digital silence)
SNR_FLOOR_DB = -30.0  # a region no louder than its surroundings reads as this


@dataclass
class VadResult:
    regions: list[SpeechRegion]  # kept, padded and merged, in seconds
    dropped: list[SpeechRegion]  # speech runs shorter than min_speech_ms (unpadded)
    flags: np.ndarray  # bool per frame: WebRTC said speech
    power: np.ndarray  # mean square per frame (full scale = 1.0)
    frame_seconds: float
    duration: float  # seconds of audio seen
    sample_rate: int = 16000
    extra: dict = field(default_factory=dict)

    @property
    def speech_seconds(self) -> float:
        return float(sum(r.end - r.start for r in self.regions))


# ---------------------------------------------------------------- audio access


def _int16_blocks(src: AudioSource, block: int) -> Iterator[np.ndarray]:
    """Yield mono int16 blocks of `block` samples (the last may be shorter) from an array or a file."""
    if isinstance(src, np.ndarray):
        a = src
        if a.ndim == 2:
            a = a.mean(axis=0) if a.shape[0] <= 8 else a.mean(axis=1)
        for i in range(0, len(a), block):
            yield _to_int16(a[i : i + block])
        return
    for data in media.iter_samples(src, block, dtype="int16"):
        if data.shape[1] > 1:
            data = data.astype(np.int32).mean(axis=1).astype(np.int16)
        else:
            data = data[:, 0]
        yield data


def _to_int16(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.int16:
        return a
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int16)
    return (np.clip(a, -1.0, 1.0) * 32767.0).astype(np.int16)


def source_rate(src: AudioSource, default: int = 16000) -> int:
    if isinstance(src, np.ndarray):
        return default
    return media.audio_info(src).sample_rate


def frame_power(src: AudioSource, frame_len: int, block_frames: int = 4096) -> np.ndarray:
    """Mean square per frame of `frame_len` samples (a trailing partial frame is dropped)."""
    out: list[np.ndarray] = []
    carry = np.zeros(0, dtype=np.int16)
    for blk in _int16_blocks(src, frame_len * block_frames):
        if carry.size:
            blk = np.concatenate([carry, blk])
        n = len(blk) // frame_len
        carry = blk[n * frame_len :]
        if n:
            x = blk[: n * frame_len].astype(np.float64).reshape(n, frame_len) / 32768.0
            out.append((x * x).mean(axis=1))
    return np.concatenate(out) if out else np.zeros(0)


# ---------------------------------------------------------------- VAD


def _flags_and_power(src: AudioSource, cfg: VadConfig, sample_rate: int) -> tuple[np.ndarray, np.ndarray, int]:
    import webrtcvad

    if sample_rate not in (8000, 16000, 32000, 48000):
        raise ValueError(f"WebRTC VAD needs 8/16/32/48 kHz audio, got {sample_rate} Hz")
    vad = webrtcvad.Vad(int(cfg.aggressiveness))
    frame_len = sample_rate * int(cfg.frame_ms) // 1000
    flags: list[bool] = []
    powers: list[np.ndarray] = []
    total = 0
    carry = np.zeros(0, dtype=np.int16)
    for blk in _int16_blocks(src, frame_len * 2048):
        total += len(blk)
        if carry.size:
            blk = np.concatenate([carry, blk])
        n = len(blk) // frame_len
        carry = blk[n * frame_len :]
        if not n:
            continue
        frames = np.ascontiguousarray(blk[: n * frame_len]).reshape(n, frame_len)
        x = frames.astype(np.float64) / 32768.0
        p = (x * x).mean(axis=1)
        powers.append(p)
        for k in range(n):
            # digital silence is never speech, whatever the VAD's internal state says
            flags.append(bool(p[k] > EPS_POWER) and vad.is_speech(frames[k].tobytes(), sample_rate))
    power = np.concatenate(powers) if powers else np.zeros(0)
    return np.asarray(flags, dtype=bool), power, total


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs of a bool array."""
    if mask.size == 0:
        return []
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return list(zip(starts.tolist(), ends.tolist()))


def regions_from_flags(
    flags: np.ndarray, cfg: VadConfig, frame_seconds: float, duration: float
) -> tuple[list[SpeechRegion], list[SpeechRegion]]:
    """Hangover, minimum length, padding and merging: (kept regions, dropped short runs)."""
    runs = _runs(flags)
    hang = int(round(cfg.hangover_ms / 1000.0 / frame_seconds))
    bridged: list[list[int]] = []
    for s, e in runs:
        if bridged and s - bridged[-1][1] <= hang:
            bridged[-1][1] = e
        else:
            bridged.append([s, e])
    min_frames = cfg.min_speech_ms / 1000.0 / frame_seconds
    pad = cfg.padding_ms / 1000.0
    # the audio's end on the 10 ms grid every other region time lies on (frames of 10-30 ms,
    # padding in ms): a segment ending at a file's odd end (a clip 4.4333 s long) would be the one
    # length DNSMOS cannot tile by whole frames, at ~1.9x the cost (`audio/p835.py`)
    duration = math.floor(duration * 100 + 1e-6) / 100
    kept: list[SpeechRegion] = []
    dropped: list[SpeechRegion] = []
    for s, e in bridged:
        t0, t1 = s * frame_seconds, min(e * frame_seconds, duration)
        if (e - s) < min_frames - 1e-9:
            dropped.append(SpeechRegion(start=round(t0, 3), end=round(t1, 3)))
            continue
        a, b = max(0.0, t0 - pad), min(duration, t1 + pad)
        a, b = round(a, 3), min(round(b, 3), duration)  # never past the end of the audio
        if kept and a <= kept[-1].end:
            kept[-1].end = max(kept[-1].end, b)
        else:
            kept.append(SpeechRegion(start=a, end=b))
    return kept, dropped


def detect(audio16k: AudioSource, cfg: VadConfig, sample_rate: Optional[int] = None) -> VadResult:
    """Run the VAD over an array (float in [-1, 1] or int16) or an audio file."""
    sr = sample_rate or source_rate(audio16k)
    flags, power, total = _flags_and_power(audio16k, cfg, sr)
    frame_seconds = int(cfg.frame_ms) / 1000.0
    duration = total / float(sr)
    kept, dropped = regions_from_flags(flags, cfg, frame_seconds, duration)
    return VadResult(regions=kept, dropped=dropped, flags=flags, power=power, frame_seconds=frame_seconds, duration=duration, sample_rate=sr)


def speech_regions(audio16k: AudioSource, cfg: VadConfig, sample_rate: Optional[int] = None) -> list[SpeechRegion]:
    """The padded, merged speech regions of 16 kHz mono audio, in seconds."""
    return detect(audio16k, cfg, sample_rate).regions


# ---------------------------------------------------------------- SNR


def snr_from_power(
    power: np.ndarray, regions: Sequence[SpeechRegion], frame_seconds: float, window_s: float = 30.0
) -> list[Optional[float]]:
    """SNR (dB) of each region: its mean power over the mean power of the non-speech frames nearby.

    The noise floor is taken from frames outside every region within `window_s` of the region
    (all non-speech frames when fewer than 10 are near; the region's own 10th percentile frame
    power when the whole signal is speech). SNR = 10 log10((P_region - P_noise) / P_noise).
    """
    n = len(power)
    if n == 0 or not regions:
        return [None] * len(regions)
    speech = np.zeros(n, dtype=bool)
    spans = []
    for r in regions:
        a = max(0, min(n, int(np.floor(r.start / frame_seconds))))
        b = max(a, min(n, int(np.ceil(r.end / frame_seconds))))
        speech[a:b] = True
        spans.append((a, b))
    noise = ~speech
    cs_noise = np.concatenate([[0.0], np.cumsum(np.where(noise, power, 0.0))])
    cn_noise = np.concatenate([[0], np.cumsum(noise.astype(np.int64))])
    cs_all = np.concatenate([[0.0], np.cumsum(power)])
    total_noise_n = int(cn_noise[-1])
    total_noise_p = float(cs_noise[-1]) / total_noise_n if total_noise_n else None
    w = int(round(window_s / frame_seconds))
    out: list[Optional[float]] = []
    for a, b in spans:
        if b <= a:
            out.append(None)
            continue
        p_reg = float(cs_all[b] - cs_all[a]) / (b - a)
        lo, hi = max(0, a - w), min(n, b + w)
        k = int(cn_noise[hi] - cn_noise[lo])
        if k >= 10:
            p_noise = float(cs_noise[hi] - cs_noise[lo]) / k
        elif total_noise_p is not None and total_noise_n >= 10:
            p_noise = total_noise_p
        else:
            p_noise = float(np.percentile(power[a:b], 10))
        p_noise = max(p_noise, EPS_POWER)
        p_sig = max(p_reg - p_noise, EPS_POWER)
        out.append(round(max(SNR_FLOOR_DB, float(10.0 * np.log10(p_sig / p_noise))), 2))
    return out


def snr_db(
    audio: AudioSource,
    regions: Sequence[SpeechRegion],
    sample_rate: Optional[int] = None,
    frame_ms: int = 30,
    window_s: float = 30.0,
) -> list[Optional[float]]:
    """SNR (dB) of each region of `audio` (array or file) against the non-speech floor around it."""
    sr = sample_rate or source_rate(audio)
    frame_len = sr * frame_ms // 1000
    return snr_from_power(frame_power(audio, frame_len), regions, frame_ms / 1000.0, window_s)


def fill_snr(
    regions: list[SpeechRegion],
    analysis: AudioSource,
    mixture: Optional[AudioSource] = None,
    frame_ms: int = 30,
    analysis_power: Optional[np.ndarray] = None,
) -> list[SpeechRegion]:
    """Set snr_db_before (mixture) and snr_db_after (vocals) in place.

    With a `mixture` (separation ran), `analysis` is the vocals: before = mixture, after = vocals.
    Without one, `analysis` is the mixture itself: only snr_db_before is set.
    """
    fs = frame_ms / 1000.0
    if analysis_power is None:
        sr = source_rate(analysis)
        analysis_power = frame_power(analysis, sr * frame_ms // 1000)
    after = snr_from_power(analysis_power, regions, fs)
    if mixture is None:
        for r, s in zip(regions, after):
            r.snr_db_before, r.snr_db_after = s, None
        return regions
    before = snr_db(mixture, regions, frame_ms=frame_ms)
    for r, b, a in zip(regions, before, after):
        r.snr_db_before, r.snr_db_after = b, a
    return regions


__all__ = ["VadResult", "detect", "speech_regions", "snr_db", "snr_from_power", "fill_snr", "frame_power", "regions_from_flags"]
