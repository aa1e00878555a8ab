"""The deploy recipes say what they do: the submit script passes the user's input, output and models
dir (absolute: the job runs elsewhere) and nothing overrides them; the KubeRay RayJob's command is
a valid `mikupal run` against the paths its volumes mount, on the Ray version installed here.
(tests/integration/test_deploy.py runs the script against a real `ray start --head`.)"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from mikupal.config import compose

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _submit(tmp_path: Path, *args: str, **env: str) -> list[str]:
    """Run deploy/submit_workstation.sh with a stand-in `ray` that prints the command it was given."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "ray").write_text("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n")
    (fake / "ray").chmod(0o755)
    base = {k: v for k, v in os.environ.items() if k not in ("MIKUPAL_MODELS_DIR", "RAY_ADDRESS", "PROFILE", "MODELS_DIR")}
    p = subprocess.run(["bash", str(DEPLOY / "submit_workstation.sh"), *args], capture_output=True, text=True,
                       cwd=tmp_path, timeout=60, env={**base, "PATH": f"{fake}:{os.environ['PATH']}", **env})
    assert p.returncode == 0, p.stderr
    return p.stdout.splitlines()


def test_the_submit_script_passes_the_users_paths_and_arguments(tmp_path):
    argv = _submit(tmp_path, "offline=true", "labeler=none", INPUT="videos", OUTPUT="/data/out", MODELS_DIR="models",
                   PROFILE="cpu")
    assert argv[:3] == ["job", "submit", "--address"] and argv[3] == "http://127.0.0.1:8265"
    assert ["--runtime-env", "deploy/runtime_env.yaml"] == argv[argv.index("--runtime-env"):argv.index("--runtime-env") + 2]
    run = argv[argv.index("--") + 1:]
    assert run == ["mikupal", "run", f"input={tmp_path}/videos", "output=/data/out", "profile=cpu",
                   f"models_dir={tmp_path}/models", "offline=true", "labeler=none"]


def test_the_models_dir_defaults_to_the_users_setting_else_mikupals(tmp_path):
    run = _submit(tmp_path, INPUT="/v", OUTPUT="/o", MIKUPAL_MODELS_DIR="/srv/models", RAY_ADDRESS="http://head:8265")
    assert "models_dir=/srv/models" in run and "http://head:8265" in run and "profile=gpu" in run
    assert not [a for a in _submit(tmp_path, INPUT="/v", OUTPUT="/o") if a.startswith("models_dir=")]


def test_the_runtime_env_sets_no_path():
    env = yaml.safe_load((DEPLOY / "runtime_env.yaml").read_text())
    assert env["working_dir"] == "."
    assert not env.get("env_vars"), "a path or setting here would override the user's own"
    assert {".venv", ".git", "benchmarks/.cache"} <= set(env["excludes"])


def test_the_rayjob_runs_a_valid_command_on_the_mounted_paths():
    ray = pytest.importorskip("ray")
    job = yaml.safe_load((DEPLOY / "rayjob.yaml").read_text())
    spec = job["spec"]
    argv = shlex.split(spec["entrypoint"])
    assert argv[:2] == ["mikupal", "run"]
    overrides = dict(a.split("=", 1) for a in argv[2:])
    cfg = compose(argv[2:])  # every key exists and validates
    assert cfg.profile_name == "gpu" and cfg.models_dir == "/models"
    assert spec["rayClusterSpec"]["rayVersion"] == ray.__version__
    pods = [spec["rayClusterSpec"]["headGroupSpec"]] + spec["rayClusterSpec"]["workerGroupSpecs"]
    for group in pods:
        mounts = {m["mountPath"] for c in group["template"]["spec"]["containers"] for m in c.get("volumeMounts", [])}
        assert {"/models", "/data"} <= mounts
        assert overrides["input"].startswith("/data/") and overrides["output"].startswith("/data/")
    assert "MIKUPAL_MODELS_DIR" not in (spec.get("runtimeEnvYAML") or "")
