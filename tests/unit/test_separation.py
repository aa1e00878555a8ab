"""Vocal separation through the real audio-separator Separator with a tiny MDX-shaped ONNX model,
offline: right lengths and rates, seamless chunking, kind=none, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audio_fixtures import (  # noqa: F401 - fixtures
    TINY_GAIN,
    TINY_MDX,
    TINY_MDX_DATA,
    TINY_SEGMENT_SIZE,
    build_tiny_mdx,
    mdx_models_dir,
    media_file,
    no_network,
    write_wav,
)
from mikupal import media
from mikupal.audio.separation import VocalSeparator, find_model_data, model_hash, write_separator_metadata
from mikupal.config import SeparationConfig
from mikupal.errors import UserError

pytest.importorskip("audio_separator")


def tiny_cfg(**kw) -> SeparationConfig:
    base = dict(kind="mdx", model=TINY_MDX, chunk_seconds=1.5, context_seconds=0.25, segment_size=TINY_SEGMENT_SIZE, overlap=0.25)
    base.update(kw)
    return SeparationConfig(**base)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """3 s of jfk, stereo 44.1 kHz (a slight channel difference so stereo is real)."""
    x = media.decode_audio(media_file("jfk.flac"), 1.0, 4.0, sample_rate=44100, mono=False)
    x[1] *= 0.8
    return write_wav(tmp_path_factory.mktemp("clip") / "clip.wav", x, 44100), x


@pytest.fixture(scope="module")
def chunked(mdx_models_dir, clip, tmp_path_factory):
    """The clip separated in two 1.5 s chunks, network refused throughout."""
    out = tmp_path_factory.mktemp("chunked")
    with pytest.MonkeyPatch.context() as mp:
        _refuse_network(mp)
        s = VocalSeparator(tiny_cfg(), mdx_models_dir, dataset_rate=44100, offline=True, num_threads=2)
        s.load()
        try:
            res = s.separate(clip[0], out / "vocals.flac", out / "analysis16k.wav", out / "mixture16k.wav")
        finally:
            s.close()
    return res, out


def _refuse_network(mp):
    import socket

    def refuse(*a, **k):
        raise AssertionError("network access attempted")

    mp.setattr(socket.socket, "connect", refuse)
    mp.setattr(socket, "create_connection", refuse)


def test_tiny_mdx_through_separator_gives_vocals_of_right_length_and_rate(chunked, clip):
    (vocals, analysis), out = chunked
    x = clip[1]
    v, sr = sf.read(vocals, dtype="float32")
    assert sr == 44100 and v.ndim == 1 and len(v) == x.shape[1]  # mono, full band, sample exact
    a, sra = sf.read(analysis, dtype="float32")
    assert sra == 16000 and len(a) == round(x.shape[1] * 16000 / 44100)
    m, _ = sf.read(out / "mixture16k.wav", dtype="float32")
    assert len(m) == len(a)
    assert np.isfinite(v).all()
    # vocals = mixture - instrumental, instrumental = TINY_GAIN * mixture (the model scales the STFT)
    mix = x.mean(axis=0)
    assert np.corrcoef(v, mix)[0, 1] > 0.99
    assert np.std(v) / np.std(mix) == pytest.approx(1 - TINY_GAIN, abs=0.03)


def test_whole_file_at_another_rate_matches_the_chunked_run(chunked, clip, mdx_models_dir, tmp_path, no_network):
    """One chunk at dataset_rate=48000: right rate/length, and the same 16 kHz audio as two chunks (no seams)."""
    (_, analysis_chunked), _ = chunked
    x = clip[1]
    s = VocalSeparator(tiny_cfg(chunk_seconds=60.0), mdx_models_dir, dataset_rate=48000, offline=True, num_threads=2)
    s.load()
    try:
        vocals, analysis = s.separate(clip[0], tmp_path / "v.flac", tmp_path / "a.wav")
    finally:
        s.close()
    info = sf.info(vocals)
    assert info.samplerate == 48000 and info.channels == 1
    assert info.frames == pytest.approx(x.shape[1] * 48000 / 44100, abs=2)
    a, _ = sf.read(analysis, dtype="float32")
    b, _ = sf.read(analysis_chunked, dtype="float32")
    assert len(a) == len(b)
    assert np.max(np.abs(a - b)) < 2e-3  # no seams, no gain jumps at chunk edges


def test_kind_none_writes_the_mixture(mdx_models_dir, clip, tmp_path):
    path, x = clip
    s = VocalSeparator(SeparationConfig(kind="none", chunk_seconds=1.0), mdx_models_dir, dataset_rate=44100)
    vocals, analysis = s.separate(path, tmp_path / "v.flac", tmp_path / "a.wav")
    v, sr = sf.read(vocals, dtype="float32")
    assert sr == 44100 and len(v) == x.shape[1]
    assert np.max(np.abs(v - x.mean(axis=0))) < 1e-3  # the mixture itself (16-bit)
    assert sf.info(analysis).samplerate == 16000


def test_raw_separator_api_with_local_model_and_metadata_never_downloads(tmp_path, clip, no_network):
    """audio-separator 0.47 itself, given the metadata files it looks up, loads a local model offline."""
    from audio_separator.separator import Separator

    d = tmp_path / "models"
    model = build_tiny_mdx(d / TINY_MDX)
    write_separator_metadata(d, TINY_MDX, TINY_MDX_DATA, model_hash(model))
    sep = Separator(
        model_file_dir=str(d),
        output_dir=str(tmp_path / "out"),
        output_single_stem="Vocals",
        use_soundfile=True,
        mdx_params={"hop_length": 1024, "segment_size": TINY_SEGMENT_SIZE, "overlap": 0.25, "batch_size": 1, "enable_denoise": False},
        log_level=40,
    )
    sep.load_model(TINY_MDX)
    files = sep.separate(str(clip[0]))
    assert len(files) == 1 and "Vocals" in files[0]
    out, sr = sf.read(tmp_path / "out" / files[0])
    assert sr == 44100 and len(out) == clip[1].shape[1]


def test_model_parameters_come_from_local_metadata(tmp_path):
    p = build_tiny_mdx(tmp_path / "m.onnx")
    assert find_model_data(p) is None
    (tmp_path / "mdx_model_data.json").write_text(json.dumps({model_hash(p): TINY_MDX_DATA}))
    assert find_model_data(p) == TINY_MDX_DATA
    (tmp_path / "m.onnx.json").write_text(json.dumps({**TINY_MDX_DATA, "compensate": 1.5}))
    assert find_model_data(p)["compensate"] == 1.5  # a sidecar wins


def test_offline_missing_model_is_one_clear_line(tmp_path):
    s = VocalSeparator(SeparationConfig(model="UVR-MDX-NET-Inst_HQ_3.onnx"), tmp_path, offline=True)
    with pytest.raises(UserError) as e:
        s.load()
    msg = str(e.value)
    assert "\n" not in msg and "UVR-MDX-NET-Inst_HQ_3.onnx" in msg and str(tmp_path / "mdx") in msg
    s.close()


def test_offline_local_model_without_parameters_names_its_hash(tmp_path):
    p = build_tiny_mdx(tmp_path / "mdx" / "mystery.onnx")
    s = VocalSeparator(SeparationConfig(model="mystery.onnx"), tmp_path, offline=True)
    with pytest.raises(UserError, match=model_hash(p)):
        s.load()
    s.close()
