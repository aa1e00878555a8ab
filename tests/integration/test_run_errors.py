"""A condition about the run stops it in one line: a model missing offline before any worker
starts, a broken model file at the preflight, and a model that will not load inside a stage (a Ray
actor or the sequential engine), never as `worker_lost` rejects or a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mikupal.config import compose
from mikupal.engine.commit import OutputDir
from mikupal.engine.run import run
from mikupal.errors import UserError

ROOT = Path(__file__).resolve().parents[2]


def _overrides(models_dir: Path, out: Path, inp: Path, *extra: str) -> list[str]:
    return [f"input={inp}", f"output={out}", f"models_dir={models_dir}", "profile=cpu", "separation=none",
            "asr.model=tiny.en", "offline=true", "engine.progress=false", "labeler=none", *extra]


def test_missing_model_offline_exits_2_in_one_line(tmp_path, media):
    models = tmp_path / "models"
    models.mkdir()
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "mikupal.cli", "run", *_overrides(models, tmp_path / "out", media / "vr_face1.mp4")],
                       capture_output=True, text=True, timeout=120, cwd=ROOT,
                       env={**__import__("os").environ, "MIKUPAL_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "tiny.en" in lines[0] and str(models) in lines[0], p.stderr
    assert "Traceback" not in p.stderr and "worker_lost" not in p.stderr
    assert time.monotonic() - t0 < 60
    assert not (tmp_path / "out" / "rejects").exists() or not any((tmp_path / "out" / "rejects").iterdir())


def _linked_models(tmp_path: Path, models_dir: Path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    for kind in ("light-asd", "lr-asd", "yunet", "ge2e", "whisper"):
        if (models_dir / kind).exists():
            (models / kind).symlink_to((models_dir / kind).resolve())
    return models


def test_a_broken_model_file_stops_the_run_at_the_preflight(tmp_path, media, models_dir):
    """Present but garbage (what a failed download leaves): one line naming the file, before any worker."""
    models = tmp_path / "models"
    models.mkdir()
    for kind in ("light-asd", "yunet", "ge2e"):
        (models / kind).symlink_to((models_dir / kind).resolve())
    bad = models / "whisper" / "tiny.en"
    bad.mkdir(parents=True)
    (bad / "model.bin").write_bytes(b"not a ctranslate2 model")
    (bad / "config.json").write_text("{}")
    out = tmp_path / "out"
    with pytest.raises(UserError, match=f"asr model file broken: {bad}: not a CTranslate2 model"):
        run(compose(_overrides(models, out, media / "vr_face1.mp4")))
    assert not out.exists()  # checked before anything is created


@pytest.mark.parametrize("engine", ["sequential", "local", "ray"])
def test_a_model_that_will_not_load_in_a_stage_stops_the_run_in_both_engines(engine, tmp_path, media, models_dir):
    """A whole file of the wrong model passes the preflight (no published facts for a file of the
    user's own) and fails the speaker stage's strict load: in either engine the run ends with one
    line naming the file, exit 2; nothing is committed (the next run redoes the video), and Ray
    neither loops on restarts nor prints its own lines."""
    import torch

    models = _linked_models(tmp_path, models_dir)
    voice = tmp_path / "mine" / "voice.pt"
    voice.parent.mkdir()
    torch.save({"lstm.weight": torch.zeros(3, 3)}, voice)
    out = tmp_path / "out"
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "mikupal.cli", "run",
                        *_overrides(models, out, media / "vr_face1.mp4", f"engine={engine}", f"speaker.model={voice}")],
                       capture_output=True, text=True, timeout=300, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled"})
    assert p.returncode == 2, p.stderr[-3000:]
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and f"speaker stage could not load {voice}" in lines[0], p.stderr[-3000:]
    assert "Traceback" not in p.stderr and "worker_lost" not in p.stderr and "core_worker" not in p.stderr
    od = OutputDir(out)
    assert od.read_rejects().num_rows == 0 and od.summaries() == []
    assert time.monotonic() - t0 < 240
