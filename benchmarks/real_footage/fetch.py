"""`fetch --to DIR`: download every manifest entry, check its sha256, write its reference turns.

A file already in DIR with the right sha256 is not downloaded again. A wrong checksum is an error
(the upstream file changed or the download broke): the bad file is not kept.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Callable, Optional

from .manifest import Entry, convert_turns, load, media_path, turns_path, write_turns


class ChecksumError(RuntimeError):
    pass


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: Path, timeout: float = 60.0) -> None:
    """url -> dest through a temporary file (a broken download never looks complete)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".{os.getpid()}.part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
            while block := r.read(1 << 20):
                f.write(block)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _read_text(url: str, timeout: float = 60.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode("utf-8")


def fetch_entry(entry: Entry, to: Path, read_text: Callable[[str], str] = _read_text) -> str:
    """One entry into `to`: 'present', 'downloaded'; raises ChecksumError on a mismatch."""
    dest = media_path(to, entry)
    status = "present"
    if not (dest.is_file() and sha256(dest) == entry.sha256):
        download(entry.url, dest)
        got = sha256(dest)
        if got != entry.sha256:
            dest.unlink()
            raise ChecksumError(f"{entry.name}: sha256 {got} != {entry.sha256} (from {entry.url})")
        status = "downloaded"
    if entry.turns:
        upstream: Optional[str] = read_text(entry.turns["url"]) if "url" in entry.turns else None
        write_turns(turns_path(to, entry), convert_turns(entry.turns, upstream))
    return status


def build(entry: Entry, to: Path, by_name: dict[str, Entry], done: dict[str, str]) -> str:
    """An edited dialogue from fetched sources, and its turns."""
    from .build import build_entry, piece_turns

    missing = [s for s, _, _ in entry.build if not done.get(s, "").startswith(("present", "downloaded"))]
    if missing:
        raise ValueError(f"{entry.name}: sources not fetched: {missing}")
    build_entry(entry, to, by_name)
    write_turns(turns_path(to, entry), piece_turns(entry.build))
    return "built"


def fetch_all(to: Path, entries: Optional[list[Entry]] = None) -> dict[str, str]:
    """Every entry (downloads first, then the edited dialogues built from them); a failure of one is
    reported and the others still fetched."""
    entries = entries if entries is not None else load()
    by_name = {e.name: e for e in entries}
    out: dict[str, str] = {}
    for e in sorted(entries, key=lambda e: bool(e.build)):
        try:
            out[e.name] = build(e, Path(to), by_name, out) if e.build else fetch_entry(e, Path(to))
        except (OSError, ChecksumError, ValueError, subprocess.CalledProcessError) as err:
            out[e.name] = f"failed: {err}"
        print(f"{out[e.name]:<12.200} {e.name}", flush=True)
    return out
