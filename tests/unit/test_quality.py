"""DNSMOS: the reference's windows and scores, P.835 computed once per shared or repeated frame
against the whole model, the mel features against librosa's, a real talk against the same talk in
loud pink noise, and the quality stage's columns and `low_quality` rejects."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mikupal import media as mediafile  # noqa: E402
from mikupal.audio import p835  # noqa: E402
from mikupal.audio.quality import (  # noqa: E402
    SAMPLE_RATE, Dnsmos, mel_features, mel_filters, repeated, spread, window_starts, windows,
)
from mikupal.config import compose  # noqa: E402
from mikupal.engine.commit import dataset_row  # noqa: E402
from mikupal.engine.stages import stage_classes  # noqa: E402
from mikupal.models_dir import DNSMOS_P835, dnsmos_dir  # noqa: E402
from mikupal.records import SpeechSegment  # noqa: E402
from mikupal.records import Payload, WorkItem  # noqa: E402
from mikupal.stages.quality import QualityStage  # noqa: E402

pytestmark = pytest.mark.skipif(dnsmos_dir() is None, reason="the speechmos wheel is not installed")


def pink_noise(n: int, seed: int = 0) -> np.ndarray:
    """Unit-RMS 1/f noise (power falls 3 dB per octave), shaped in the frequency domain."""
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n)
    return (x / np.sqrt(np.mean(x**2))).astype(np.float32)


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    rms = np.sqrt(np.mean(clean**2))
    mixed = clean + noise * rms * 10 ** (-snr_db / 20)
    return (mixed / max(1.0, float(np.abs(mixed).max()))).astype(np.float32)


@pytest.fixture(scope="module")
def scorer() -> Dnsmos:
    return Dnsmos(threads=1)


@pytest.fixture(scope="module")
def jfk(media) -> np.ndarray:
    return np.clip(mediafile.decode_audio(media / "jfk.flac", 0.0, None, SAMPLE_RATE), -1, 1)


def test_windows_follow_the_reference():
    sr = SAMPLE_RATE
    assert len(windows(np.zeros(11 * sr, np.float32))) == 2  # floor(11 - 9.01) + 1
    short = windows(np.arange(3 * sr, dtype=np.float32))  # repeated to 12 s: 3 windows
    assert len(short) == 3 and all(len(w) == int(9.01 * sr) for w in short)
    assert short[1][0] == sr  # hop of one second
    with pytest.raises(ValueError):
        windows(np.zeros(0, np.float32))


def test_scores_equal_the_wheels_own_dnsmos(scorer, jfk):
    """Same numbers as speechmos.dnsmos.run, the wheel's port of Microsoft's dnsmos_local.py."""
    if importlib.util.find_spec("librosa") is None:
        pytest.skip("librosa not installed")
    from speechmos import dnsmos

    ref = dnsmos.run(jfk, SAMPLE_RATE)
    ours = scorer.score(jfk)
    assert ours.ovrl == pytest.approx(float(ref["ovrl_mos"]), abs=1e-4)
    assert ours.sig == pytest.approx(float(ref["sig_mos"]), abs=1e-4)
    assert ours.bak == pytest.approx(float(ref["bak_mos"]), abs=1e-4)
    assert ours.p808 == pytest.approx(float(ref["p808_mos"]), abs=1e-4)


def _whole_model_raw(chosen: list[np.ndarray]) -> np.ndarray:
    """sig_bak_ovr.onnx run whole on each window, as the reference runs it."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(dnsmos_dir() / DNSMOS_P835), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: w[np.newaxis]})[0] for w in chosen])


def _raw_both_ways(model: p835.P835, signal: np.ndarray, starts: list[int], period):
    need = len(windows(np.zeros(10 * SAMPLE_RATE, np.float32))[0])
    chosen = [signal[s : s + need] for s in starts]
    return model.raw(chosen, starts, period), _whole_model_raw(chosen)


