"""WebRTC VAD regions (hangover, minimum length, padding, merging) and region SNR."""

from __future__ import annotations

import numpy as np
import pytest

from audio_fixtures import media_file, write_wav
from mikupal import media
from mikupal.audio import vad
from mikupal.config import VadConfig
from mikupal.records import SpeechRegion

FS = 0.03  # 30 ms frames


def flags(pattern: str) -> np.ndarray:
    """'1' = a speech frame, '0' = not."""
    return np.array([c == "1" for c in pattern], dtype=bool)


def cfg(**kw) -> VadConfig:
    base = dict(aggressiveness=2, frame_ms=30, padding_ms=0, hangover_ms=0, min_speech_ms=0)
    base.update(kw)
    return VadConfig(**base)


def test_runs_become_regions_in_seconds():
    kept, dropped = vad.regions_from_flags(flags("0011100011"), cfg(), FS, 10 * FS)
    assert [(r.start, r.end) for r in kept] == [(0.06, 0.15), (0.24, 0.3)]
    assert dropped == []


def test_a_region_at_an_odd_file_end_ends_on_the_10_ms_grid():
    """A clip 0.2833 s long (8.5 frames at 30 fps): its last region ends at 0.28, not at 0.2833, so
    every region time, and every segment length cut from them, is a whole number of 10 ms frames."""
    kept, _ = vad.regions_from_flags(flags("0011111111"), cfg(padding_ms=200), FS, 0.2833)
    assert [(r.start, r.end) for r in kept] == [(0.0, 0.28)]
    assert all(round(t * 100, 6) == round(t * 100) for r in kept for t in (r.start, r.end))


def test_hangover_bridges_short_gaps_only():
    f = flags("1110011" + "0" * 20 + "111")
    kept, _ = vad.regions_from_flags(f, cfg(hangover_ms=60), FS, round(len(f) * FS, 6))
    assert [(r.start, r.end) for r in kept] == [(0.0, 0.21), (0.81, 0.9)]  # 2-frame gap bridged, 20-frame not


def test_short_bursts_are_dropped_and_reported():
    f = flags("0100000" + "1" * 10 + "000")
    kept, dropped = vad.regions_from_flags(f, cfg(min_speech_ms=90), FS, round(len(f) * FS, 6))
    assert [(r.start, r.end) for r in kept] == [(0.21, 0.51)]
    assert [(r.start, r.end) for r in dropped] == [(0.03, 0.06)]


def test_padding_is_clamped_and_overlaps_merge():
    f = flags("11" + "0" * 8 + "11" + "0" * 30 + "11")
    dur = round(len(f) * FS, 6)
    kept, _ = vad.regions_from_flags(f, cfg(padding_ms=150), FS, dur)
    assert kept[0].start == 0.0  # clamped at 0
    assert [(r.start, r.end) for r in kept] == [(0.0, 0.51), (1.11, 1.32)]  # first two merged by padding, last clamped at the end
    assert kept[-1].end <= dur


def test_silence_has_no_speech():
    res = vad.detect(np.zeros(16000 * 3, np.float32), VadConfig(), 16000)
    assert res.regions == [] and res.speech_seconds == 0.0 and res.duration == pytest.approx(3.0)


def test_real_speech_regions_are_sorted_disjoint_and_inside_the_audio():
    audio = media.decode_audio(media_file("silero_test.wav"))
    res = vad.detect(audio, VadConfig(), 16000)
    assert len(res.regions) >= 3
    assert 30.0 < res.speech_seconds <= 60.0
    prev_end = 0.0
    for r in res.regions:
        assert prev_end <= r.start < r.end <= 60.0
        prev_end = r.end
    assert vad.speech_regions(audio, VadConfig()) == res.regions


def test_file_and_array_give_the_same_regions(tmp_path):
    audio = media.decode_audio(media_file("jfk.flac"))
    p = write_wav(tmp_path / "jfk16k.wav", audio, 16000)
    a = vad.detect(audio, VadConfig(), 16000)
    b = vad.detect(str(p), VadConfig())
    assert [(r.start, r.end) for r in a.regions] == [(r.start, r.end) for r in b.regions]
    assert b.sample_rate == 16000 and b.duration == pytest.approx(11.0)


def test_snr_measures_region_power_over_the_noise_floor():
    rng = np.random.default_rng(1)
    sr = 16000
    noise = rng.standard_normal(sr * 10) * 0.01  # -40 dBFS floor
    signal = np.zeros_like(noise)
    signal[sr * 4 : sr * 6] = np.sin(2 * np.pi * 220 * np.arange(sr * 2) / sr) * 0.1 * np.sqrt(2)  # 0.01 power: +20 dB
    region = [SpeechRegion(start=4.0, end=6.0)]
    snr = vad.snr_db((noise + signal).astype(np.float32), region, sr)[0]
    assert snr == pytest.approx(20.0, abs=1.0)
    # the same speech with less noise (what separation should do) reads higher
    cleaner = vad.snr_db((noise * 0.1 + signal).astype(np.float32), region, sr)[0]
    assert cleaner == pytest.approx(40.0, abs=1.5)


def test_fill_snr_sets_before_and_after_only_when_separation_ran(tmp_path):
    rng = np.random.default_rng(2)
    sr = 16000
    speech = np.zeros(sr * 6)
    speech[sr * 2 : sr * 4] = rng.standard_normal(sr * 2) * 0.1
    mixture = (speech + rng.standard_normal(sr * 6) * 0.02).astype(np.float32)
    vocals = (speech + rng.standard_normal(sr * 6) * 0.002).astype(np.float32)
    mix_path = write_wav(tmp_path / "mixture16k.wav", mixture, sr)
    regions = [SpeechRegion(start=2.0, end=4.0)]
    vad.fill_snr(regions, vocals, str(mix_path))
    r = regions[0]
    assert r.snr_db_before is not None and r.snr_db_after is not None
    assert r.snr_db_after > r.snr_db_before + 10
    alone = [SpeechRegion(start=2.0, end=4.0)]
    vad.fill_snr(alone, mixture)
    assert alone[0].snr_db_after is None and alone[0].snr_db_before == pytest.approx(r.snr_db_before, abs=0.5)


def test_snr_without_any_non_speech_uses_a_low_percentile_floor():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(16000 * 2) * 0.05).astype(np.float32)
    x[8000:16000] *= 10
    snr = vad.snr_db(x, [SpeechRegion(start=0.0, end=2.0)], 16000)[0]
    assert snr is not None and snr > 5.0
