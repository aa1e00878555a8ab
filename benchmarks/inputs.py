"""Long benchmark inputs made from the real talking-face clips: 720p30 H.264 + AAC, of a given length.

One 1-minute base is encoded from the five clips (each scaled and padded to 1280x720, 30 fps), then
longer files are concatenated from it without re-encoding, so a 60-minute input takes seconds.
Files are cached under benchmarks/.cache/ (ignored by git).

    python -m benchmarks.inputs --minutes 5 10 60
    python -m benchmarks.inputs --clips 120          # 120 clips of 3-6 s and the same seconds as one file
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "media"
CACHE = ROOT / "benchmarks" / ".cache"
CLIPS = [SHARED / f"vr_face{i}.mp4" for i in range(1, 6)]


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def base_minute(cache: Path = CACHE) -> Path:
    out = cache / "base_720p30_1min.mp4"
    if out.is_file():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    parts = []
    for i, clip in enumerate(CLIPS):
        part = cache / f"part{i}.mp4"
        _ffmpeg("-i", str(clip), "-vf", "scale=-2:720,pad=1280:720:(ow-iw)/2:0,fps=30", "-c:v", "libx264",
                "-preset", "veryfast", "-g", "60", "-c:a", "aac", "-ar", "44100", "-ac", "2", str(part))
        parts.append(part)
    lst = cache / "parts.txt"
    # ~28 s of clips: loop the list three times, cut at a minute
    lst.write_text("".join(f"file '{p}'\n" for p in parts * 3))
    _ffmpeg("-f", "concat", "-safe", "0", "-i", str(lst), "-t", "60", "-c", "copy", str(out))
    return out


def long_input(minutes: int, cache: Path = CACHE) -> Path:
    out = cache / f"talk_720p30_{minutes}min.mp4"
    if out.is_file():
        return out
    base = base_minute(cache)
    lst = cache / f"loop{minutes}.txt"
    lst.write_text(f"file '{base}'\n" * minutes)
    _ffmpeg("-f", "concat", "-safe", "0", "-i", str(lst), "-c", "copy", str(out))
    return out


def clip_lengths(count: int, seed: int = 0, low: float = 3.0, high: float = 6.0) -> list[float]:
    """Seeded clip lengths in [low, high] seconds (whole 1/30 s, so every cut is on a frame)."""
    import random

    rng = random.Random(seed)
    return [round(rng.uniform(low, high) * 30) / 30 for _ in range(count)]


def small_clips(count: int = 120, seed: int = 0, cache: Path = CACHE) -> tuple[Path, Path]:
    """A corpus of `count` short clips (3-6 s, like MELD's) cut one after another from the 10-minute
    input, and the same seconds as one file (the clips joined without re-encoding): the two sides of
    the small-files benchmark hold the same media. One ffmpeg encode cuts them all (key frames forced
    at the cuts, so each clip starts on one). Returns (clip folder, joined file)."""
    folder = cache / f"clips{count}_seed{seed}"
    joined = cache / f"clips{count}_seed{seed}_joined.mp4"
    if joined.is_file() and len(list(folder.glob("*.mp4"))) == count:
        return folder, joined
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.mp4"):
        old.unlink()
    lengths = clip_lengths(count, seed)
    cuts, t = [], 0.0
    for d in lengths[:-1]:
        t += d
        cuts.append(f"{t:.4f}")
    total = sum(lengths)
    _ffmpeg("-i", str(long_input(10, cache)), "-t", f"{total:.4f}", "-c:v", "libx264", "-preset", "veryfast",
            "-force_key_frames", ",".join(cuts), "-c:a", "aac", "-ar", "44100", "-ac", "2",
            "-f", "segment", "-segment_times", ",".join(cuts), "-reset_timestamps", "1",
            str(folder / "clip%03d.mp4"))
    lst = cache / f"clips{count}_seed{seed}.txt"
    lst.write_text("".join(f"file '{p}'\n" for p in sorted(folder.glob("*.mp4"))))
    _ffmpeg("-f", "concat", "-safe", "0", "-i", str(lst), "-c", "copy", str(joined))
    return folder, joined


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=int, nargs="*", default=[5])
    ap.add_argument("--clips", type=int, default=0, help="also make a corpus of this many 3-6 s clips")
    a = ap.parse_args()
    for m in a.minutes:
        print(long_input(m))
    if a.clips:
        print(*small_clips(a.clips))
