"""Every second of detected speech is accounted for, on speech mixed with music and singing.

The input is built here, so its ground truth is exact: real speech (jfk.flac, silero_test.wav)
over a synthetic music bed (chords of harmonic tones), a hummed/sung passage (a voice-like
harmonic source with vibrato, formants and syllable envelopes, no words) and music alone, muxed
under a real talking face. The report's funnel must reconcile: VAD seconds == kept seconds +
reject spans (any stage after VAD, with a reason), within 2 %."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import lfilter, resample_poly

from mikupal.config import compose
from mikupal.engine.commit import OutputDir
from mikupal.engine.run import run
from tests.reliability.inputs import ffmpeg

SR = 16000


def _chords(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A music bed: a chord every 1.5 s, each note with 6 decaying harmonics."""
    t = np.arange(int(seconds * SR)) / SR
    out = np.zeros_like(t)
    roots = [220.0, 174.6, 196.0, 261.6]
    for k, start in enumerate(np.arange(0.0, seconds, 1.5)):
        seg = (t >= start) & (t < start + 1.5)
        tt = t[seg] - start
        for ratio in (1.0, 1.26, 1.5):  # a major triad
            f0 = roots[k % 4] * ratio
            for h in range(1, 7):
                out[seg] += np.sin(2 * np.pi * f0 * h * tt + rng.uniform(0, 6.28)) * np.exp(-1.2 * tt) / h
    return out / np.abs(out).max()


def _hum(seconds: float) -> np.ndarray:
    """A sung vowel line: glottal-like harmonics (f0 with vibrato, stepping a melody) through two
    formant resonators, cut into 0.6 s sung syllables."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    melody = np.array([196.0, 220.0, 247.0, 262.0, 247.0, 220.0])
    f0 = melody[(t / 0.6).astype(int) % len(melody)] * (1 + 0.02 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    src = sum(np.sin(h * phase) / h for h in range(1, 25))
    y = src
    for fc, bw in ((700.0, 110.0), (1200.0, 120.0)):  # an /a/-like vowel
        r = np.exp(-np.pi * bw / SR)
        y = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * fc / SR), r * r], y)
    env = np.clip(np.sin(np.pi * (t % 0.6) / 0.6) * 1.6, 0, 1)
    y = y * env
    return y / np.abs(y).max()


def _load16(path: Path) -> np.ndarray:
    x, sr = sf.read(str(path), dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    return resample_poly(x, SR, sr) if sr != SR else x


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, media) -> dict:
    d = tmp_path_factory.mktemp("mixed")
    rng = np.random.default_rng(7)
    jfk = _load16(media / "jfk.flac")
    if (Path(str(media)) / "silero_test.wav").is_file():
        silero = _load16(media / "silero_test.wav")[: 18 * SR]
    else:  # a fresh clone: the example clip's own speech, three times
        from mikupal import media as M

        silero = np.tile(M.decode_audio(media / "vr_face1.mp4").astype(np.float64), 3)
    parts, truth, pos = [], [], 0.0

    def add(kind: str, x: np.ndarray) -> None:
        nonlocal pos
        parts.append(x)
        truth.append((kind, pos, pos + len(x) / SR))
        pos += len(x) / SR

    gap = np.zeros(int(0.8 * SR))
    add("speech+music", 0.7 * jfk / np.abs(jfk).max() + 0.12 * _chords(len(jfk) / SR, rng))
    add("silence", gap)
    add("singing+music", 0.5 * _hum(7.0) + 0.15 * _chords(7.0, rng))
    add("silence", gap)
    add("speech", 0.7 * silero / np.abs(silero).max())
    add("music", 0.5 * _chords(5.0, rng))
    audio = np.concatenate(parts).astype(np.float32)
    wav = d / "mix.wav"
    sf.write(str(wav), audio, SR)
    video = d / "in" / "mixed.mp4"
    video.parent.mkdir()
    ffmpeg("-stream_loop", "-1", "-i", str(media / "vr_face1.mp4"), "-i", str(wav), "-map", "0:v", "-map", "1:a",
           "-t", f"{pos:.3f}", "-vf", "scale=350:350,fps=25", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "28",
           "-c:a", "aac", "-b:a", "96k", str(video))
    return {"input": video, "truth": truth, "duration": pos}


@pytest.fixture(scope="module")
def mixed_run(mixed, tmp_path_factory, models_dir):
    out = tmp_path_factory.mktemp("mixed_out")
    report = run(compose([f"input={mixed['input']}", f"output={out}", f"models_dir={models_dir}", "profile=cpu",
                          "separation=none", "asr.model=tiny.en", "offline=true", "engine.progress=false",
                          "labeler=none", "engine=sequential"]))
    return out, report


def test_vad_seconds_reconcile_with_kept_and_rejected_spans(mixed_run):
    out, report = mixed_run
    acc = report["accounting"]
    print(json.dumps(acc, indent=1))
    assert acc["vad_seconds"] > 20, "VAD must find the speech"
    assert acc["kept_seconds"] > 2, "some of the clean speech must be kept"
    assert acc["accounted_seconds"] == pytest.approx(acc["vad_seconds"], rel=0.02), acc
    assert acc["reconciles"] and acc["unaccounted_seconds"] <= 0.02 * acc["vad_seconds"]
    assert acc["rejected_seconds"] > 0 and acc["rejected_seconds_by_reason"]
    assert json.loads((out / "report.json").read_text())["accounting"] == acc
    assert "Speech seconds accounted for" in (out / "report.html").read_text()


def test_the_sung_and_music_stretches_end_in_reject_spans_with_reasons(mixed_run, mixed):
    """Whatever VAD took for speech in the singing and music-only parts (ground truth: where we put
    them) is not silently gone: it lies in reject spans, each with a stage and a reason."""
    out, _ = mixed_run
    od = OutputDir(out)
    rej = [r for r in od.read_rejects().to_pylist() if r["start"] is not None and r["stage"] != "vad"]
    kept = [(r["start"], r["end"]) for r in od.read_segments().to_pylist()]
    assert all(r["reason"] and r["stage"] for r in rej)
    for kind, a, b in mixed["truth"]:
        if kind in ("singing+music", "music"):
            inside = [r for r in rej if r["end"] > a and r["start"] < b]
            kept_inside = sum(max(0.0, min(e, b) - max(s, a)) for s, e in kept)
            rejected_inside = sum(max(0.0, min(r["end"], b) - max(r["start"], a)) for r in inside)
            print(kind, f"{a:.1f}-{b:.1f}", "kept", round(kept_inside, 2), "rejected", round(rejected_inside, 2),
                  sorted({r["reason"] for r in inside}))
            # no words are sung: what VAD took for speech there is (nearly) all rejected, with reasons
            assert rejected_inside >= kept_inside, f"{kind} {a:.1f}-{b:.1f}: kept {kept_inside:.1f} s of wordless audio"
