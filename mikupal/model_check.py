"""Is a model file what it claims to be? What a failed download leaves behind (an HTML error page,
a Git LFS pointer, a truncated file) must stop a run in one line before any worker starts, not
fail inside a stage actor minutes later.

`problem(path, fmt)` answers with a short phrase ("an HTML page, not a model (a failed
download?)", "truncated: ...", "sha256 ... differs from the published ...") or None:

- every file: not empty, not a web page or a Git LFS pointer, and the size and sha256 of the
  published file where its source names them (`Published`);
- by format, without running a network: a torch checkpoint's zip archive passes its CRC test (an
  old-style pickle checkpoint loads with `weights_only`), an ONNX file parses, a CTranslate2
  `model.bin` holds every variable its header lists and its `config.json` parses;
- with `load=True` (`mikupal models`), the file also loads as the runtime loads it: torch,
  ONNX Runtime, CTranslate2.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

Format = Literal["torch", "onnx", "ctranslate2"]


@dataclass(frozen=True)
class Published:
    """The size (bytes) and sha256 of a file as its official source serves it."""

    size: int
    sha256: str


_PAGE_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<?xml", b"<error")
_LFS_POINTER = b"version https://git-lfs"


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def problem(path: str | os.PathLike, fmt: Format, published: Optional[Published] = None, load: bool = False) -> Optional[str]:
    """What is wrong with a present model file (or CTranslate2 model dir), or None when it looks whole."""
    path = Path(path)
    target = path / "model.bin" if fmt == "ctranslate2" else path
    if not target.is_file():
        return f"{target.name} missing"
    size = target.stat().st_size
    if size == 0:
        return "empty (0 bytes)"
    with open(target, "rb") as f:
        head = f.read(512)
    page = _page(head)
    if page:
        return page
    if published is not None:
        if size != published.size:
            return f"{size} bytes, the published file has {published.size} (truncated or another version?)"
        digest = sha256(target)
        if digest != published.sha256:
            return f"sha256 {digest[:12]}... differs from the published {published.sha256[:12]}..."
    check = {"torch": _torch_problem, "onnx": _onnx_problem, "ctranslate2": _ctranslate2_problem}[fmt]
    found = check(path)
    if found is None and load:
        found = _load_problem(path, fmt)
    return found


def _page(head: bytes) -> Optional[str]:
    text = head.lstrip().lower()
    if text.startswith(_LFS_POINTER):
        return "a Git LFS pointer, not the model (fetch the file itself, e.g. `git lfs pull`)"
    if any(text.startswith(m) for m in _PAGE_MARKERS) or b"<html" in text[:256]:
        return "an HTML page, not a model (a failed download?)"
    return None


def _torch_problem(path: Path) -> Optional[str]:
    """A zip checkpoint (torch >= 1.6) passes the archive's CRC test; an old-style pickle one must load."""
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            return f"truncated or corrupt archive ({e})"
        return f"corrupt archive member {bad}" if bad else None
    with open(path, "rb") as f:
        first = f.read(2)
    if first == b"PK":
        return "truncated archive (no central directory)"
    if first[:1] != b"\x80":  # every pickle protocol >= 2 starts with PROTO
        return "not a torch checkpoint (neither a zip archive nor a pickle)"
    return _load_problem(path, "torch")


def _onnx_problem(path: Path) -> Optional[str]:
    try:
        import onnx
    except ImportError:  # onnx is a dependency; without it, the loader is the check
        return _load_problem(path, "onnx")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises its own DecodeError types
        return f"not a whole ONNX model ({type(e).__name__})"
    if not model.graph.node:
        return "an ONNX file with an empty graph (truncated?)"
    return None


def _read_string(f) -> str:
    (n,) = struct.unpack("<H", _exact(f, 2))
    return _exact(f, n)[:-1].decode("utf-8", "replace")


def _exact(f, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise EOFError
    return data


def _ctranslate2_problem(path: Path) -> Optional[str]:
    """Walk model.bin's variable headers (CTranslate2 binary version 4-6, the layout its
    `ModelSpec._serialize` writes): a truncated file ends before the last variable's bytes."""
    config = path / "config.json"
    if config.is_file():
        try:
            json.loads(config.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            return "config.json is not JSON (a failed download?)"
    target = path / "model.bin"
    size = target.stat().st_size
    try:
        with open(target, "rb") as f:
            (version,) = struct.unpack("<I", _exact(f, 4))
            if not 1 <= version <= 100:
                return f"not a CTranslate2 model (binary version {version})"
            if not 4 <= version <= 6:  # another layout: the loader is the check
                return None
            _read_string(f)  # the spec's name
            _exact(f, 4)  # its revision
            (count,) = struct.unpack("<I", _exact(f, 4))
            for _ in range(count):
                _read_string(f)
                (rank,) = struct.unpack("<B", _exact(f, 1))
                _exact(f, 4 * rank + 1)  # dims, type id
                (nbytes,) = struct.unpack("<I", _exact(f, 4))
                if f.tell() + nbytes > size:
                    raise EOFError
                f.seek(nbytes, os.SEEK_CUR)
            (aliases,) = struct.unpack("<I", _exact(f, 4))
            for _ in range(2 * aliases):
                _read_string(f)
    except (EOFError, struct.error):
        return f"truncated: model.bin ends before its last variable ({size} bytes)"
    return None


def _load_problem(path: Path, fmt: Format) -> Optional[str]:
    """Load the file as the runtime does; the error, in a phrase, or None."""
    try:
        if fmt == "torch":
            import torch

            torch.load(str(path), map_location="cpu", weights_only=True)
        elif fmt == "onnx":
            import onnxruntime as ort

            ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        else:
            import ctranslate2

            ctranslate2.models.Whisper(str(path), device="cpu", compute_type="int8")
    except Exception as e:  # noqa: BLE001 - every loader has its own error types; each means the same here
        return f"will not load ({type(e).__name__}: {' '.join(str(e).split())[:160]})"
    return None
