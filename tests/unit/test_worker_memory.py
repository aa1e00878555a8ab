"""What a process imports is what it keeps: the driver plans the stages without torch (the vision
stage's models come with it in its own workers), and no worker imports librosa (mel.py)."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(m for m in ('torch', 'librosa', 'numba', 'cv2') if m in sys.modules))"
    return set(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True).stdout.split())


def test_the_driver_plans_every_stage_without_torch():
    loaded = _modules_after(
        "from mikupal.config import compose\n"
        "from mikupal.engine import ray_pipeline, run, sequential\n"
        "from mikupal.engine.stages import stage_classes, video_group_size\n"
        "cfg = compose(['profile=cpu', 'labeler=gemini'])\n"
        "[cls(cfg, '/tmp').resources for cls in stage_classes(cfg)]\n"
        "video_group_size(cfg)\n")
    assert "torch" not in loaded and "librosa" not in loaded
