"""Measured prosody: the pitch trackers (WORLD by default, Praat where installed) on synthetic tones and a real voice, the speaking rate from the
word times, BS.1770 loudness, peak, SNR; syllables in several scripts; bins and the measured caption."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mikupal.audio.pitch import PRAAT_EXTRA, require_tracker
from mikupal.audio.prosody import (
    PitchSettings,
    loudness_lufs,
    measure,
    pitch_track,
    semitones,
    snr_db,
    speech_intervals,
)
from mikupal.audio.syllables import count_syllables, count_text_syllables
from mikupal.config import compose
from mikupal.describe import PITCH_BINS, bins, describe_columns, measured_caption, pitch_bin
from mikupal.errors import UserError
from mikupal.records import Prosody, Word

JFK = Path(__file__).resolve().parents[1] / "data" / "media" / "jfk.flac"


def tone(f0: float, seconds: float = 2.0, sr: int = 44100, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    x = sum((1.0 / k) * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 6))
    return (amp * x / np.max(np.abs(x))).astype(np.float32)


def has_praat() -> bool:
    import importlib.util

    return importlib.util.find_spec("parselmouth") is not None


TRACKERS = ["world", pytest.param("praat", marks=pytest.mark.skipif(not has_praat(), reason='no "mikupal[praat]"'))]


@pytest.mark.parametrize("tracker", TRACKERS)
@pytest.mark.parametrize("f0", [85.0, 120.0, 210.0, 330.0])
def test_pitch_of_a_harmonic_tone(f0, tracker):
    track = pitch_track(tone(f0), 44100, PitchSettings(tracker=tracker))
    assert len(track) > 150 and np.median(track) == pytest.approx(f0, rel=0.002)


def test_world_leaves_out_frames_an_octave_from_the_median():
    # 1.8 s at 200 Hz, then 0.2 s at 90 Hz (a creak, or an octave error): 10% of the frames, in the 5th percentile
    sr = 16000
    t = np.arange(2 * sr) / sr
    f = np.where(t < 1.8, 200.0, 90.0)
    x = 0.1 * sum(np.sin(2 * np.pi * k * np.cumsum(f) / sr) / k for k in range(1, 6))
    world = pitch_track(x, sr)
    assert len(world) > 150 and world.min() == pytest.approx(200.0, rel=0.01)
    if has_praat():  # Praat follows the drop: its 5-95% range spans both tones
        praat = pitch_track(x, sr, PitchSettings(tracker="praat"))
        assert np.percentile(praat, 5) == pytest.approx(90.0, rel=0.01)
    rng = np.random.default_rng(0)
    assert len(pitch_track(0.1 * rng.standard_normal(2 * sr), sr)) < 10  # noise is not voiced


@pytest.mark.skipif(not has_praat(), reason='no "mikupal[praat]"')
def test_world_agrees_with_praat_on_a_real_voice():
    from mikupal.media import decode_audio

    voice = decode_audio(JFK, 0.0, None, 16000)
    world, praat = pitch_track(voice, 16000), pitch_track(voice, 16000, PitchSettings(tracker="praat"))
    assert abs(semitones(float(np.median(world)), float(np.median(praat)))) < 0.5
    wr, pr = (semitones(float(np.percentile(f, 95)), float(np.percentile(f, 5))) for f in (world, praat))
    assert wr == pytest.approx(pr, abs=2.0)  # 5-95% ranges, in semitones


def test_tracker_config_and_a_missing_praat_in_one_line(monkeypatch):
    import importlib.util

    from mikupal.stages.prosody import ProsodyStage

    assert compose([]).prosody.pitch_tracker == "world" and compose([]).prosody.kind == "measured"
    assert compose(["prosody.kind=praat"]).prosody.kind == "measured"  # the name before pitch_tracker
    with pytest.raises(UserError, match="pitch_tracker"):
        compose(["prosody.pitch_tracker=crepe"])
    cfg = compose(["prosody.pitch_tracker=praat"])
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "parselmouth" else real(name, *a))
    with pytest.raises(UserError) as e:
        ProsodyStage.preflight(cfg)
    assert str(e.value) == PRAAT_EXTRA and "mikupal[praat]" in PRAAT_EXTRA and "\n" not in PRAAT_EXTRA
    ProsodyStage.preflight(compose([]))  # world: nothing optional
    require_tracker("world")


def test_pitch_of_a_glide_spans_its_range():
    sr = 16000
    t = np.arange(sr * 2) / sr
    f = 100.0 * 2 ** (t / 2.0)  # one octave up in 2 s
    x = (0.3 * np.sin(2 * np.pi * np.cumsum(f) / sr)).astype(np.float32)
    p = measure(x, sr, [Word(word=" aah", start=0.0, end=2.0, probability=1.0)], 0.0)
    assert p.f0_range_semitones == pytest.approx(12 * 0.9, abs=0.4)  # 5th-95th percentile of a 12 st glide
    assert p.f0_median_hz == pytest.approx(100 * 2 ** 0.5, rel=0.02)


def test_pitch_of_a_real_voice_follows_a_speed_change():
    from mikupal.media import decode_audio

    voice = decode_audio(JFK, 0.0, None, 16000)
    base = pitch_track(voice, 16000)
    assert len(base) > 300 and 120 < np.median(base) < 300  # an adult man declaiming
    # the same recording played 1.5x faster (resampled): every F0 rises by 1.5
    faster = pitch_track(voice, 24000)
    assert np.median(faster) / np.median(base) == pytest.approx(1.5, rel=0.03)
    silence = pitch_track(np.zeros(16000, np.float32), 16000)
    assert len(silence) == 0


def test_rate_counts_syllables_over_the_word_time_union():
    # ten two-syllable words of 0.4 s with 0.3 s pauses: 20 syllables over 4.0 s of speech
    words = [Word(word=" hello", start=10.0 + i * 0.7, end=10.4 + i * 0.7, probability=1.0) for i in range(10)]
    p = measure(tone(150.0, seconds=7.5), 44100, words, start=10.0, language="en")
    assert p.syllables == 20 and p.speech_seconds == pytest.approx(4.0)
    assert p.syllables_per_second == pytest.approx(5.0)
    overlapping = [Word(word=" a", start=0.0, end=1.0, probability=1), Word(word=" b", start=0.5, end=1.5, probability=1)]
    assert speech_intervals(overlapping, 0.0, 10.0) == [(0.0, 1.5)]


def test_loudness_peak_and_snr():
    sr = 48000
    sine = (0.1 * np.sin(2 * np.pi * 997 * np.arange(sr * 3) / sr)).astype(np.float32)
    assert loudness_lufs(sine, sr) == pytest.approx(-23.01, abs=0.05)  # BS.1770: a -20 dBFS 997 Hz sine
    assert loudness_lufs(sine[: sr // 4], sr) is None  # under one 400 ms block
    speech = [(0.5, 1.0), (1.5, 2.0), (2.5, 3.0)]
    gated = sine * np.repeat([0, 1, 0, 1, 0, 1], sr // 2)
    rng = np.random.default_rng(0)
    clean = snr_db(gated + 1e-4 * rng.standard_normal(len(gated)).astype(np.float32), sr, speech)
    noisy = snr_db(gated + 1e-2 * rng.standard_normal(len(gated)).astype(np.float32), sr, speech)
    # signal power 0.005 (a 0.1 sine) over noise powers 1e-8 and 1e-4: 57 dB and 17 dB
    assert clean == pytest.approx(57.0, abs=1.5) and noisy == pytest.approx(17.0, abs=1.5)
    p = measure(gated, sr, [Word(word=" la", start=a, end=b, probability=1) for a, b in speech], 0.0)
    assert p.peak_dbfs == pytest.approx(-20.0, abs=0.01) and p.vocals_snr_db > 90  # digital silence in between


@pytest.mark.parametrize("word, language, n", [
    ("country", "en", 2), ("people", "en", 2), ("make", "en", 1), ("table", "en", 2), ("canción", "es", 2),
    ("здравствуйте", "ru", 3), ("Ελλάδα", "el", 3), ("東京", "ja", 2), ("こんにちは", "ja", 4), ("안녕하세요", "ko", 5),
    ("नमस्ते", "hi", 3), ("مرحبا", "ar", 3), ("שלום", "he", 2), (" Hello,", "en", 2), ("...", "en", 0),
])
def test_syllables_across_scripts(word, language, n):
    assert count_syllables(word, language) == n


def test_syllables_of_a_known_sentence():
    words = "And so my fellow Americans ask not what your country can do for you".split()
    assert count_text_syllables(words, "en") == 19


def test_bins_relative_to_gender_and_the_measured_caption():
    assert semitones(200.0) == pytest.approx(12.0)
    assert pitch_bin(110.0, "male") == "slightly low-pitch" and pitch_bin(110.0, "female") == PITCH_BINS[0]
    assert pitch_bin(300.0, "female") == PITCH_BINS[-1] and pitch_bin(None, "male") is None
    p = Prosody(f0_mean_hz=215.0, f0_std_semitones=3.8, syllables_per_second=5.8, loudness_lufs=-24.0, vocals_snr_db=50.0)
    b = bins(p, "female")
    assert (b.pitch, b.pitch_variation, b.speaking_rate, b.loudness, b.noise) == (
        "slightly high-pitch", "expressive and animated", "slightly fast", "moderate loudness", "very clean")
    assert measured_caption(b, "female") == ("A woman speaks slightly fast with a slightly high-pitch voice and an "
                                             "expressive and animated delivery. The recording is of moderate loudness "
                                             "and very clean.")
    assert measured_caption(bins(None)) is None
    row = {**p.model_dump(), "perceived_gender": "male", "caption": None}
    cols = describe_columns(row)
    assert cols["pitch_bin"] == "very high-pitch" and cols["caption_source"] == "measured"
    assert cols["caption"].startswith("A man speaks slightly fast")
    assert "caption" not in describe_columns({**row, "caption": "Said by the model.", "caption_source": "labeler"})


@pytest.mark.parametrize("tracker", TRACKERS)
def test_pitch_settings_bound_the_search(tracker):
    low = tone(70.0)
    settings = PitchSettings(tracker=tracker)
    assert len(pitch_track(low, 44100, PitchSettings(floor_hz=90.0, tracker=tracker))) < len(pitch_track(low, 44100, settings))
