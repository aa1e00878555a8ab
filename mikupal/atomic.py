"""Atomic file writes: a reader sees the old file or the whole new one, never half of it.

Write to a temporary name beside the target, flush it to disk (fsync), then rename it over the
target (`os.replace`, atomic on POSIX). On any failure the temporary file is removed, so a full
disk never keeps a half-written file's space. The one way files are published in this project.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pyarrow as pa


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def replacing(path: str | os.PathLike, suffix: str = ".tmp", unique: bool = False) -> Iterator[Path]:
    """Yield the temporary path to write; on success it replaces `path`. `suffix` keeps the
    extension a writer needs (".part.mp4"); `unique` adds the pid, for files several processes
    may write at once."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{suffix}" if unique else path.name + suffix)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str, unique: bool = False) -> None:
    with replacing(path, unique=unique) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_parquet(table: pa.Table, path: str | os.PathLike, compression: str = "zstd", unique: bool = False) -> None:
    import pyarrow.parquet as pq

    with replacing(path, unique=unique) as tmp:
        pq.write_table(table, tmp, compression=compression)
