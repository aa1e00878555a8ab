"""Run safety with real `mikupal run` processes: a second writer on one output is refused in one line
while the first ends equal to a clean run; an output inside its input is never read back."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from mikupal.config import compose
from mikupal.engine.commit import OutputDir
from mikupal.engine.run import run
from tests.reliability import harness


def _wait_for_lock(out: Path, pid: int, timeout: float = 120.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if json.loads((out / ".lock").read_text() or "{}").get("pid") == pid:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise AssertionError("the first run never took the lock")


def test_a_concurrent_run_is_refused_and_the_first_equals_a_clean_run(tmp_path, fault_inputs, clean_ref, models_dir):
    out = tmp_path / "out"
    first = harness.start_cli(harness.overrides(models_dir, out, fault_inputs, "labeler=none", "engine=sequential"))
    try:
        _wait_for_lock(out, first.pid)
        t0 = time.monotonic()
        rc, stdout, stderr = harness.run_cli(harness.overrides(models_dir, out, fault_inputs, "labeler=none",
                                                               "engine=sequential"), timeout=120)
        refused_in = time.monotonic() - t0
        p = harness.start_cli([f"input={out}", "labeler=gemini"], command="label")
        _, lerr = p.communicate(timeout=120)
        lrc = p.returncode
        assert first.poll() is None, "the first run must still be running while the second is refused"
    finally:
        fout, ferr = first.communicate(timeout=600)
    assert rc == 2 and stdout == "", stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and f"pid {first.pid} on " in lines[0] and "in use" in lines[0], stderr
    assert refused_in < 30, refused_in
    assert lrc == 2 and f"pid {first.pid} on " in lerr and len(lerr.strip().splitlines()) == 1, lerr
    assert first.returncode == 0, ferr[-3000:]
    assert "Traceback" not in ferr and "Deprecat" not in ferr, ferr
    assert harness.diff(harness.snapshot(out), clean_ref["snap"]) == []
    assert (out / ".lock").read_text() == "", "released at the end"


def test_an_output_inside_its_input_is_never_read_back(tmp_path, media, models_dir):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(media / "vr_face1.mp4", videos / "talk.mp4")
    (videos / "notes.txt").write_text("not media\n")
    # an audio-only file (AAC in .m4a): an input, rejected at probe with a reason, never passed over
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(media / "vr_face1.mp4"), "-vn", "-c:a", "copy",
                    str(videos / "voice.m4a")], check=True, timeout=60)
    out = videos / "out"
    reports = [run(compose(harness.overrides(models_dir, out, videos, "labeler=none", "engine=sequential")))
               for _ in range(2)]
    assert any((out / "clips").rglob("*.mp4")), "the first run wrote clips inside the input folder"
    for report in reports:
        assert report["videos"] == 2  # talk.mp4 and voice.m4a; never the clips under out/
        assert [s["path"] for s in report["skipped_files"]] == [str(videos / "notes.txt")]
    assert reports[1]["videos_processed_this_run"] == 0  # the second run saw the same two inputs, done
    rej = OutputDir(out).read_rejects().to_pylist()
    assert [(r["source"], r["stage"], r["reason"]) for r in rej if r["start"] is None] == [
        (str(videos / "voice.m4a"), "probe", "no_video_stream")]
