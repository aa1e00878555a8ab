"""Active speaker detection interface: MFCC, scoring, windows, real clips."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mikupal.vision.asd import DEFAULT_WINDOWS, DEMO_WINDOWS, FULL, ActiveSpeakerModel, audio_mfcc
from mikupal.vision.crops import face_crops
from mikupal.vision.faces import YuNetDetector
from mikupal.nets.light_asd import LightASD
from mikupal.nets.lr_asd import LRASD
from mikupal.nets.talknet import TalkNet

torch.set_num_threads(1)

WEIGHTS = {
    "light-asd": "models/light-asd/pretrain_AVA_CVPR.model",
    "lr-asd": "models/lr-asd/pretrain_AVA.model",
}


def _decode_25fps_16k(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """BGR frames resampled to 25 fps (nearest source frame) and mono 16 kHz float audio."""
    av = pytest.importorskip("av")
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        src = [(float(f.pts * stream.time_base), f.to_ndarray(format="bgr24")) for f in c.decode(stream)]
    with av.open(str(path)) as c:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
        chunks = []
        for frame in c.decode(c.streams.audio[0]):
            chunks += [g.to_ndarray().reshape(-1) for g in resampler.resample(frame)]
        chunks += [g.to_ndarray().reshape(-1) for g in resampler.resample(None)]
    audio = np.concatenate(chunks).astype(np.float32) / 32768.0
    times = np.array([t for t, _ in src])
    n = int(min(times[-1] + 1 / 30, len(audio) / 16000) * 25)
    frames = [src[int(np.argmin(np.abs(times - i / 25)))][1] for i in range(n)]
    return frames, audio


@pytest.fixture(scope="module")
def vr_face1(shared):
    video = shared / "media/vr_face1.mp4"
    yunet = shared / "models/yunet/yunet_s_640_640.onnx"
    if not (video.is_file() and yunet.is_file()):
        pytest.skip("vr_face1 / yunet missing")
    frames, audio = _decode_25fps_16k(video)
    dets = YuNetDetector(yunet).detect(frames)
    assert all(len(d) == 1 for d in dets)
    boxes = np.stack([d[0, :4] for d in dets])
    crops = face_crops(frames, boxes)
    t = len(crops)
    # frames whose audio (±1 frame) is voiced: RMS above -40 dBFS. vr_face1 has two
    # long pauses (about 2.4-3.5 s and 4.6-6.0 s at -55 dBFS) where the speaker is silent.
    rms = np.array([np.sqrt(np.mean(audio[max(0, i * 640 - 640) : (i + 2) * 640] ** 2)) for i in range(t)])
    voiced = 20 * np.log10(rms + 1e-9) > -40
    return {"crops": crops, "audio": audio, "voiced": voiced}


@pytest.fixture(scope="module")
def random_light_asd() -> ActiveSpeakerModel:
    torch.manual_seed(0)
    return ActiveSpeakerModel(LightASD(), "light-asd", runtime="torch")


# ----------------------------------------------------------------------------- MFCC


def test_audio_mfcc_rate_and_int16_scale():
    from python_speech_features import mfcc

    rng = np.random.default_rng(0)
    pcm = (rng.normal(0, 0.1, 16000) * 32767).astype(np.int16)
    feats = audio_mfcc(pcm.astype(np.float32) / 32768.0)
    assert feats.dtype == np.float32 and feats.shape[1] == 13
    assert 99 <= len(feats) <= 100  # 100 frames/s
    ref = mfcc(pcm, 16000, numcep=13, winlen=0.025, winstep=0.010)  # what the public demos compute
    np.testing.assert_allclose(feats, ref, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(audio_mfcc(pcm), ref, rtol=1e-4, atol=1e-3)
    assert audio_mfcc(np.zeros(0, np.float32)).shape == (0, 13)
    with pytest.raises(ValueError):
        audio_mfcc(np.zeros((2, 100), np.float32))


# ----------------------------------------------------------------------------- scoring mechanics


def test_score_empty_inputs(random_light_asd):
    m = random_light_asd
    faces = np.zeros((10, 112, 112), np.uint8)
    assert m.score(np.zeros((0, 13), np.float32), faces).shape == (0,)
    assert m.score(np.zeros((40, 13), np.float32), np.zeros((0, 112, 112), np.uint8)).shape == (0,)


def test_score_length_mismatch(random_light_asd):
    m = random_light_asd
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 255, (20, 112, 112), dtype=np.uint8)
    mfcc = rng.normal(size=(80, 13)).astype(np.float32)
    full = m.score(mfcc, faces)
    assert full.shape == (20,) and full.dtype == np.float32 and np.isfinite(full).all()
    # MFCC framing of exactly T/25 s yields 4T-1 rows: the last frame is kept
    assert m.score(mfcc[:79], faces).shape == (20,)
    # shorter audio or fewer faces: trimmed to the common length
    assert m.score(mfcc[:40], faces).shape == (10,)
    assert m.score(mfcc, faces[:7]).shape == (7,)
    assert m.aligned_length(79, 20) == 20 and m.aligned_length(76, 20) == 19
    assert m.score(mfcc[:4], faces[:1]).shape == (1,)  # a single frame
    with pytest.raises(ValueError):
        m.score(mfcc, faces[:, :64, :64])
    # repeated window lengths count as weights
    np.testing.assert_allclose(
        m.score(mfcc, faces, (0.4, 0.4, 0.8)), (2 * m.score(mfcc, faces, (0.4,)) + m.score(mfcc, faces, (0.8,))) / 3, atol=1e-5
    )


def test_window_bounds():
    wb = ActiveSpeakerModel.window_bounds
    assert wb(100, FULL) == [(0, 100)]
    assert wb(100, 0) == [(0, 100)]
    assert wb(0, 1.0) == []
    b = wb(155, 2.0)  # 6.2 s in 2 s windows -> 3 balanced windows, no 5-frame leftover
    assert len(b) == 3 and b[0][0] == 0 and b[-1][1] == 155
    assert all(e - s in (51, 52) for s, e in b)
    assert all(b[i][1] == b[i + 1][0] for i in range(len(b) - 1))
    assert wb(10, 6.0) == [(0, 10)]


def test_shared_encoders_match_per_window_full_network():
    torch.manual_seed(0)
    net = LRASD().eval()
    rng = np.random.default_rng(1)
    faces = rng.integers(0, 255, (30, 112, 112), dtype=np.uint8)
    mfcc = rng.normal(size=(120, 13)).astype(np.float32)
    shared = ActiveSpeakerModel(net, "lr-asd", shared_encoders=True, runtime="torch")
    chunked = ActiveSpeakerModel(net, "lr-asd", shared_encoders=True, max_chunk_frames=10, runtime="torch")
    per_window = ActiveSpeakerModel(net, "lr-asd", shared_encoders=False)
    ref = per_window.score(mfcc, faces, (FULL,))
    # one whole-track window: identical computations
    np.testing.assert_allclose(shared.score(mfcc, faces, (FULL,)), ref, atol=1e-4)
    # encoders run in overlapping chunks give the same result as one pass
    np.testing.assert_allclose(chunked.score(mfcc, faces, (FULL,)), ref, atol=1e-4)
    # several windows: finite, right length
    for m in (shared, per_window):
        out = m.score(mfcc, faces, (0.4, 1.0, FULL))
        assert out.shape == (30,) and np.isfinite(out).all()


@pytest.mark.parametrize("windows", [(0.0,), (0.4, 0.0)])
def test_score_offsets_batch_equals_each_offset_alone(random_light_asd, windows):
    """All offsets of a window go through the backend as one batch: the scores each offset gets alone."""
    m, k, t = random_light_asd, 3, 30
    rng = np.random.default_rng(4)
    crops = rng.integers(0, 255, (t, 112, 112), dtype=np.uint8)
    mfcc = rng.normal(size=(4 * (t + 2 * k + 2), 13)).astype(np.float32)
    offsets = list(range(-k, k + 1))
    got = m.score_offsets(mfcc, 4 * (k + 1), crops, offsets, windows)
    with torch.inference_mode():
        ea = m.net.encode_audio(torch.from_numpy(mfcc[4 : 4 * (t + 2 * k + 1)])[None])[0]  # the rows of frames -k .. t + k
        ev = m.net.encode_visual(torch.from_numpy(crops).float()[None])[0]
        for j, o in enumerate(offsets):
            a, total = ea[k + o : k + o + t], torch.zeros(t)
            for w in windows:
                wf = t if not w else max(1, min(t, int(round(w * 25))))
                total += torch.cat([m.net.backend(a[s : s + wf][None], ev[s : s + wf][None])[0, :, 1] for s in range(0, t, wf)])
            np.testing.assert_allclose(got[j], (total / len(windows)).numpy(), atol=2e-5)


@pytest.mark.parametrize("cls, kind", [(LightASD, "light-asd"), (LRASD, "lr-asd")])
def test_onnx_runtime_matches_torch(cls, kind):
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    net = cls().eval()
    onnx = ActiveSpeakerModel(net, kind, runtime="onnx", max_chunk_frames=13)
    plain = ActiveSpeakerModel(net, kind, runtime="torch", max_chunk_frames=13)
    assert onnx.runtime == "onnx" and plain.runtime == "torch"
    rng = np.random.default_rng(3)
    faces = rng.integers(0, 255, (23, 112, 112), dtype=np.uint8)  # not the export's length
    mfcc = rng.normal(size=(91, 13)).astype(np.float32)
    np.testing.assert_allclose(onnx.score(mfcc, faces), plain.score(mfcc, faces), atol=1e-4)
    np.testing.assert_allclose(onnx.score(mfcc, faces, (0.4,)), plain.score(mfcc, faces, (0.4,)), atol=1e-4)
    assert onnx.score(mfcc[:0], faces).shape == (0,)


def test_talknet_through_the_interface():
    torch.manual_seed(0)
    m = ActiveSpeakerModel(TalkNet(), "talknet")
    assert not m.shared_encoders and m.runtime == "torch"  # its encoders are not local in time
    rng = np.random.default_rng(2)
    faces = rng.integers(0, 255, (15, 112, 112), dtype=np.uint8)
    out = m.score(rng.normal(size=(59, 13)).astype(np.float32), faces, (0.3, FULL))
    assert out.shape == (15,) and np.isfinite(out).all()


def test_load_rejects_unknown_kind(tmp_path):
    with pytest.raises(ValueError):
        ActiveSpeakerModel.load("syncnet", tmp_path / "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ActiveSpeakerModel(LightASD(), "light-asd", runtime="tensorrt")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- real clip


@pytest.mark.parametrize("kind", ["light-asd", "lr-asd"])
def test_real_clip_own_audio_vs_silence(shared, vr_face1, kind):
    model = ActiveSpeakerModel.load(kind, shared / WEIGHTS[kind])  # defaults: shared encoders, auto runtime
    crops, audio, voiced = vr_face1["crops"], vr_face1["audio"], vr_face1["voiced"]
    assert DEFAULT_WINDOWS  # the default is what the pipeline uses
    own = model.score(audio_mfcc(audio), crops)
    assert own.shape == (len(crops),)
    # speaking whenever there is speech; the clip's two long pauses score < 0
    assert (own[voiced] > 0).mean() >= 0.70
    assert (own > 0).mean() >= 0.45
    assert (own[~voiced] > 0).mean() <= 0.30
    # the same faces with silent audio (digital zeros / very low noise): (almost) never speaking
    rng = np.random.default_rng(0)
    silent = np.zeros_like(audio) if kind == "light-asd" else rng.normal(0, 1e-4, len(audio)).astype(np.float32)
    assert (model.score(audio_mfcc(silent), crops) > 0).mean() < 0.30


def test_real_clip_demo_windows(shared, vr_face1):
    model = ActiveSpeakerModel.load("light-asd", shared / WEIGHTS["light-asd"])
    # the first 4 s: speech, then the start of the first pause
    crops, audio, voiced = vr_face1["crops"][:100], vr_face1["audio"][: 100 * 640], vr_face1["voiced"][:100]
    assert 0.2 < voiced.mean() < 0.9
    scores = model.score(audio_mfcc(audio), crops, DEMO_WINDOWS)
    assert scores.shape == (len(crops),) and not math.isnan(float(scores.mean()))
    assert (scores[voiced] > 0).mean() >= 0.70
    silent = model.score(audio_mfcc(np.zeros_like(audio)), crops, DEMO_WINDOWS)
    assert (silent > 0).mean() < 0.30