def test_p835_computes_each_frame_once_and_gives_the_whole_models_outputs(scorer, jfk, monkeypatch):
    model = scorer.p835
    assert model.halo == 4  # four full-resolution 3x3 convolutions before the first pooling
    # a 4 s utterance: 400 frames, repeated to 16 s; 7 windows, all from one period of features
    short = jfk[: 4 * SAMPLE_RATE]
    filled = repeated(short)
    starts = window_starts(filled)
    assert len(starts) == 7
    ours, whole = _raw_both_ways(model, filled, starts, period=len(short) // p835.FRAME_HOP)
    np.testing.assert_allclose(ours, whole, atol=1e-5)
    # not a whole number of frames: no period, the windows' union instead
    odd = repeated(jfk[: 4 * SAMPLE_RATE + 100])
    ours, whole = _raw_both_ways(model, odd, window_starts(odd)[:2], period=None)
    np.testing.assert_allclose(ours, whole, atol=1e-5)
    # overlapping windows of a long signal, out of order, split into runs (a smaller bound forces it)
    # and each run computed in chunks of at most a window
    monkeypatch.setattr(p835, "MAX_RUN_FRAMES", 1300)
    long = np.concatenate([jfk, jfk])
    starts = [s * SAMPLE_RATE for s in (10, 0, 1, 2, 6, 11)]
    assert [[starts[k] // SAMPLE_RATE for k in run] for run in p835._runs([s // p835.FRAME_HOP for s in starts], 900)] == [
        [0, 1, 2], [6, 10], [11]]
    ours, whole = _raw_both_ways(model, long, starts, period=None)
    np.testing.assert_allclose(ours, whole, atol=1e-5)


def test_p835_runs_a_model_of_another_layout_whole(jfk, monkeypatch):
    import onnxruntime as ort

    monkeypatch.setattr(p835, "_cut_points", lambda model: None)
    model = p835.P835(dnsmos_dir() / DNSMOS_P835, ort.SessionOptions(), ["CPUExecutionProvider"])
    assert model.whole is not None
    ours, whole = _raw_both_ways(model, jfk, [0], period=None)
    np.testing.assert_array_equal(ours, whole)


def test_mel_features_are_the_references_librosa_ones(jfk):
    librosa = pytest.importorskip("librosa")
    np.testing.assert_allclose(mel_filters(), librosa.filters.mel(sr=SAMPLE_RATE, n_fft=321, n_mels=120), atol=1e-7)
    for window in (windows(jfk)[0][:-160], np.zeros(144000, np.float32), pink_noise(144000) * 0.1):
        mel = librosa.feature.melspectrogram(y=window, sr=SAMPLE_RATE, n_fft=321, hop_length=160, n_mels=120)
        reference = ((librosa.power_to_db(mel, ref=np.max) + 40) / 40).T
        ours = mel_features(window)
        assert ours.shape == reference.shape == (900, 120) and ours.dtype == np.float32
        np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_at_most_three_windows_stay_close_to_all_of_them(scorer, jfk):
    assert spread(list(range(7)), 3) == [0, 3, 6] and spread([1, 2], 3) == [1, 2] and spread([1, 2], None) == [1, 2]
    short = jfk[: 4 * SAMPLE_RATE]  # doubled to 16 s: 7 reference windows
    assert len(windows(short)) == 7
    full, three = scorer.score(short), scorer.score(short, max_windows=3)
    assert abs(full.ovrl - three.ovrl) < 0.05 and abs(full.sig - three.sig) < 0.05
    assert scorer.score(jfk, max_windows=3) == scorer.score(jfk)  # 2 windows: nothing left out


def test_a_piece_off_the_10_ms_grid_is_scored_on_whole_frames(scorer, jfk, monkeypatch):
    """A cut's own rounding (2.005 s) must not cost the full-window path: the piece loses its last
    partial frame and is scored as the 2.000 s one, over one period; the reference path is untouched."""
    odd, whole = jfk[: 2 * SAMPLE_RATE + 80], jfk[: 2 * SAMPLE_RATE]
    periods = []
    raw = scorer.p835.raw
    monkeypatch.setattr(scorer.p835, "raw", lambda chosen, starts, period: periods.append(period) or raw(chosen, starts, period))
    assert scorer.score(odd, max_windows=1) == scorer.score(whole, max_windows=1)
    assert periods == [200, 200]  # 2 s = 200 frames of 10 ms: one period computed, then copied
    scorer.score(odd)  # max_windows=None: the reference's exact input, no period to reuse
    assert periods[-1] is None


def test_scores_stay_on_the_mos_scale(scorer):
    rng = np.random.default_rng(2)
    for signal in (np.zeros(3 * SAMPLE_RATE), rng.uniform(-1, 1, 3 * SAMPLE_RATE), pink_noise(12 * SAMPLE_RATE) * 0.3):
        s = scorer.score(signal.astype(np.float32), max_windows=2)
        assert all(1.0 <= v <= 5.0 for v in (s.sig, s.bak, s.ovrl, s.p808)), s


def test_loud_pink_noise_lowers_ovrl_by_at_least_0_3(scorer, jfk):
    clean = scorer.score(jfk)
    noisy = scorer.score(mix_at_snr(jfk, pink_noise(len(jfk)), 0.0))
    for s in (clean, noisy):
        assert all(1.0 <= v <= 5.0 for v in (s.sig, s.bak, s.ovrl, s.p808)), s
    assert clean.ovrl - noisy.ovrl >= 0.3, (clean, noisy)
    assert clean.bak - noisy.bak >= 0.3  # what the noise degrades is the background


def _segment_item(audio_path: Path, seconds: float) -> WorkItem:
    seg = SpeechSegment(segment_id="vid_000000000", video_id="vid", source="talk.mp4", start=0.0, end=seconds,
                        text="ask not what your country can do for you", language="en")
    return WorkItem(source="talk.mp4", video_id="vid", status="segment", data=Payload(segment=seg, analysis_path=str(audio_path), audio_path="audio/vid/vid_000000000.flac"))


def test_stage_scores_keeps_and_rejects_low_quality(tmp_path, jfk):
    clean_path, noisy_path = tmp_path / "clean16k.wav", tmp_path / "noisy16k.wav"
    mediafile.write_audio(clean_path, jfk, SAMPLE_RATE)
    mediafile.write_audio(noisy_path, mix_at_snr(jfk, pink_noise(len(jfk), seed=1), 0.0), SAMPLE_RATE)
    seconds = len(jfk) / SAMPLE_RATE
    lenient = QualityStage(compose(["quality.min_ovrl=2.2"]), tmp_path, threads=1)
    kept = lenient.run_item(_segment_item(clean_path, seconds))[0]
    assert kept.status == "segment" and kept.times[-1].stage == "quality"
    assert all(1 <= v <= 5 for v in (kept.data.dnsmos_sig, kept.data.dnsmos_bak, kept.data.dnsmos_ovrl, kept.data.dnsmos_p808))

    row = dataset_row(kept, 44100)
    assert (row.dnsmos_ovrl, row.dnsmos_sig, row.dnsmos_bak, row.dnsmos_p808) == (
        kept.data.dnsmos_ovrl, kept.data.dnsmos_sig, kept.data.dnsmos_bak, kept.data.dnsmos_p808)

    dropped = lenient.run_item(_segment_item(noisy_path, seconds))[0]
    assert dropped.status == "dropped"
    rej = dropped.rejects[-1]
    assert (rej.stage, rej.reason, rej.start, rej.end) == ("quality", "low_quality", 0.0, seconds)
    assert rej.message == f"dnsmos_ovrl {dropped.data.dnsmos_ovrl:.2f} < 2.20"
    assert dropped.data.dnsmos_ovrl < kept.data.dnsmos_ovrl - 0.3


def test_the_default_floor_drops_only_what_holds_no_speech_signal(tmp_path, jfk):
    """Speech in noise at 0 dB is kept with its low scores (export filters it if wanted); noise
    alone and steady tones hold no speech signal: low_quality (what whisper may hallucinate words on)."""
    stage = QualityStage(compose([]), tmp_path, threads=1)
    rng = np.random.default_rng(0)
    t = np.arange(len(jfk)) / SAMPLE_RATE
    noise = rng.standard_normal(len(jfk)).astype(np.float32)
    cases = {
        "noisy": (jfk + noise * np.sqrt(float(np.mean(jfk ** 2))), True),
        "noise": (noise * 0.05, False),
        "tones": (0.1 * np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 2 * t) + 0.05 * np.sin(2 * np.pi * 660 * t), False),
    }
    for name, (audio, kept) in cases.items():
        path = tmp_path / f"{name}.wav"
        mediafile.write_audio(path, audio.astype(np.float32), SAMPLE_RATE)
        out = stage.run_item(_segment_item(path, len(jfk) / SAMPLE_RATE))[0]
        assert (out.status == "segment") is kept, (name, out.data.dnsmos_sig, out.data.dnsmos_ovrl)
        if not kept:
            assert out.rejects[-1].reason == "low_quality" and out.rejects[-1].message.startswith("dnsmos_sig ")


def test_stage_order_and_config():
    names = [c.name for c in stage_classes(compose(["labeler=openai"]))]
    assert names.index("speaker") < names.index("quality") < names.index("vision") < names.index("label")
    assert names.index("vision") < names.index("prosody") < names.index("label")  # on the audio vision wrote
    assert "prosody" not in [c.name for c in stage_classes(compose(["prosody.kind=none"]))]
    assert next(c for c in stage_classes(compose([])) if c.name == "quality").holds_model  # its ONNX sessions stay loaded
    assert compose([]).quality.min_ovrl is None and compose([]).quality.min_sig == 1.3  # a floor; strict at export
    assert "quality" not in [c.name for c in stage_classes(compose(["quality.kind=none"]))]


def test_missing_models_stop_the_run_in_one_line(tmp_path):
    from mikupal.cli import main
    from mikupal.errors import UserError

    with pytest.raises(UserError, match="DNSMOS models missing"):
        Dnsmos(tmp_path)
    assert main(["run", f"input={tmp_path}", f"output={tmp_path / 'out'}", f"quality.model_dir={tmp_path}",
                 "labeler=none"]) == 2
    assert not (tmp_path / "out" / "segments").exists()  # stopped before anything ran
