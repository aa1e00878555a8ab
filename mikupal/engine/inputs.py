"""Expand the `input=` argument into work items, and give each file its content id.

A file, a folder (searched recursively for media files) or a text file listing paths (one per
line, `#` comments). Entries that cannot be opened become rejects here, before any stage runs.

Every file of an input folder is accounted for: video and audio files are inputs (audio-only
ones are rejected at probe, `no_video_stream`), anything else is listed in `skipped` (`not_media`).
A folder search never descends into what a mikupal output wrote (segments/, clips/, audio/ ... of
the run's own output dir or of any folder holding the OUTPUT_MARKER file), and a list entry there
is rejected: a dataset never reads its own clips back as new videos.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from .. import atomic
from ..errors import UserError
from ..ids import content_id, source_key
from ..layout import MARKER as OUTPUT_MARKER
from ..layout import WRITTEN_DIRS as OUTPUT_SUBDIRS
from ..layout import WRITTEN_FILES as OUTPUT_FILES
from ..layout import OutputPaths
from ..records import Reject

MEDIA_EXTENSIONS = {
    ".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".3gp",
}
#: audio-only files are inputs too, so that they are rejected with a reason (no_video_stream)
AUDIO_EXTENSIONS = {".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus"}
INPUT_EXTENSIONS = MEDIA_EXTENSIONS | AUDIO_EXTENSIONS
LIST_EXTENSIONS = {".txt", ".list", ".lst"}


@dataclass
class SkippedFile:
    """A file of an input folder that is not media: listed in report.json, never silently passed over."""

    path: str
    reason: str = "not_media"


@dataclass
class InputSet:
    videos: list[tuple[str, str, str]] = field(default_factory=list)  # (source as given, resolved path, video_id)
    rejects: list[Reject] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def _is_output(d: Path, outputs: list[Path]) -> bool:
    return d in outputs or (d / OUTPUT_MARKER).is_file()


def _inside_output(path: Path, outputs: list[Path]) -> Optional[Path]:
    """The mikupal output dir (the run's own, or any folder with the marker) whose written files
    (segments/, clips/, audio/ ...) `path` lies in, else None."""
    try:
        resolved = path.resolve()
    except OSError:
        return None
    for child, parent in zip([resolved, *resolved.parents], resolved.parents):
        if child.name in OUTPUT_SUBDIRS and _is_output(parent, outputs):
            return parent
    return None


def _walk_folder(root: Path, outputs: list[Path], skipped: list[SkippedFile]) -> list[str]:
    """Media files under `root`, never inside what a mikupal output wrote; every other file goes to `skipped`."""
    found = []
    seen: set[Path] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        d = Path(dirpath)
        real = d.resolve()
        if real in seen:  # a symlink cycle
            dirnames[:] = []
            continue
        seen.add(real)
        own = set()
        if real in outputs or OUTPUT_MARKER in filenames:  # an output: its written parts are not input
            dirnames[:] = [n for n in dirnames if n not in OUTPUT_SUBDIRS]
            own = OUTPUT_FILES
        dirnames.sort()
        for name in sorted(filenames):
            q = d / name
            if name in own:
                continue
            if q.suffix.lower() in INPUT_EXTENSIONS:
                found.append(str(q))
            else:
                skipped.append(SkippedFile(str(q), "not_media"))
    return found


def _list_sources(spec: str, outputs: list[Path], skipped: list[SkippedFile]) -> list[str]:
    p = Path(os.path.expanduser(spec))
    if not p.exists():
        raise UserError(f"input not found: {spec}")
    if p.is_dir():
        inside = _inside_output(p, outputs)
        if inside is not None:
            raise UserError(f"input folder {spec} is part of what the mikupal output {inside} wrote: "
                            "choose an input folder outside its segments/, clips/, audio/ ...")
        found = _walk_folder(p, outputs, skipped)
        if not found:
            raise UserError(f"input folder has no media files ({', '.join(sorted(INPUT_EXTENSIONS))}): {spec}")
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


def check_paths(spec: Optional[str], output: str) -> None:
    """The input's and the output's one-line errors (missing input, a folder with no media, an
    output that is a file) before anything is created: a run refused at the start leaves nothing."""
    out = Path(os.path.expanduser(output))
    if out.exists() and not out.is_dir():
        raise UserError(f"output is a file, not a folder: {output} (pass output=DIR: a new folder, or an earlier run's to resume it)")
    if not spec:
        raise UserError("no input given: pass input=PATH (a video, a folder, or a text file listing paths)")
    _list_sources(spec, [out.resolve()], [])


def expand_inputs(spec: Optional[str], threads: int = 4, output: Optional[str | os.PathLike] = None) -> InputSet:
    """`output`: the run's own output dir, never an input (also when its marker is not written yet)."""
    if not spec:
        raise UserError("no input given: pass input=PATH (a video, a folder, or a text file listing paths)")
    outputs = [Path(os.path.expanduser(output)).resolve()] if output else []
    skipped: list[SkippedFile] = []
    sources = _list_sources(spec, outputs, skipped)

    def ident(src: str):
        p = Path(src)
        try:
            inside = _inside_output(p, outputs)
            if inside is not None:
                return src, None, ("inside_output_dir", f"{src}: a file of the mikupal output {inside}, not an input")
            if not p.exists():
                return src, None, ("missing_file", f"{src}: no such file")
            if not p.is_file():
                return src, None, ("not_a_file", f"{src}: not a regular file")
            if p.stat().st_size == 0:
                return src, str(p.resolve()), ("empty_file", f"{src}: zero bytes")
            return src, str(p.resolve()), content_id(p)
        except OSError as e:
            return src, None, ("unreadable_file", f"{src}: {e.strerror or e}")

    out = InputSet(skipped=skipped)
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


def write_skipped(root: Path, skipped: list[SkippedFile]) -> None:
    """The latest run's skip list, read back by the report (`CommittedOutput.skipped`)."""
    path = OutputPaths(root).skipped_files
    atomic.write_text(path, json.dumps([asdict(s) for s in skipped], indent=1))
