"""The real-footage manifest (`manifest.yaml` beside this file) and its reference turns.

Each entry names one media file, where to fetch it (a raw GitHub URL pinned to a commit), its
sha256, length, kind, languages, speaker count, license and, where the source repository has them,
reference speaker turns. Turns are converted from their upstream format (RTTM, Picovoice's test
JSON, or a few stretches named in the manifest itself) into DIR/turns/<name>.csv
(`start,end,speaker`), which `run` reads.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from .metrics import Turn

MANIFEST = Path(__file__).with_name("manifest.yaml")
KINDS = ("conversation", "interview", "film_tv", "monologue")


@dataclass(frozen=True)
class Entry:
    name: str
    url: Optional[str]  # None for a built entry
    sha256: Optional[str]  # None for a built entry (ffmpeg versions encode differently)
    seconds: float
    kind: str
    languages: list[str]
    speakers: Optional[int]
    video: bool
    license: str
    notes: str = ""
    turns: dict = field(default_factory=dict)
    build: list = field(default_factory=list)  # [[source name, start, end], ...]: cut together by `fetch`

    @property
    def partial_turns(self) -> bool:
        """The reference covers only some stretches: purity is measured inside them only."""
        return bool(self.turns.get("partial"))


def load(path: Path = MANIFEST) -> list[Entry]:
    raw = yaml.safe_load(Path(path).read_text())["files"]
    fields = Entry.__dataclass_fields__
    entries = [Entry(**{k: v for k, v in e.items() if k in fields}) for e in raw]
    bad = [e.name for e in entries if e.kind not in KINDS]
    if bad:
        raise ValueError(f"unknown kind in {path}: {bad} (one of {KINDS})")
    return entries


def turns_from_rttm(text: str) -> list[Turn]:
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 8 and f[0] == "SPEAKER":
            start, dur = float(f[3]), float(f[4])
            out.append(Turn(start, start + dur, f[7]))
    return out


def turns_from_picovoice(text: str, audio_file: str) -> list[Turn]:
    """Picovoice's `resources/.test/test_data.json`: diarization_tests[audio_file].segments."""
    tests = json.loads(text)["tests"]["diarization_tests"]
    case = next(t for t in tests if t["audio_file"] == audio_file)
    return [Turn(float(s["start_sec"]), float(s["end_sec"]), str(s["speaker_tag"])) for s in case["segments"]]


def turns_inline(spec: dict) -> list[Turn]:
    return [Turn(float(s), float(e), str(who)) for s, e, who in spec["segments"]]


def convert_turns(spec: dict, upstream: Optional[str]) -> list[Turn]:
    """The reference turns of an entry from its upstream text (RTTM / JSON) or the manifest itself."""
    kind = spec["format"]
    if kind == "inline":
        return turns_inline(spec)
    if upstream is None:
        raise ValueError(f"turns format {kind} needs the file at {spec.get('url')}")
    if kind == "rttm":
        return turns_from_rttm(upstream)
    if kind == "picovoice_json":
        return turns_from_picovoice(upstream, spec["audio_file"])
    raise ValueError(f"unknown turns format: {kind}")


def write_turns(path: Path, turns: list[Turn]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["start", "end", "speaker"])
    for t in sorted(turns, key=lambda t: (t.start, t.end)):
        w.writerow([f"{t.start:.3f}", f"{t.end:.3f}", t.speaker])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue())


def read_turns(path: Path) -> Optional[list[Turn]]:
    """DIR/turns/<name>.csv, or None when the file has no reference turns."""
    if not path.is_file():
        return None
    rows = csv.DictReader(path.read_text().splitlines())
    return [Turn(float(r["start"]), float(r["end"]), r["speaker"]) for r in rows]


def turns_path(media_dir: Path, entry: Entry) -> Path:
    return Path(media_dir) / "turns" / f"{entry.name}.csv"


def media_path(media_dir: Path, entry: Entry) -> Path:
    """Where `fetch` puts an entry: audio-only files under audio_only/, so that a folder run of
    DIR holds only the videos."""
    return Path(media_dir) / ("" if entry.video else "audio_only") / entry.name
