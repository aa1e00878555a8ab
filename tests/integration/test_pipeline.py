"""The whole pipeline through Ray on the shared clips: every input ends kept or rejected, the report
agrees with the Parquet rows, a SIGKILLed run resumes to the same rows, GPU stages land on GPU slots,
and `ray job submit` runs it on a `ray start` cluster."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from mikupal.config import compose
from mikupal.engine.commit import OutputDir
from mikupal.engine.run import run

CLIPS = [f"vr_face{i}.mp4" for i in range(1, 6)]


def base_overrides(models_dir: Path, out: Path, inp: Path, *extra: str) -> list[str]:
    return [
        f"input={inp}", f"output={out}", f"models_dir={models_dir}", "profile=cpu", "separation=none",
        "asr.model=tiny.en", "offline=true", "engine.progress=false", *extra,
    ]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, media) -> Path:
    d = tmp_path_factory.mktemp("inputs")
    for name in CLIPS:
        (d / name).symlink_to(media / name)
    (d / "broken.mp4").write_text("not a video at all\n" * 100)
    (d / "empty.mp4").write_bytes(b"")
    # audio only, under a video name (on a fresh clone: the example clip's own audio track)
    if (Path(str(media)) / "jfk.flac").is_file():
        shutil.copy(media / "jfk.flac", d / "speech_only.mp4")
    else:
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(media / "vr_face1.mp4"), "-vn", "-c:a", "copy",
                        "-f", "mp4", str(d / "speech_only.mp4")], check=True, timeout=60)
    return d


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, ray_session, models_dir, inputs):
    pytest.importorskip("tests.fakes.gemini_server")
    from tests.fakes.gemini_server import FakeGemini

    out = tmp_path_factory.mktemp("run")
    with FakeGemini(api_key="test-key-not-secret") as server:
        os.environ["GEMINI_API_KEY"] = "test-key-not-secret"
        cfg = compose(base_overrides(models_dir, out, inputs, "labeler=gemini", f"labeler.base_url={server.url}"))
        report = run(cfg)
    return out, report


def test_every_input_is_kept_or_rejected(full_run, inputs):
    out, report = full_run
    od = OutputDir(out)
    seg, rej = od.read_segments(), od.read_rejects()
    sources = {str(p) for p in inputs.iterdir()}
    kept_sources = set(seg.column("source").to_pylist())
    rejected_sources = set(rej.column("source").to_pylist())
    assert sources <= kept_sources | rejected_sources
    reasons = {(s, r) for s, r in zip(rej.column("source").to_pylist(), rej.column("reason").to_pylist())}
    assert (str(inputs / "broken.mp4"), "unreadable_container") in reasons
    assert (str(inputs / "empty.mp4"), "empty_file") in reasons
    assert (str(inputs / "speech_only.mp4"), "no_video_stream") in reasons
    assert len(kept_sources) >= 3, "most talking clips must yield a kept utterance"
    assert report["videos"] == len(sources)


def test_report_agrees_with_parquet(full_run):
    out, report = full_run
    seg = OutputDir(out).read_segments()
    kept = sum(e - s for s, e in zip(seg.column("start").to_pylist(), seg.column("end").to_pylist()))
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["kept_seconds"] == pytest.approx(kept, abs=1e-3)
    assert on_disk["segments"] == seg.num_rows
    assert on_disk["speed_ratio"] > 0 and on_disk["wall_seconds"] > 0
    assert on_disk["retention"] == pytest.approx(kept / on_disk["input_seconds"], rel=1e-3)
    assert [f["stage"] for f in on_disk["funnel"]] == ["input", "probe", "vad", "segments", "vision", "label"]
    assert on_disk["funnel"][-1]["seconds"] == pytest.approx(kept, abs=1e-2)
    assert (out / "report.html").read_text().count("<audio") == seg.num_rows
    assert "test-key-not-secret" not in (out / "report.json").read_text()


def test_dataset_contract_and_loaders(full_run):
    out, _ = full_run
    table = pads.dataset(out / "segments", format="parquet").to_table()
    for col in ("segment_id", "video_id", "source", "start", "end", "text", "language", "words", "audio_path",
                "clip_path", "speaker_boxes", "asd_score", "emotions", "primary_emotion", "rationale",
                "labeler_model", "input_tokens", "output_tokens", "cost_usd"):
        assert col in table.column_names
    for row in table.to_pylist():
        assert (out / row["audio_path"]).is_file() and (out / row["clip_path"]).is_file()
        assert len(row["emotions"]) == 26 and row["primary_emotion"]
        n_frames = round((row["end"] - row["start"]) * 25)
        assert abs(len(row["speaker_boxes"]) - n_frames) <= 1
        assert all(len(b) == 4 for b in row["speaker_boxes"])
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("parquet", data_files=str(out / "segments" / "*.parquet"), split="train")
    assert len(ds) == table.num_rows
    assert set(ds[0]["emotions"][0]) == {"name", "intensity"}


def test_every_segment_is_described(full_run):
    """Measured prosody in plausible ranges, and what the labeler heard (fake Gemini, prompt v2)."""
    out, _ = full_run
    rows = pads.dataset(out / "segments", format="parquet").to_table().to_pylist()
    assert rows
    for r in rows:
        assert 60 <= r["f0_median_hz"] <= 400 and r["f0_range_hz"] > 0 and r["f0_range_semitones"] > 0
        assert 1.5 <= r["syllables_per_second"] <= 8, r["text"]
        assert -60 <= r["loudness_lufs"] <= 0 and r["peak_dbfs"] <= 0.5 and r["vocals_snr_db"] is not None
        assert r["pitch_bin"] and r["speaking_rate_bin"] and r["loudness_bin"] and r["noise_bin"]
        assert r["caption"] and r["caption_source"] == "labeler" and r["prompt_version"] == "v2"
        assert r["perceived_gender"] in ("female", "male", "unsure") and r["perceived_age"] and r["accent"]
        assert all(0 <= e["start"] <= e["end"] <= r["duration"] for e in r["nonverbal_events"])
    assert any(r["nonverbal_events"] for r in rows)


def _mikupal(args: list[str], **kw) -> subprocess.Popen:
    env = dict(os.environ, RAY_AUTH_MODE="disabled", HF_HUB_OFFLINE="1")
    env.pop("RAY_ADDRESS", None)
    return subprocess.Popen([sys.executable, "-m", "mikupal.cli", "run", *args], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _segment_ids(out: Path) -> list[str]:
    return sorted(OutputDir(out).read_segments().column("segment_id").to_pylist())


def test_sigkill_mid_run_then_resume_equals_uninterrupted(tmp_path, models_dir, inputs):
    args = lambda out: base_overrides(models_dir, out, inputs, "labeler=none", "engine=sequential")  # noqa: E731
    ref = tmp_path / "ref"
    p = _mikupal(args(ref))
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-2000:]

    crashed = tmp_path / "crashed"
    p = _mikupal(args(crashed))
    done = crashed / ".state" / "done"
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:
        # kill once some videos are committed but not all: mid-way through the run
        if done.is_dir() and 2 <= len(list(done.glob("*.json"))) < 7:
            break
        time.sleep(0.05)
    assert p.poll() is None, "the run finished before it could be killed"
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert len(list(done.glob("*.json"))) < 8

    p = _mikupal(args(crashed))
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-2000:]
    assert _segment_ids(crashed) == _segment_ids(ref)
    ref_rej = sorted(OutputDir(ref).read_rejects().column("item_id").to_pylist())
    assert sorted(OutputDir(crashed).read_rejects().column("item_id").to_pylist()) == ref_rej


GPU_SCRIPT = textwrap.dedent(
    """
    import json, sys, ray
    from mikupal.config import compose
    from mikupal.engine import ray_pipeline
    from mikupal.records import WorkItem
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, object_store_memory=200 * 2**20, logging_level="ERROR")
    cfg = compose(sys.argv[1:])
    item = WorkItem(source=cfg.input, path=cfg.input, video_id="gpu-test")
    seen = {}
    for it in ray_pipeline.stream(cfg, __import__("pathlib").Path(cfg.output), [item]):
        for t in it.times:
            seen.setdefault(t.stage, set()).add(t.gpus)
    print(json.dumps({k: sorted(v) for k, v in seen.items()}))
    """
)


def test_gpu_stages_are_placed_on_gpu_slots(tmp_path, models_dir, media):
    """Logical GPUs (ray.init(num_gpus=2)): stages that ask for GPUs get one, CPU stages get none."""
    script = tmp_path / "gpu.py"
    script.write_text(GPU_SCRIPT)
    overrides = base_overrides(models_dir, tmp_path / "out", media / "vr_face1.mp4", "labeler=none",
                               "asr.resources.num_gpus=0.5", "asr.resources.num_cpus=0.25",
                               "faces.resources.num_gpus=0.5", "faces.resources.num_cpus=0.25",
                               "separation.resources.num_gpus=0.25")
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    env.pop("RAY_ADDRESS", None)
    r = subprocess.run([sys.executable, str(script), *overrides], capture_output=True, text=True, timeout=600, env=env,
                       cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 0, r.stderr[-3000:]
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    for stage in ("separate", "asr", "vision"):
        assert seen[stage] and all(g in ("0", "1") for g in seen[stage]), (stage, seen)
    for stage in ("probe", "vad"):
        assert seen[stage] == [""], (stage, seen)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_job_submit_to_a_local_cluster(tmp_path, models_dir, media):
    ray_bin = Path(sys.executable).with_name("ray")
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    env.pop("RAY_ADDRESS", None)
    gcs, dash, agent = _free_port(), _free_port(), _free_port()
    temp = Path("/tmp") / f"rayjob{os.getpid()}"
    # --block keeps the head in the foreground of its own process group: the test stops exactly
    # this cluster (not `ray stop`, which would end every Ray on the machine, the test session's too)
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--block", f"--port={gcs}", "--num-cpus=2", "--include-dashboard=true",
         f"--dashboard-port={dash}", "--dashboard-host=127.0.0.1", f"--dashboard-agent-listen-port={agent}",
         f"--temp-dir={temp}", "--disable-usage-stats"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        ok = subprocess.run([str(ray_bin), "job", "list", f"--address=http://127.0.0.1:{dash}"],
                            capture_output=True, env=env, timeout=60).returncode == 0
        if ok:
            break
        assert head.poll() is None, "ray start --head exited"
        time.sleep(1)
    try:
        out = tmp_path / "job_out"
        cmd = [str(ray_bin), "job", "submit", f"--address=http://127.0.0.1:{dash}", "--",
               sys.executable, "-m", "mikupal.cli", "run",
               *base_overrides(models_dir, out, media / "vr_face2.mp4", "labeler=none")]
        deadline = time.time() + 300
        while True:  # the job agent comes up a little after the dashboard answers
            job = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env,
                                 cwd=Path(__file__).resolve().parents[2])
            if "No available agent" not in job.stderr or time.time() > deadline:
                break
            time.sleep(2)
        assert job.returncode == 0, (job.stdout + job.stderr)[-3000:]
        report = json.loads((out / "report.json").read_text())
        assert report["videos"] == 1
        assert (out / "segments").is_dir() and (out / ".state" / "done").is_dir()
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
