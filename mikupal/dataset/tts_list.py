"""format=list: `audio_path|speaker|text|primary_emotion`, one line per segment, the filelist form
common TTS recipes (VITS, Coqui, GPT-SoVITS style) read. The speaker is the global speaker id (the
same person across videos) where there is one. Paths are absolute (the FLACs stay in the run's
`audio/`); a `|` or a line break inside the text becomes a space. When some exported segment is
unlabeled, every line is `audio_path|speaker|text` (no empty last field); `export.json` says
which. `list.txt`, or `train.txt` and `test.txt` with a speaker split."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .rows import audio_file, person_of

_UNSAFE = re.compile(r"[|\r\n]+")
FIELDS = ("audio_path", "speaker", "text", "primary_emotion")


def line(root: Path, r: dict[str, Any], with_emotion: bool = True) -> str:
    fields = [str(audio_file(root, r)), person_of(r), r.get("text") or ""]
    if with_emotion:
        fields.append(r.get("primary_emotion") or "")
    return "|".join(_UNSAFE.sub(" ", f).strip() for f in fields)


def write_list(root: Path, out: Path, splits: dict[str, list[dict[str, Any]]], args) -> list[str]:
    labeled = all(r.get("primary_emotion") for rows in splits.values() for r in rows)
    written = []
    for name, rows in splits.items():
        fname = "list.txt" if name == "all" else f"{name}.txt"
        (out / fname).write_text("".join(line(root, r, labeled) + "\n" for r in rows), encoding="utf-8")
        written.append(fname)
    return written


def fields(splits: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The columns of the list lines written for these splits."""
    labeled = all(r.get("primary_emotion") for rows in splits.values() for r in rows)
    return list(FIELDS if labeled else FIELDS[:3])
