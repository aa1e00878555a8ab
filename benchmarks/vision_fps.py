"""Vision stage throughput on CPU for a 720p30 input, beside ffmpeg's decode-only speed on the same file.

Input: benchmarks/.cache/base_720p30_1min.mp4 (the five talking-face clips scaled and padded to
1280x720, 30 fps, looped to 60 s; made by benchmarks.inputs). The whole minute is cut into
consecutive 5 s utterances (a worst case: real utterances leave the pauses out) and each goes
through the real VisionStage with the default CPU configuration. Reported: source frames (30 fps)
per wall second and per CPU second, x real time, where the time goes, and ffmpeg decoding the same
file to null with 1 thread and with its default threads.

    python -m benchmarks.vision_fps            # -> benchmarks/vision_fps.md
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.inputs import base_minute  # noqa: E402
from benchmarks.vision_tradeoffs import models_dir  # noqa: E402

UTTERANCE_S = 5.0


def ffmpeg_decode(path: Path, threads: int | None) -> tuple[float, float]:
    """(wall s, CPU s) of ffmpeg decoding the video stream to null."""
    cmd = ["ffmpeg", "-v", "error", "-nostdin"]
    if threads is not None:
        cmd += ["-threads", str(threads)]
    cmd += ["-i", str(path), "-map", "0:v:0", "-f", "null", "-"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "vision_fps.md"))
    ap.add_argument("overrides", nargs="*", help="config overrides, e.g. asd=lr_asd")
    args = ap.parse_args(argv)

    import torch

    from mikupal import media
    from mikupal.config import compose
    from mikupal.stages.vision import VisionStage
    from benchmarks.vision_tradeoffs import work_item

    torch.set_num_threads(1)
    path = base_minute()
    info = media.probe(path)
    src_fps = info.fps or 30.0
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        cfg = compose([f"models_dir={models_dir(tmp)}", "profile=cpu", *args.overrides])
        stage = VisionStage(cfg, tmp / "out", threads=1)
        stage.setup()
        stage._ready = True
        whole = work_item(path, tmp / "work")
        items = []
        start = 0.0
        while start < info.duration - 0.5:
            it = whole.model_copy(deep=True)
            end = min(info.duration, start + UTTERANCE_S)
            it.data.segment = whole.data.segment.model_copy(update={"start": start, "end": end, "segment_id": f"{whole.video_id}_{int(start * 1000):09d}"})
            items.append(it)
            start = end
        c0, w0 = time.process_time(), time.perf_counter()
        outs = [stage.run_item(it)[0] for it in items]
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    seconds = sum(it.data.segment.end - it.data.segment.start for it in items)
    frames_src = seconds * src_fps
    kept = sum(o.status != "dropped" for o in outs)
    reasons = sorted({o.rejects[-1].reason for o in outs if o.rejects})
    ff1 = ffmpeg_decode(path, 1)
    ffd = ffmpeg_decode(path, None)
    load = os.getloadavg()

    fc, ac = cfg.faces, cfg.asd
    label = (
        f"vision stage (decode at 25 fps, {fc.work_width} px; shot cuts; {fc.kind} on every {fc.detect_every}th frame at "
        f"{fc.input_width} px; tracking; {ac.kind} ({'bf16' if stage.bf16 else 'fp32'}) on "
        f"{f'a {ac.first_pass_seconds:g} s first pass, then ' if ac.first_pass_seconds else ''}<= {ac.max_scored_seconds:g} s "
        f"per track, offsets +-{ac.max_offset_frames}; clip + audio export)"
    )
    rows = [
        (label, wall, cpu),
        ("ffmpeg decode only, -threads 1", *ff1),
        ("ffmpeg decode only, default threads", *ffd),
    ]
    lines = [
        "# Vision throughput on CPU, 720p30 input",
        "",
        "Produced by `" + " ".join(["python -m benchmarks.vision_fps", *args.overrides]) + "`.",
        "",
        f"Input: `{path.name}`, {info.width}x{info.height} @ {src_fps:g} fps, {info.duration:.1f} s (five talking-face clips "
        f"scaled+padded to 1280x720, looped); cut into {len(items)} consecutive {UTTERANCE_S:g} s utterances "
        f"({kept} kept{', rejects: ' + ', '.join(reasons) if reasons else ''}). Machine: {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}), shared with other jobs: load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} during the run, so wall times are pessimistic and "
        "CPU times are the fairer figure. Torch on 1 thread.",
        "",
        "| what | wall s | CPU s | source frames / wall s | source frames / CPU s | x real time (wall) | x real time on 2 free cores (from CPU) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, w, c in rows:
        lines.append(
            f"| {name} | {w:.1f} | {c:.1f} | {frames_src / w:.0f} | {frames_src / c:.0f} | {seconds / w:.1f}x | {2 * seconds / c:.1f}x |"
        )
    total = sum(stage.steps.timings.values()) or 1.0
    lines += [
        "",
        "Where the vision stage's time goes (wall, summed over utterances):",
        "",
        "| step | s | share | per video second |",
        "|---|---|---|---|",
    ]
    for k, v in sorted(stage.steps.timings.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {k} | {v:.2f} | {v / total:.0%} | {v / seconds * 1000:.0f} ms |")
    c = stage.steps.counts
    lines += [
        "",
        f"Frames at 25 fps: {c.get('frames', 0)} decoded, {c.get('detected_frames', 0)} through the detector, "
        f"{c.get('scored_frames', 0)} through ASD.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
