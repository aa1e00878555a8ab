"""One writer per output dir: an exclusive fcntl lock on OUT/.lock, held for the whole `run` or `label`.

Two writers on one output delete each other's scratch files and end in wrong rejects, so a second
one is refused at once, in one line naming the holder. The kernel drops a flock when its holder
dies (SIGKILL included), so a lock file whose record names a process that no longer holds it is
stale: the next run takes it over and says so.

Also the output marker (OUT/.mikupal-output): input expansion never descends into a folder that
holds one, so a dataset never reads its own clips back as new videos.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Optional

from ..errors import UserError
from ..layout import OutputPaths

log = logging.getLogger("mikupal")


def mark_output(root: Path) -> None:
    """Say that this folder is a mikupal output (never an input)."""
    marker = OutputPaths(root).output_marker
    if not marker.exists():
        marker.write_text("this folder is a mikupal output; mikupal never reads it as input\n", encoding="utf-8")


def is_output_dir(path: Path) -> bool:
    return OutputPaths(path).output_marker.is_file()


class OutputLock:
    """`with OutputLock(out, "run"):` holds OUT/.lock exclusively, or raises a one-line UserError."""

    def __init__(self, root: str | os.PathLike, command: str):
        self.root = Path(root)
        self.command = command
        self.path = OutputPaths(self.root).lock
        self.fd: Optional[int] = None

    def _holder(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self) -> "OutputLock":
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)  # not inherited by workers
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            h = self._holder()
            who = f"pid {h.get('pid', '?')} on {h.get('host', '?')}"
            since = f", since {h['started']}" if h.get("started") else ""
            raise UserError(
                f"output {self.root} is in use by another mikupal {h.get('command', '')} ({who}{since}); "
                "wait for it to finish, stop it, or choose another output="
            ) from None
        prev = self._holder()
        if prev.get("pid"):  # a record without a live flock: its writer died without releasing
            log.warning("taking over the stale lock of %s (pid %s on %s, no longer running) on %s",
                        f"mikupal {prev.get('command', '')}".strip(), prev.get("pid"), prev.get("host"), self.root)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        os.fsync(fd)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)  # an empty record: released cleanly, nothing stale
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
