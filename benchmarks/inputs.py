"""Long benchmark inputs made from the real talking-face clips: 720p30 H.264 + AAC, of a given length.

One 1-minute base is encoded from the five clips (each scaled and padded to 1280x720, 30 fps), then
longer files are concatenated from it without re-encoding, so a 60-minute input takes seconds.
Files are cached under benchmarks/.cache/ (ignored by git).

    python -m benchmarks.inputs --minutes 5 10 60
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


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=int, nargs="+", default=[5])
    for m in ap.parse_args().minutes:
        print(long_input(m))
