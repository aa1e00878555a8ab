"""Stable identifiers: content hashes for videos, keys for inputs that have none."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

_SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")

FULL_HASH_LIMIT = 64 << 20
SAMPLE_CHUNKS = 16
SAMPLE_SIZE = 1 << 20


def content_id(path: str | os.PathLike) -> str:
    """A content hash (20 hex chars): the whole file up to 64 MiB; beyond, its size and 16 evenly
    spread 1 MiB samples, so thousands of long videos are identified in seconds, not minutes."""
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.blake2b(digest_size=10)
    with open(p, "rb") as f:
        if size <= FULL_HASH_LIMIT:
            while block := f.read(1 << 22):
                h.update(block)
        else:
            h.update(size.to_bytes(8, "little"))
            step = (size - SAMPLE_SIZE) // (SAMPLE_CHUNKS - 1)
            for i in range(SAMPLE_CHUNKS):
                f.seek(i * step)
                h.update(f.read(SAMPLE_SIZE))
    return h.hexdigest()


def source_key(source: str) -> str:
    """A stable file-name-safe key for an input that has no content id (missing, unreadable)."""
    return "src-" + hashlib.blake2b(source.encode("utf-8", "surrogateescape"), digest_size=10).hexdigest()


def check_key(key: str) -> str:
    """`key` if it can name files under the output dir (letters, digits, '_' and '-': no separator,
    no '..', nothing absolute), else ValueError: no id can make a write or a delete escape it."""
    if not isinstance(key, str) or not _SAFE_KEY.fullmatch(key):
        raise ValueError(f"unsafe output key {key!r}")
    return key
