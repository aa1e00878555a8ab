"""Hostile inputs, built with ffmpeg into a folder, and the outcome each one must have.

Every case is one or more files plus the list entry that names it (the run's `input=` is a list
file two folders below the files, so every entry is a `../../` path). Talking clips are cut from
../shared/media/vr_face1.mp4 (one utterance in its first 3 s), so each case costs the vision
stage one utterance at most. The multi-hour silence is generated on demand (`silence(...)`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
CUT_SECONDS = 3.0  # vr_face1's first utterance ends at 2.66 s
UNICODE_NAME = "Ünïcødé 名前 with spaces $(touch PWNED); 'q' & x.mp4"


@dataclass
class Case:
    """One hostile input and its expected outcome: kept (segments, no video-level reject) or a
    reject row of `stage` with one of `reasons`."""

    id: str
    title: str
    entries: list[str]  # list-file entries (relative to the list file, or absolute)
    kept: bool = False
    stage: Optional[str] = None
    reasons: tuple[str, ...] = ()
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def expected(self) -> str:
        if self.kept:
            return "kept"
        return f"reject {self.stage}/{'|'.join(self.reasons)}"


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-y", *args], check=True, timeout=300)


def silence(path: Path, seconds: float) -> Path:
    """A silent video of `seconds` (32x32 black at 1 fps, silent AAC): tiny, and cheap to make even for hours."""
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=32x32:r=1", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono",
           "-t", f"{seconds:g}", "-c:v", "libx264", "-preset", "ultrafast", "-g", "600", "-c:a", "aac", "-b:a", "16k",
           str(path))
    return path


def build(root: Path, media: Path) -> list[Case]:
    """Write every hostile input under `root/files` and the list file `root/lists/deep/inputs.txt`."""
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    face1, face2 = media / "vr_face1.mp4", media / "vr_face2.mp4"
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "26"]
    cut = ["-t", f"{CUT_SECONDS:g}", "-i", str(face1)]

    def f(name: str) -> str:
        return str(files / name)

    (files / "zero.mp4").write_bytes(b"")
    # truncated at half: the usual layout (index at the end: lost) and a "fast start" one (index first)
    ffmpeg(*cut, *x264, "-c:a", "aac", f("_whole.mp4"))
    ffmpeg("-i", f("_whole.mp4"), "-c", "copy", "-movflags", "+faststart", f("_whole_faststart.mp4"))
    for src, dst in (("_whole.mp4", "truncated.mp4"), ("_whole_faststart.mp4", "truncated_faststart.mp4")):
        data = (files / src).read_bytes()
        (files / dst).write_bytes(data[: len(data) // 2])
        (files / src).unlink()
    (files / "text.mp4").write_text("#EXTM3U\nthis is a playlist, not a video\n" * 40)
    ffmpeg(*cut, "-vn", "-c:a", "aac", f("audio_only.mp4"))
    ffmpeg(*cut, "-an", *x264, f("no_audio.mp4"))
    # two audio streams: the first silent and not default, the second (default) the speech
    ffmpeg(*cut, "-f", "lavfi", "-t", f"{CUT_SECONDS:g}", "-i", "anullsrc=r=44100:cl=stereo",
           "-map", "0:v", "-map", "1:a", "-map", "0:a", *x264, "-c:a", "aac",
           "-disposition:a:0", "0", "-disposition:a:1", "default", f("two_audio.mp4"))
    # variable frame rate (30 fps source): every 2nd frame for 1.5 s (15 fps), then 4 of every 5 (24 fps, uneven)
    vfr = r"select='if(lt(t\,1.5)\,not(mod(n\,2))\,not(eq(mod(n\,5)\,2)))'"
    ffmpeg(*cut, "-vf", vfr, "-fps_mode", "vfr", *x264, "-c:a", "aac", f("vfr.mp4"))
    # a phone video: pixels stored sideways (700x960) with rotation metadata; displayed upright it is
    # vr_face1 padded on the right to 960x700, so its face boxes are vr_face1's
    ffmpeg(*cut, "-vf", "pad=960:700:0:0,transpose=1", *x264, "-c:a", "aac", f("_sideways.mp4"))
    ffmpeg("-i", f("_sideways.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=90", f("rotated.mp4"))
    (files / "_sideways.mp4").unlink()
    ffmpeg(*cut, "-vf", "scale=64:64", *x264, "-c:a", "aac", f("tiny_64x64.mp4"))
    ffmpeg(*cut, "-vf", "scale=2160:2160,pad=3840:2160:840:0", *x264, "-c:a", "aac", f("uhd_3840x2160.mp4"))
    silence(files / "silence_10min.mp4", 600)
    shutil.copyfile(face2, files / UNICODE_NAME)
    shutil.copyfile(face2, files / "same content, second name.mp4")
    (files / "face1 via symlink.mp4").symlink_to(face1)
    (files / "dangling symlink.mp4").symlink_to(files / "does-not-exist.mp4")
    (files / "a folder.mp4").mkdir(exist_ok=True)

    rel = "../../files/"
    cases = [
        Case("zero_byte", "zero-byte file", [rel + "zero.mp4"], stage="input", reasons=("empty_file",)),
        Case("truncated_half", "MP4 truncated at half (index at the end)", [rel + "truncated.mp4"],
             stage="probe", reasons=("truncated_file",)),
        Case("truncated_half_faststart", "MP4 truncated at half (index first)", [rel + "truncated_faststart.mp4"],
             stage="probe", reasons=("truncated_file",)),
        Case("text_as_mp4", "a text file named .mp4", [rel + "text.mp4"], stage="probe",
             reasons=("unreadable_container",)),
        Case("audio_only", "audio only (AAC in .mp4)", [rel + "audio_only.mp4"], stage="probe",
             reasons=("no_video_stream",)),
        Case("no_audio", "video with no audio stream", [rel + "no_audio.mp4"], stage="probe",
             reasons=("no_audio_stream",)),
        Case("two_audio", "two audio streams (the default one speaks)", [rel + "two_audio.mp4"], kept=True),
        Case("vfr", "variable frame rate (15 fps, then 24 fps uneven)", [rel + "vfr.mp4"], kept=True),
        Case("rotated", "rotated phone video (rotate=90 metadata)", [rel + "rotated.mp4"], kept=True),
        Case("tiny_64", "64x64 frames", [rel + "tiny_64x64.mp4"], stage="vision",
             reasons=("face_too_small", "no_face")),
        Case("uhd_4k", "3840x2160 frames", [rel + "uhd_3840x2160.mp4"], kept=True),
        Case("silence", "10 minutes of silence", [rel + "silence_10min.mp4"], stage="vad", reasons=("no_speech",)),
        Case("unicode_name", "non-ASCII name with spaces and shell characters", [rel + UNICODE_NAME], kept=True),
        Case("duplicate", "the same content under a second name", [rel + "same content, second name.mp4"],
             stage="input", reasons=("duplicate_content",)),
        Case("symlink", "a symlink to a clip (absolute list entry)", [str(files / "face1 via symlink.mp4")], kept=True),
        Case("dangling_symlink", "a symlink to nothing", [rel + "dangling symlink.mp4"], stage="input",
             reasons=("missing_file",)),
        Case("directory", "a directory named .mp4", [rel + "a folder.mp4"], stage="input", reasons=("not_a_file",)),
        Case("list_missing", "a list entry naming a missing file", [rel + "gone missing.mp4"], stage="input",
             reasons=("missing_file",)),
    ]
    lists = root / "lists" / "deep"
    lists.mkdir(parents=True, exist_ok=True)
    lines = ["# hostile inputs: one case per entry", ""]
    for c in cases:
        lines += c.entries
    (lists / "inputs.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cases


def list_file(root: Path) -> Path:
    return root / "lists" / "deep" / "inputs.txt"


def source_of(root: Path, entry: str) -> str:
    """The `source` the pipeline records for a list entry."""
    return entry if os.path.isabs(entry) else str(list_file(root).parent / entry)
