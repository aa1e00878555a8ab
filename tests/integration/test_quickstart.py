"""README's quick start on the shipped example, as a user types it: it keeps the clip's utterance,
and the terminal shows no deprecation warning, no library chatter and no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_quickstart_on_the_example(tmp_path, models_dir):
    out = tmp_path / "out"
    env = {**os.environ, "MIKUPAL_MODELS_DIR": str(models_dir), "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    p = subprocess.run([sys.executable, "-m", "mikupal.cli", "run", "input=examples/", f"output={out}", "profile=cpu",
                        "separation=none", "asr.model=tiny.en", "labeler=none", "offline=true"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["videos"] == 1 and report["segments"] >= 1
    first = p.stdout.strip().splitlines()[0]  # the result in words, pointing at the report
    assert first.startswith(f"kept {report['kept_seconds']:.1f} s of {report['input_seconds']:.1f} s in ") and \
        first.endswith(f" -> {out / 'report.html'}"), p.stdout
    for noise in ("Deprecat", "Traceback", "[ WARN", "INFO"):
        assert noise not in p.stderr, p.stderr
    assert sorted(Path(s["path"]).name for s in report["skipped_files"]) == ["README.md", "talking_face.LICENSE"]
    assert report["accounting"]["reconciles"], report["accounting"]
    page = (out / "report.html").read_text()
    assert "Skipped files (2, not media)" in page and "talking_face.LICENSE" in page
    logs = list((out / "logs").glob("run-*.log"))  # the libraries' lines went to the run's log instead
    assert logs and "faster_whisper: Processing audio" in logs[0].read_text()
    assert report["config"]["engine"]["kind"] == "local", "one machine, no GPU: the default runs in this process"
