"""A worker thread's name, given to the OS thread too: `top -H`, `ps -L` and /proc show which stage
a thread works for, and the threads a library starts from it (CTranslate2's, onnxruntime's, the
decoders') inherit the name, so a stage's CPU can be read per thread name
(`benchmarks/pipeline.py`). Linux only; elsewhere nothing happens."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

PR_SET_NAME = 15
MAX_NAME = 15  # the kernel keeps 15 bytes of a thread's name


def name_os_thread(name: str) -> None:
    """Name the calling OS thread (best effort: a name is only a label)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_NAME, name.encode("utf-8", "replace")[:MAX_NAME], 0, 0, 0)
    except (OSError, AttributeError):
        pass


__all__ = ["name_os_thread"]
