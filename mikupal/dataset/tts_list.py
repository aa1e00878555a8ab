"""format=list: `audio_path|speaker|text|primary_emotion`, one line per segment, the filelist form
common TTS recipes (VITS, Coqui, GPT-SoVITS style) read. Paths are absolute (the FLACs stay in the
run's `audio/`); a `|` or a line break inside the text becomes a space. `list.txt`, or `train.txt`
and `test.txt` with a speaker split."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .rows import audio_file, speaker_of

_UNSAFE = re.compile(r"[|\r\n]+")


def line(root: Path, r: dict[str, Any]) -> str:
    fields = [str(audio_file(root, r)), speaker_of(r), r.get("text") or "", r.get("primary_emotion") or ""]
    return "|".join(_UNSAFE.sub(" ", f).strip() for f in fields)


def write_list(root: Path, out: Path, splits: dict[str, list[dict[str, Any]]], args) -> list[str]:
    written = []
    for name, rows in splits.items():
        fname = "list.txt" if name == "all" else f"{name}.txt"
        (out / fname).write_text("".join(line(root, r) + "\n" for r in rows), encoding="utf-8")
        written.append(fname)
    return written
