"""A condition about the run stops it in one line: a model missing offline before any worker
starts, and a model that will not load inside a Ray stage actor, never as `worker_lost` rejects."""

from __future__ import annotations

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


def test_a_model_that_will_not_load_in_an_actor_stops_the_run(tmp_path, media, models_dir, ray_session):
    """The whisper files are present (the preflight passes) but garbage: the ASR actor's UserError
    ends the run with its own message, and nothing is committed as a reject."""
    models = tmp_path / "models"
    models.mkdir()
    for kind in ("light-asd", "lr-asd", "yunet", "ge2e"):
        if (models_dir / kind).exists():
            (models / kind).symlink_to((models_dir / kind).resolve())
    bad = models / "whisper" / "tiny.en"
    bad.mkdir(parents=True)
    (bad / "model.bin").write_bytes(b"not a ctranslate2 model")
    (bad / "config.json").write_text("{}")
    out = tmp_path / "out"
    with pytest.raises(UserError, match="whisper model tiny.en could not be loaded"):
        run(compose(_overrides(models, out, media / "vr_face1.mp4")))
    od = OutputDir(out)
    assert od.read_rejects().num_rows == 0 and od.summaries() == []  # redone by the next run, never worker_lost
