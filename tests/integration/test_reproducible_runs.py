"""The same input and config give the same dataset: run after run (the default engine: local threads
here), after a crash and a resume, under Ray, and on the sequential engine with one thread per
library (as each pool worker has).

The corpus is small clips (short videos share whisper windows, `audio/packing.py`) and one video
longer than a window, in one call's group: the packing, the order the workers finish in and the
resumed run's redone group must all come out the same."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mikupal.config import compose
from mikupal.engine.commit import OutputDir
from mikupal.engine.run import run
from tests.output_fingerprint import differences, fingerprint

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not on PATH")]

CLIPS = [f"vr_face{i}.mp4" for i in range(1, 6)]


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, timeout=120)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, media) -> Path:
    """The five clips, four 3-4 s cuts of them, and one 34 s video (a window and more)."""
    d = tmp_path_factory.mktemp("corpus")
    for name in CLIPS:
        (d / name).symlink_to(media / name)
    for i, (name, start, length) in enumerate([(CLIPS[0], 0.5, 3.2), (CLIPS[1], 1.0, 3.6), (CLIPS[3], 0.0, 4.0),
                                               (CLIPS[4], 1.5, 3.4)]):
        _ffmpeg("-ss", str(start), "-t", str(length), "-i", str(media / name), "-c:v", "libx264", "-preset", "ultrafast",
                "-c:a", "aac", str(d / f"cut{i}.mp4"))
    lst = d.parent / "long.txt"
    lst.write_text("".join(f"file '{media / n}'\n" for n in CLIPS + CLIPS[:1]))
    _ffmpeg("-f", "concat", "-safe", "0", "-i", str(lst), "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
            str(d / "long.mp4"))
    return d


def _run(models_dir: Path, corpus: Path, out: Path, *extra: str) -> dict:
    cfg = compose([f"input={corpus}", f"output={out}", f"models_dir={models_dir}", "profile=cpu", "separation=none",
                   "asr.model=tiny.en", "offline=true", "labeler=none", "engine.progress=false", "asr.pack=true", *extra])
    return run(cfg)


@pytest.fixture(scope="module")
def first(tmp_path_factory, ray_session, models_dir, corpus) -> Path:
    out = tmp_path_factory.mktemp("first")
    _run(models_dir, corpus, out)
    return out


def test_two_runs_give_the_same_dataset(first, tmp_path, models_dir, corpus):
    fp = fingerprint(first)
    assert len({r["video_id"] for r in fp["segments"]}) >= 6, "most clips keep an utterance"
    assert fp["rejects"], "some stretches are rejected (pauses, no transcript)"
    second = tmp_path / "second"
    _run(models_dir, corpus, second)
    assert differences(first, second) == []


def test_a_resumed_run_equals_an_uninterrupted_one(first, tmp_path, models_dir, corpus):
    """A crash left one short video of the first group uncommitted: the re-run redoes it with the
    short videos of its group (their text depends on it) and leaves the long one committed."""
    resumed = tmp_path / "resumed"
    shutil.copytree(first, resumed)
    od = OutputDir(resumed)
    summaries = {s.source: s for s in od.summaries()}
    lost = summaries[str(corpus / "cut1.mp4")]
    long_marker = od.marker(summaries[str(corpus / "long.mp4")].key)
    long_before = long_marker.stat().st_mtime_ns
    od.clear_unfinished(lost.key)
    report = _run(models_dir, corpus, resumed)
    assert differences(first, resumed) == []
    assert long_marker.stat().st_mtime_ns == long_before, "the long video was not redone"
    assert report["videos"] >= 9


def test_the_sequential_engine_gives_the_same_dataset(first, tmp_path, models_dir, corpus):
    seq = tmp_path / "seq"
    _run(models_dir, corpus, seq, "engine=sequential", "engine.threads=1")
    assert differences(first, seq) == []


def test_the_ray_engine_gives_the_same_dataset(first, tmp_path, ray_session, models_dir, corpus):
    on_ray = tmp_path / "ray"
    _run(models_dir, corpus, on_ray, "engine=ray")
    assert differences(first, on_ray) == []


def test_light_stages_in_one_worker_give_the_same_dataset(first, tmp_path, models_dir, corpus):
    """The CPU profile runs its light stages (probe, separate, vad; speaker and quality) in shared
    workers (`engine.fuse_light_stages`, on by default): a worker per stage gives the same dataset,
    and both reports time and name every stage on its own."""
    own = tmp_path / "own_workers"
    report = _run(models_dir, corpus, own, "engine.fuse_light_stages=false")
    assert differences(first, own) == []
    fused = json.loads((first / "report.json").read_text())
    assert set(fused["stages"]) == set(report["stages"]) >= {"probe", "vad", "speaker", "quality", "vision"}
