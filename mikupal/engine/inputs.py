"""Expand the `input=` argument into work items, and give each file its content id.

A file, a folder (searched recursively for media files) or a text file listing paths (one per
line, `#` comments). Entries that cannot be opened become rejects here, before any stage runs.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import UserError
from ..ids import content_id, source_key
from ..records import Reject

MEDIA_EXTENSIONS = {
    ".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".3gp",
}
LIST_EXTENSIONS = {".txt", ".list", ".lst"}

@dataclass
class InputSet:
    videos: list[tuple[str, str, str]] = field(default_factory=list)  # (source as given, resolved path, video_id)
    rejects: list[Reject] = field(default_factory=list)


def _list_sources(spec: str) -> list[str]:
    p = Path(os.path.expanduser(spec))
    if not p.exists():
        raise UserError(f"input not found: {spec}")
    if p.is_dir():
        found = sorted(str(q) for q in p.rglob("*") if q.suffix.lower() in MEDIA_EXTENSIONS and (q.is_file() or q.is_symlink()))
        if not found:
            raise UserError(f"input folder has no media files ({', '.join(sorted(MEDIA_EXTENSIONS))}): {spec}")
        return found
    if p.suffix.lower() in LIST_EXTENSIONS:
        base = p.parent
        out = []
        for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                q = Path(os.path.expanduser(line))
                out.append(str(q if q.is_absolute() else base / q))
        if not out:
            raise UserError(f"input list is empty: {spec}")
        return out
    return [str(p)]


def expand_inputs(spec: Optional[str], threads: int = 4) -> InputSet:
    if not spec:
        raise UserError("no input given: pass input=PATH (a video, a folder, or a text file listing paths)")
    sources = _list_sources(spec)

    def ident(src: str):
        p = Path(src)
        try:
            if not p.exists():
                return src, None, ("missing_file", f"{src}: no such file")
            if not p.is_file():
                return src, None, ("not_a_file", f"{src}: not a regular file")
            if p.stat().st_size == 0:
                return src, str(p.resolve()), ("empty_file", f"{src}: zero bytes")
            return src, str(p.resolve()), content_id(p)
        except OSError as e:
            return src, None, ("unreadable_file", f"{src}: {e.strerror or e}")

    out = InputSet()
    seen: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for src, path, vid in pool.map(ident, sources):
            if isinstance(vid, tuple):
                reason, msg = vid
                out.rejects.append(Reject(item_id=source_key(src), video_id="", source=src, stage="input", reason=reason, message=msg))
            elif vid in seen:
                out.rejects.append(
                    Reject(
                        item_id=source_key(src), video_id=vid, source=src, stage="input", reason="duplicate_content",
                        message=f"same content as {seen[vid]} (processed once)",
                    )
                )
            else:
                seen[vid] = src
                out.videos.append((src, path, vid))
    return out
