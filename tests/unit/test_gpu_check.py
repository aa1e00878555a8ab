"""benchmarks/gpu_check.py, the command prepared for a GPU machine whose image has torch, numpy,
scipy, OpenCV, onnxruntime, pyarrow and pandas but no Ray, faster-whisper, PyAV (nor the rest of
mikupal's dependencies): here, without CUDA, it says so in one line and exits 0 in seconds, and
its whole measuring path (run on the CPU, tiny) imports nothing that image lacks."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
#: what mikupal installs that the GPU image does not have
ABSENT = ("ray", "faster_whisper", "av", "ctranslate2", "pydantic", "hydra", "omegaconf", "soundfile", "librosa",
          "python_speech_features", "audio_separator", "onnx", "torchvision", "sklearn", "statsmodels", "yaml", "psutil",
          "rich", "speechmos", "webrtcvad", "google", "openai", "datasets", "matplotlib", "lhotse", "torchcodec")

BLOCKED_RUN = """
import runpy, sys
ABSENT = set(sys.argv[1].split(","))

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {name!r} (not on the GPU image)", name=name)
        return None

sys.meta_path.insert(0, Absent())
script = sys.argv[2]
sys.argv = [script] + sys.argv[3:]
runpy.run_path(script, run_name="__main__")
"""


def _run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKED_RUN, ",".join(ABSENT), str(SCRIPT), *args], capture_output=True,
                          text=True, timeout=timeout, cwd="/")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(_cuda(), reason="a GPU is here: the check would measure")
def test_without_cuda_one_line_and_exit_0_in_seconds():
    t = time.perf_counter()
    r = _run()
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.splitlines() == [r.stdout.strip()] and r.stdout.startswith("gpu_check: no CUDA device here")
    assert time.perf_counter() - t < 30


def test_its_measuring_path_imports_only_what_the_gpu_image_has(tmp_path):
    out = tmp_path / "gpu.json"
    r = _run("--self-test", "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result["stages"]) == {"light_asd", "s3fd", "ge2e", "mdx_net", "dnsmos"}
    for name in ("light_asd", "s3fd", "ge2e", "mdx_net"):
        best = result["stages"][name]["best"]
        assert best["items_per_s"] > 0 and best["media_s_per_s"] > 0
    p = result["projection_this_machine"]
    assert p["per_gpu_x_real_time"] == min(p["gpu_bound_x_real_time"], p["cpu_bound_x_real_time"])
    assert "faster-whisper" in next(iter(k for k in p["gpu_s_per_media_s"] if k.startswith("asr")))  # assumed, and said
    blocked = _run_blocked_import_probe(tmp_path)
    assert blocked.returncode != 0 and "not on the GPU image" in blocked.stderr  # the blocker does block


def _run_blocked_import_probe(tmp_path: Path) -> subprocess.CompletedProcess:
    probe = tmp_path / "probe.py"
    probe.write_text("import ray\n")
    return subprocess.run([sys.executable, "-c", BLOCKED_RUN, ",".join(ABSENT), str(probe)], capture_output=True,
                          text=True, timeout=60)


def test_the_carried_inputs_fit_the_machines_limits():
    inputs = ROOT / "benchmarks" / "gpu_inputs.npz"
    assert inputs.is_file() and inputs.stat().st_size < 8 * 2**20  # carried with the code: 64 MiB in all
