"""Which device / execution provider each stage asks for under profile=gpu, and what happens when it
gets the CPU instead (`devices.py`): a warning, or under `engine.require_gpu` (profile=gpu) a
one-line `UserError` that stops the run. This machine has no GPU and the CPU build of onnxruntime,
so every fallback here is real; what is asked for is checked by spying on ONNX Runtime."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mikupal import devices
from mikupal.config import compose
from mikupal.errors import UserError

ort = pytest.importorskip("onnxruntime")
HAS_CUDA_ORT = devices.CUDA_PROVIDER in ort.get_available_providers()
HAS_CUDA_TORCH = __import__("torch").cuda.is_available()
needs_no_gpu = pytest.mark.skipif(HAS_CUDA_ORT or HAS_CUDA_TORCH, reason="a GPU is here: nothing falls back")


@pytest.fixture
def asked(monkeypatch):
    """The providers every new ONNX Runtime session asks for (the real sessions still open)."""
    seen: list[list[str]] = []
    real = ort.InferenceSession

    def spy(model, *args, **kw):
        seen.append(list(kw.get("providers") or []))
        return real(model, *args, **kw)

    monkeypatch.setattr(ort, "InferenceSession", spy)
    return seen


def test_gpu_profile_asks_every_stage_for_the_gpu():
    from mikupal.engine.plan import Cluster, make_plan

    cfg = compose(["profile=gpu", "labeler=none"])
    assert cfg.engine.require_gpu and not compose([]).engine.require_gpu
    execution = {s.stage: s.execution for s in make_plan(cfg, Cluster(cpus=64, gpus=8)).stages}
    assert execution["separate"] == "MDX-Net: onnxruntime CUDAExecutionProvider"
    assert execution["quality"] == "DNSMOS: onnxruntime CUDAExecutionProvider"
    assert execution["asr"] == "faster-whisper large-v3: ctranslate2 cuda float16"
    assert execution["speaker"] == "GE2E: torch cuda"
    assert execution["vision"] == "YuNet: OpenCV CPU; light-asd: torch cuda"  # YuNet: OpenCV's CPU DNN, by design
    assert devices.onnx_providers(True) == [devices.CUDA_PROVIDER, devices.CPU_PROVIDER]
    assert devices.onnx_providers(False) == [devices.CPU_PROVIDER]


@needs_no_gpu
def test_dnsmos_asks_for_cuda_and_its_cpu_fallback_stops_the_run(asked):
    from mikupal.audio.quality import Dnsmos

    with pytest.raises(UserError) as e:
        Dnsmos(threads=1, gpu=True, require_gpu=True)
    msg = str(e.value)
    assert "\n" not in msg and "quality (DNSMOS" in msg and "CUDAExecutionProvider" in msg and "onnxruntime-gpu" in msg
    assert asked and asked[0][0] == devices.CUDA_PROVIDER


@needs_no_gpu
def test_dnsmos_fallback_without_require_warns_and_scores(asked, caplog):
    from mikupal.audio.quality import Dnsmos

    with caplog.at_level(logging.INFO, logger="mikupal.devices"):
        scorer = Dnsmos(threads=1, gpu=True, require_gpu=False)
    assert len(asked) == 4 and all(p[0] == devices.CUDA_PROVIDER for p in asked)  # P.835 front/body/head, P.808
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4 and all("asked for CUDAExecutionProvider but runs on CPUExecutionProvider" in w for w in warnings)
    rng = np.random.default_rng(0)
    assert 1.0 <= scorer.score(rng.standard_normal(16000 * 3).astype(np.float32) * 0.1, max_windows=1).ovrl <= 5.0
    Dnsmos(threads=1)  # a CPU stage asks for the CPU only, and says which provider runs
    assert asked[-1] == [devices.CPU_PROVIDER]
    assert any(r.getMessage() == "quality (DNSMOS P.808) runs on CPUExecutionProvider" for r in caplog.records)


def _tiny_onnx(path: Path) -> Path:
    """A model with audio-separator's MDX input name ("input") and a spectrogram-shaped output."""
    import torch

    class Half(torch.nn.Module):
        def forward(self, x):
            return x * 0.5

    torch.onnx.export(Half(), (torch.zeros(1, 4, 8, 8),), str(path), input_names=["input"], output_names=["output"],
                      opset_version=17, dynamo=False)
    return path


@needs_no_gpu
def test_mdx_session_asks_for_cuda_and_its_fallback_stops_the_run(asked, tmp_path):
    from mikupal.audio.separation import VocalSeparator

    inst = SimpleNamespace(model_path=str(_tiny_onnx(tmp_path / "mdx.onnx")), uses_pytorch_inference=False, model_run=None)
    cfg = compose(["profile=gpu"]).separation
    with pytest.raises(UserError, match=r"separation \(MDX-Net .*\) asked for CUDAExecutionProvider but runs on CPU"):
        VocalSeparator(cfg, tmp_path, gpu=True, require_gpu=True)._open_session(inst)
    assert asked[-1][0] == devices.CUDA_PROVIDER
    VocalSeparator(cfg, tmp_path, gpu=False)._open_session(inst)  # a CPU stage: the CPU, our threads
    assert asked[-1] == [devices.CPU_PROVIDER]
    spek = __import__("torch").ones(1, 4, 8, 8)
    assert np.allclose(inst.model_run(spek), 0.5)


@needs_no_gpu
def test_torch_stages_and_whisper_fall_back_in_one_line():
    from mikupal.audio.transcribe import Transcriber
    from mikupal.stages.speaker import SpeakerStage
    from mikupal.stages.vision import VisionStage

    gpu = compose(["profile=gpu"])
    for stage in (SpeakerStage(gpu, "/tmp"), VisionStage(gpu, "/tmp")):
        with pytest.raises(UserError, match=r"asked for cuda but runs on cpu: torch sees no CUDA device"):
            stage.device()
    assert SpeakerStage(compose([]), "/tmp").device() == "cpu"  # a CPU stage: no question asked
    t = Transcriber(gpu.asr.model_copy(update={"device": "auto"}), "/tmp")
    t.model = SimpleNamespace(model=SimpleNamespace(device="cpu"))  # what CTranslate2 picked
    with pytest.raises(UserError, match=r"asr \(whisper large-v3\) asked for cuda but runs on cpu"):
        t.check_device(gpu=True, require=True)
    assert t.check_device(gpu=True, require=False) == "cpu"


@needs_no_gpu
def test_profile_gpu_run_stops_in_one_line_on_a_machine_without_gpu(tmp_path, media, models_dir):
    """End to end (sequential engine: no Ray needed to meet the stages): the first model that would
    run on the CPU under profile=gpu ends the run with exit 2 and one line, before any commit."""
    out = tmp_path / "out"
    args = [f"input={media / 'vr_face1.mp4'}", f"output={out}", f"models_dir={models_dir}", "profile=gpu",
            "engine=sequential", "separation=none", "labeler=none", "asr.model=tiny.en", "asr.device=auto",
            "asr.compute_type=int8", "offline=true", "engine.progress=false"]
    r = subprocess.run([sys.executable, "-m", "mikupal.cli", "run", *args], capture_output=True, text=True, timeout=300,
                       cwd=Path(__file__).resolve().parents[2])
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("mikupal run: asr (whisper tiny.en) asked for cuda but runs on cpu")
    assert not list((out / "segments").glob("*.parquet")) if (out / "segments").exists() else True
