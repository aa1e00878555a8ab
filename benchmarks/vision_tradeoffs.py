"""What each cost-saving choice of the vision stage costs in speaker accuracy, on CPU.

Test set, made from the five real talking-face clips with ffmpeg (cached in benchmarks/.cache/vision/):
  * 10 side-by-side composites: clip i talking + the first frame of clip i+1 held, both orders,
    with clip i's audio (the speaker must be the talking side: box centre on that half on >= 90%
    of frames, and the item kept);
  * the 5 clips as they are (kept, one speaker);
  * the 5 clips with their audio replaced by silence (must be rejected);
  * the 5 clips dubbed with another clip's voice: a face that talks, but not with the voice heard
    (must be rejected: the off-screen-voice case, and the hard one).
Each configuration runs the real VisionStage on all 20 items; CPU seconds are the process's CPU
time (all threads) per second of video, so they hold on a loaded machine too.

    python -m benchmarks.vision_tradeoffs                # all configurations -> benchmarks/vision_tradeoffs.md
    python -m benchmarks.vision_tradeoffs --only base lr-asd
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CACHE = ROOT / "benchmarks" / ".cache" / "vision"
CLIPS = [SHARED / "media" / f"vr_face{i}.mp4" for i in range(1, 6)]

# name -> (overrides, what it trades)
CONFIGS: dict[str, tuple[list[str], str]] = {
    "base": ([], "defaults: decode 640 px, YuNet on every 5th frame at 320 px, ASD (bf16) on a 1 s first pass, then <= 3 s of each candidate track (one 3 s window) unless one face clearly speaks, offset search +-5 frames"),
    "asd-all": (["asd.max_scored_seconds=null"], "ASD on every frame of every candidate track"),
    "asd-4s": (["asd.max_scored_seconds=4", "asd.scored_window_seconds=4"], "ASD on one 4 s window"),
    "asd-2x2s": (["asd.max_scored_seconds=4", "asd.scored_window_seconds=2"], "ASD on two 2 s windows"),
    "asd-2s": (["asd.max_scored_seconds=2", "asd.scored_window_seconds=2"], "ASD on one 2 s window"),
    "asd-1s": (["asd.max_scored_seconds=1", "asd.scored_window_seconds=1"], "ASD on one 1 s window"),
    "full-pass": (["asd.first_pass_seconds=null"], "no short first pass: every candidate track scored on the full 3 s budget"),
    "first-2s": (["asd.first_pass_seconds=2"], "a 2 s first pass (the full 3 s only when it leaves doubt)"),
    "no-offset": (["asd.max_offset_frames=0"], "no audio/video offset search"),
    "fp32": (["asd.precision=fp32"], "ASD in fp32 instead of bf16"),
    "lr-asd": (["asd=lr_asd"], "LR-ASD instead of Light-ASD (same budget)"),
    "det-every-1": (["faces.detect_every=1"], "detect on every frame"),
    "det-every-12": (["faces.detect_every=12"], "detect on every 12th frame"),
    "det-160px": (["faces.input_width=160"], "detector input 160 px wide"),
    "det-640px": (["faces.input_width=640"], "detector input 640 px wide"),
    "work-480px": (["faces.work_width=480"], "decode at 480 px wide (crops from smaller faces)"),
}
# every configuration also gets these (the table's rows share them)
COMMON = ["profile=cpu"]


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", *args], check=True, timeout=300)


def _probe(path: Path, entry: str, stream: bool = False) -> str:
    cmd = ["ffprobe", "-v", "error"] + (["-select_streams", "v:0"] if stream else [])
    cmd += ["-show_entries", entry, "-of", "csv=p=0", str(path)]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def side_by_side(live: Path, frozen: Path, out: Path, live_left: bool, height: int = 700) -> Path:
    """`live` talking beside the first frame of `frozen` held, both scaled to `height`, with live's audio."""
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".frozen.png")
    _ffmpeg("-i", str(frozen), "-frames:v", "1", str(png))
    dur = f"{float(_probe(live, 'format=duration')):.3f}"
    rate = _probe(live, "stream=r_frame_rate", stream=True)  # hstack of two rates never ends (ffmpeg 5.1)
    order = "[l][r]" if live_left else "[r][l]"
    graph = f"[0:v]scale=-2:{height},setsar=1[l];[1:v]scale=-2:{height},setsar=1[r];{order}hstack=inputs=2:shortest=1[v]"
    _ffmpeg("-i", str(live), "-loop", "1", "-framerate", rate, "-t", dur, "-i", str(png), "-filter_complex", graph,
            "-map", "[v]", "-map", "0:a", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-t", dur, str(out))
    png.unlink(missing_ok=True)
    return out


def silenced(clip: Path, out: Path) -> Path:
    """The clip's video with its audio replaced by digital silence."""
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        _ffmpeg("-i", str(clip), "-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-map", "0:v", "-map", "1:a",
                "-c:v", "copy", "-c:a", "aac", "-shortest", str(out))
    return out


def dubbed(video: Path, audio: Path, out: Path) -> Path:
    """`video`'s pictures with `audio`'s sound: a face that talks, but not with this voice (off-screen voice)."""
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        _ffmpeg("-i", str(video), "-i", str(audio), "-map", "0:v", "-map", "1:a", "-c", "copy", "-shortest", str(out))
    return out


def test_set(cache: Path = CACHE) -> list[dict]:
    items = []
    for i, clip in enumerate(CLIPS):
        other = CLIPS[(i + 1) % len(CLIPS)]
        for left in (True, False):
            p = side_by_side(clip, other, cache / f"sbs_{i + 1}{'L' if left else 'R'}_{(i + 1) % 5 + 1}.mp4", left)
            items.append({"kind": "composite", "path": p, "talking_left": left})
    for clip in CLIPS:
        items.append({"kind": "single", "path": clip})
    for i, clip in enumerate(CLIPS):
        items.append({"kind": "silent", "path": silenced(clip, cache / f"silent_{i + 1}.mp4")})
    for i, clip in enumerate(CLIPS):
        j = (i + 2) % len(CLIPS)
        items.append({"kind": "dubbed", "path": dubbed(clip, CLIPS[j], cache / f"dubbed_{i + 1}_voice{j + 1}.mp4")})
    return items


# ------------------------------------------------------------------ running the stage


def models_dir(tmp: Path) -> Path:
    md = tmp / "models"
    md.mkdir(parents=True, exist_ok=True)
    for k in ("yunet", "light-asd", "lr-asd"):
        if not (md / k).exists():
            os.symlink(SHARED / "models" / k, md / k)
    return md


def work_item(path: Path, work: Path):
    """A segment-level WorkItem covering the whole file, with its 16 kHz analysis and 44.1 kHz 'vocals'."""
    import soundfile as sf

    from mikupal import media
    from mikupal.records import SpeechSegment, segment_id
    from mikupal.records import Payload, WorkItem

    v = media.probe(path)
    d = work / v.video_id
    d.mkdir(parents=True, exist_ok=True)
    a16, voc = d / "analysis.wav", d / "vocals.flac"
    if not a16.is_file():
        sf.write(a16, media.decode_audio(path), media.ANALYSIS_RATE)
        sf.write(voc, media.decode_audio(path, sample_rate=44100, mono=False).T, 44100)
    seg = SpeechSegment(segment_id=segment_id(v.video_id, 0.0), video_id=v.video_id, source=str(path), start=0.0, end=v.duration, text="")
    return WorkItem(source=str(path), video_id=v.video_id, status="segment", fanout_total=1, data=Payload(video=v, vocals_path=str(voc), analysis_path=str(a16), segment=seg))


def voiced_positive(item, tracks) -> float | None:
    """Of the speaker track's scored frames where the voice is audible, the share ASD calls speaking."""
    from mikupal import media
    from mikupal.vision.attribution import voiced_frames

    if item.data.speaker_track is None:
        return None
    tr = next(t for t in tracks if t.track_id == item.data.speaker_track)
    seg = item.data.segment
    n = len(item.data.speaker_boxes)
    v = voiced_frames(media.decode_audio(item.data.analysis_path, seg.start, seg.end), n)
    s = np.asarray(tr.asd_scores)
    f = np.asarray(tr.frames)
    ok = np.isfinite(s) & v[f]
    return float((s[ok] > 0).mean()) if ok.any() else None


def run_config(name: str, overrides: list[str], items: list[dict], tmp: Path) -> dict:
    import torch

    from mikupal.config import compose
    from mikupal.stages.vision import VisionStage

    torch.set_num_threads(1)
    cfg = compose([f"models_dir={models_dir(tmp)}", *COMMON, *overrides])
    stage = VisionStage(cfg, tmp / f"out_{name}")
    stage.setup()
    stage._ready = True
    res = {"name": name, "composite_ok": 0, "composite_n": 0, "single_ok": 0, "single_n": 0, "silent_ok": 0,
           "silent_n": 0, "dubbed_ok": 0, "dubbed_n": 0, "seconds": 0.0, "cpu": 0.0, "wall": 0.0, "pos": [], "rejects": [], "offsets": []}
    for it in items:
        if it["kind"] == "dubbed" and name != "base":
            continue  # no ASD model here rejects them (see the note): measured once
        wi = work_item(it["path"], tmp / "work")
        c0, w0 = time.process_time(), time.perf_counter()
        out = stage.run_item(wi)[0]
        res["cpu"] += time.process_time() - c0
        res["wall"] += time.perf_counter() - w0
        res["seconds"] += wi.data.segment.end - wi.data.segment.start
        kind = it["kind"]
        res[f"{kind}_n"] += 1
        kept = out.status != "dropped"
        reason = out.rejects[-1].reason if out.rejects else None
        if kind in ("silent", "dubbed"):
            res[f"{kind}_ok"] += int(not kept)
        elif kind == "single":
            res["single_ok"] += int(kept and len(stage.last_tracks) == 1)
            p = voiced_positive(out, stage.last_tracks)
            if p is not None:
                res["pos"].append(p)
        else:
            width = out.data.video.width
            if kept:
                xc = np.array([(b[0] + b[2]) / 2 for b in out.data.speaker_boxes])
                on_side = (xc < width / 2) if it["talking_left"] else (xc >= width / 2)
                res["composite_ok"] += int(on_side.mean() >= 0.9)
        if kind in ("silent", "dubbed"):
            res["rejects"].append(f"{it['path'].name}:{reason or 'KEPT'}")
        elif not kept:
            res["rejects"].append(f"{it['path'].name}:{reason}")
        res["offsets"].append(stage.last_offset)
    res["timings"] = {k: v for k, v in stage.steps.timings.items()}
    res["counts"] = dict(stage.steps.counts)
    return res


def table(results: list[dict]) -> str:
    lines = [
        "| config | what it trades | composites: speaker on talking side | clips kept | silent rejected | other voice rejected | ASD+ on voiced frames (clips, mean / min) | CPU s per video s | x real time on 2 cores (vision alone) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        what = CONFIGS[r["name"]][1]
        pos = r["pos"]
        pos_s = f"{np.mean(pos):.2f} / {np.min(pos):.2f}" if pos else "-"
        cps = r["cpu"] / r["seconds"]
        lines.append(
            f"| {r['name']} | {what} | {r['composite_ok']}/{r['composite_n']} | {r['single_ok']}/{r['single_n']} | "
            f"{r['silent_ok']}/{r['silent_n']} | {str(r['dubbed_ok']) + '/' + str(r['dubbed_n']) if r['dubbed_n'] else '-'} | {pos_s} | {cps:.3f} | {2 / cps:.1f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", help="configuration names (default: all)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "vision_tradeoffs.md"))
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "vision_tradeoffs.jsonl"))
    args = ap.parse_args(argv)
    if not all(c.is_file() for c in CLIPS):
        print(f"clips missing under {SHARED / 'media'}", file=sys.stderr)
        return 2
    names = args.only or list(CONFIGS)
    items = test_set()
    results = []
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for name in names:
            t0 = time.perf_counter()
            r = run_config(name, CONFIGS[name][0], items, tmp)
            results.append(r)
            print(f"{name}: composites {r['composite_ok']}/{r['composite_n']} clips {r['single_ok']}/{r['single_n']} "
                  f"silent {r['silent_ok']}/{r['silent_n']} dubbed {r['dubbed_ok']}/{r['dubbed_n']} pos {np.round(r['pos'], 2).tolist()} "
                  f"cpu/s {r['cpu'] / r['seconds']:.3f} ({time.perf_counter() - t0:.0f} s) rejects {r['rejects']} offsets {r['offsets']}",
                  flush=True)
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            with open(args.json, "a") as f:
                f.write(json.dumps({k: (str(v) if isinstance(v, Path) else v) for k, v in r.items()}) + "\n")
    md = table(results)
    print(md)
    if not args.only:
        Path(args.out).write_text(HEADER + md + "\n" + footer(results))
    return 0


HEADER = """# Vision: cost vs speaker accuracy (CPU)

Produced by `python -m benchmarks.vision_tradeoffs` (the real `VisionStage`, Light-ASD unless noted,
torch on one thread). Test set: 10 side-by-side composites (clip i talking beside a held first frame of
clip i+1, both orders, clip i's audio), the 5 clips as they are, the 5 clips with silent audio, the 5
clips dubbed with the voice of clip i+2 (a talking face that is not the voice heard; base only);
111 s of video per configuration (137 s for base, which adds the dubbed clips). "CPU s per video s" is process CPU time (all threads) per second of
video for the whole stage (decode, shot cuts, detection, tracking, crops, MFCC, ASD, clip export); the
last column is what that means on 2 cores with nothing else running.

"""


def footer(results: list[dict]) -> str:
    base = next((r for r in results if r["name"] == "base"), results[0])
    total = sum(base["timings"].values()) or 1.0
    parts = ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(base["timings"].items(), key=lambda kv: -kv[1]))
    return f"\nWhere the base configuration's wall time goes: {parts}.\n"


if __name__ == "__main__":
    raise SystemExit(main())
