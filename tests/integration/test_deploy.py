"""The workstation recipe runs as README writes it: a real `ray start --head` (free ports, its own
temp dir), `deploy/submit_workstation.sh` with INPUT, OUTPUT, MODELS_DIR and the CPU profile,
offline models; its output equals a plain `mikupal run`, and neither Ray's core lines nor OpenCV's
reach the job's log. A run joining that head by its GCS address works too (the address check lets
a real cluster through)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.output_fingerprint import differences

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")
CLIPS = [f"vr_face{i}.mp4" for i in range(1, 6)]
ARGS = ["separation=none", "asr.model=tiny.en", "offline=true", "labeler=none", "engine.progress=false"]
NOISE = ("core_worker.cc", "setPreferableTarget", "[ WARN:", "Traceback")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict:
    env = dict(os.environ, RAY_AUTH_MODE="disabled", PATH=f"{RAY.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for k in ("RAY_ADDRESS", "MIKUPAL_MODELS_DIR", "OPENCV_LOG_LEVEL", "MALLOC_ARENA_MAX", "RAY_BACKEND_LOG_LEVEL"):
        env.pop(k, None)  # the user's choices below, and what the run must set itself
    return {**env, **extra}


@pytest.fixture(scope="module")
def ray_head():
    """`ray start --head` on free ports with its own temp dir; stopped by its process group (never
    `ray stop`, which would end every Ray on the machine)."""
    if not RAY.is_file():
        pytest.skip("the ray command is not installed")
    gcs, dash, agent = _free_port(), _free_port(), _free_port()
    temp = Path("/tmp") / f"rdeploy{os.getpid()}"
    head = subprocess.Popen(
        [str(RAY), "start", "--head", "--block", f"--port={gcs}", "--num-cpus=2", "--include-dashboard=true",
         f"--dashboard-port={dash}", "--dashboard-host=127.0.0.1", f"--dashboard-agent-listen-port={agent}",
         f"--temp-dir={temp}", "--disable-usage-stats"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(), start_new_session=True, cwd=ROOT)
    deadline = time.time() + 120
    while time.time() < deadline:
        if subprocess.run([str(RAY), "job", "list", f"--address=http://127.0.0.1:{dash}"], capture_output=True,
                          env=_env(), timeout=60).returncode == 0:
            break
        assert head.poll() is None, "ray start --head exited"
        time.sleep(1)
    yield gcs, dash
    os.killpg(head.pid, signal.SIGTERM)
    try:
        head.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, media) -> Path:
    d = tmp_path_factory.mktemp("inputs")
    for name in CLIPS:
        (d / name).symlink_to(media / name)
    return d


@pytest.fixture(scope="module")
def plain(tmp_path_factory, models_dir, inputs) -> Path:
    out = tmp_path_factory.mktemp("plain")
    p = subprocess.run([sys.executable, "-m", "mikupal.cli", "run", f"input={inputs}", f"output={out}",
                        f"models_dir={models_dir}", "profile=cpu", *ARGS], capture_output=True, text=True, timeout=600,
                       env=_env(), cwd=ROOT)
    assert p.returncode == 0, p.stderr[-3000:]
    return out


def test_the_workstation_recipe_runs_as_written(ray_head, plain, tmp_path, models_dir, inputs):
    _, dash = ray_head
    out = tmp_path / "job_out"
    env = _env(INPUT=str(inputs), OUTPUT=str(out), MODELS_DIR=str(models_dir), PROFILE="cpu",
               RAY_ADDRESS=f"http://127.0.0.1:{dash}")
    deadline = time.time() + 300
    while True:  # the job agent comes up a little after the dashboard answers
        job = subprocess.run(["bash", "deploy/submit_workstation.sh", *ARGS], capture_output=True, text=True,
                             timeout=900, env=env, cwd=ROOT)
        if "No available agent" not in job.stderr or time.time() > deadline:
            break
        time.sleep(2)
    log = job.stdout + job.stderr
    assert job.returncode == 0, log[-3000:]
    assert "succeeded" in log
    assert not [n for n in NOISE if n in job.stdout], job.stdout[-3000:]  # the job's own log (its driver's output)
    assert differences(plain, out) == []


def test_a_run_joins_the_cluster_by_its_gcs_address(ray_head, plain, tmp_path, models_dir, inputs):
    gcs, _ = ray_head
    out = tmp_path / "joined"
    p = subprocess.run([sys.executable, "-m", "mikupal.cli", "run", f"input={inputs}", f"output={out}",
                        f"models_dir={models_dir}", "profile=cpu", f"engine.address=127.0.0.1:{gcs}", *ARGS],
                       capture_output=True, text=True, timeout=600, env=_env(), cwd=ROOT)
    assert p.returncode == 0, p.stderr[-3000:]
    assert not [n for n in NOISE if n in p.stderr + p.stdout], p.stderr[-3000:]
    assert differences(plain, out) == []
