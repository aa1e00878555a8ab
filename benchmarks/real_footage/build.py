"""Edited dialogues: real clips of different people cut together, shot / reverse shot, like a film
edit. Each piece is one person's real speech, so the reference turns are exact by construction and
short (1-3 s), where a natural recording in the manifest has no turns.

A manifest entry with `build: [[source name, start, end], ...]` is made by `fetch` from the
fetched sources (scaled and padded to 1280x720 at 25 fps, 48 kHz stereo AAC); its turns are the
pieces in order, each spoken by its source's person. Its sha256 is not checked (ffmpeg versions
encode differently).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .manifest import Entry, media_path
from .metrics import Turn


FPS = 25


def on_frames(t: float) -> float:
    """A cut point on the 25 fps frame grid, so that video and audio pieces have the same length."""
    return round(float(t) * FPS) / FPS


def piece_turns(pieces: list[list]) -> list[Turn]:
    """The turns of the built file: each piece, back to back, spoken by its source's person."""
    out, t = [], 0.0
    for source, start, end in pieces:
        d = on_frames(end) - on_frames(start)
        out.append(Turn(round(t, 3), round(t + d, 3), Path(source).stem))
        t += d
    return out


def build_entry(entry: Entry, to: Path, by_name: dict[str, Entry]) -> Path:
    """Cut and join the pieces of `entry.build` from the fetched sources in `to`."""
    dest = media_path(to, entry)
    args, chains = [], []
    for i, (source, start, end) in enumerate(entry.build):
        s, e = on_frames(start), on_frames(end)
        args += ["-i", str(media_path(to, by_name[source]))]
        chains.append(f"[{i}:v]fps={FPS},trim=start={s:.2f}:end={e:.2f},setpts=PTS-STARTPTS,"
                      "scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720:(ow-iw)/2:(oh-ih)/2,"
                      f"setsar=1[v{i}];[{i}:a]atrim=start={s:.2f}:end={e:.2f},asetpts=PTS-STARTPTS,"
                      f"aresample=48000,aformat=channel_layouts=stereo[a{i}]")
    n = len(entry.build)
    concat = "".join(f"[v{i}][a{i}]" for i in range(n)) + f"concat=n={n}:v=1:a=1[v][a]"
    tmp = dest.with_name(dest.stem + ".part" + dest.suffix)
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args, "-filter_complex", ";".join(chains) + ";" + concat,
                    "-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
                    "-c:a", "aac", "-b:a", "128k", str(tmp)], check=True)
    tmp.replace(dest)
    return dest
