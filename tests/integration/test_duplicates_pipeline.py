"""The same speech twice in one input, through the whole pipeline: a shared clip, its re-encoded and
re-scaled copy, and a compilation that re-cuts it after another clip. The copies are rejected
`duplicate_segment` naming the kept segment of the clip whose path sorts first; the other clip of
the compilation stays."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mikupal.config import compose
from mikupal.engine.commit import OutputDir
from mikupal.engine.run import run

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, timeout=120)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, media) -> Path:
    d = tmp_path_factory.mktemp("dup_inputs")
    (d / "a_clip.mp4").symlink_to(media / "vr_face2.mp4")
    # re-encoded (another bitrate and codec settings) and re-scaled to 3/4
    ffmpeg("-i", str(media / "vr_face2.mp4"), "-vf", "scale=634:634", "-c:v", "libx264", "-crf", "30", "-preset",
           "veryfast", "-c:a", "aac", "-b:a", "64k", str(d / "b_reupload.mp4"))
    # a compilation: another clip, then the first one re-cut (from 0.3 s), both scaled to 700x700 at 25 fps
    ffmpeg("-i", str(media / "vr_face4.mp4"), "-ss", "0.3", "-i", str(media / "vr_face2.mp4"), "-filter_complex",
           "[0:v]scale=700:700,fps=25,setsar=1[v0];[1:v]scale=700:700,fps=25,setsar=1[v1];"
           "[0:a]aresample=44100[a0];[1:a]aresample=44100[a1];[v0][a0][v1][a1]concat=n=2:v=1:a=1[v][a]",
           "-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac",
           str(d / "c_compilation.mp4"))
    return d


def test_copies_are_rejected_naming_the_kept_segment(tmp_path, ray_session, models_dir, inputs):
    out = tmp_path / "out"
    cfg = compose([f"input={inputs}", f"output={out}", f"models_dir={models_dir}", "profile=cpu", "separation=none",
                   "asr.model=tiny.en", "offline=true", "engine.progress=false", "labeler=none",
                   "quality.kind=none"])
    run(cfg)
    od = OutputDir(out)
    kept = od.read_segments().to_pylist()
    dups = [r for r in od.read_rejects().to_pylist() if r["reason"] == "duplicate_segment"]
    by_source = {}
    for r in kept:
        by_source.setdefault(Path(r["source"]).name, []).append(r)
    assert by_source.get("a_clip.mp4"), "the clip whose path sorts first keeps its speech"
    assert "b_reupload.mp4" not in by_source, "the re-encoded, re-scaled copy keeps nothing"
    kept_ids = {r["segment_id"] for r in by_source["a_clip.mp4"]}
    assert {Path(r["source"]).name for r in dups} >= {"b_reupload.mp4", "c_compilation.mp4"}
    for r in dups:
        print(Path(r["source"]).name, f"{r['start']:.2f}-{r['end']:.2f}", r["message"])  # the evidence, with -s
        named = r["message"].split("same speech as ", 1)[1].split(" ", 1)[0]
        assert named in kept_ids and r["stage"] == "dedup", r["message"]
    # the compilation's other clip (vr_face4, first 6.6 s) is its own speech and stays
    assert any(r["start"] < 6.0 for r in by_source.get("c_compilation.mp4", []))
    # labeler=none: the caption is made from the measured bins, and says so
    assert all(r["caption"] and r["caption_source"] == "measured" and r["pitch_bin"] for r in kept)
    # what is kept is said once: no two kept segments are copies of each other
    from mikupal.speaker.duplicates import first_copies, utterance

    assert first_copies([utterance(r) for r in kept]) == {}
