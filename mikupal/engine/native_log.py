"""Native libraries' log lines to the run's log file, not the terminal.

Ray's C++ core (in the driver: "core_worker.cc:2465: Actor with class name ... max_restarts > 0")
and OpenCV write to file descriptor 2 directly, past Python's logging. For the run's duration, fd 2
is a pipe read by a thread: a line in one of those libraries' formats is appended to the run's log
file; anything else goes on to the terminal unchanged. Python's own `sys.stderr` keeps writing to
the terminal itself, so a terminal stays a terminal (the progress line). The thread takes no lock
another thread may hold (no `logging`): whatever still writes to fd 2 can never wait on it.
"""

from __future__ import annotations

import io
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Optional

#: "[2026-12-06 18:04:03,075 E 23897 23897] core_worker.cc:2465: ..." (Ray's C++ log format)
RAY_CORE_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [DIWEF] \d+ \d+\] ")
#: "[ WARN:0@4.494] global net_impl_backend.cpp:388 setPreferableTarget ..." (OpenCV's)
OPENCV_LINE = re.compile(r"^\[ ?(?:DEBUG|INFO|WARN|ERROR)(?::\d+)?@[\d.]+\] ")



def is_library_line(line: str) -> bool:
    return bool(RAY_CORE_LINE.match(line) or OPENCV_LINE.match(line))


def is_fatal_line(line: str) -> bool:
    """A library line that ends the process (Ray's "F" level, or "... The process will exit"): the
    user must see why the run stopped, so it goes to the terminal as well as the log."""
    m = RAY_CORE_LINE.match(line)
    return bool(m and (line[m.start():m.end()].split()[2] == "F" or "process will exit" in line))


class NativeStderr:
    """`with NativeStderr(log_path):` the filter above on fd 2; a no-op where fd 2 cannot be replaced."""

    def __init__(self, log_path: Optional[Path] = None) -> None:
        self.log_path = log_path
        self._terminal_fd: Optional[int] = None
        self._python_stderr = None
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "NativeStderr":
        try:
            sys.stderr.flush()
            self._terminal_fd = os.dup(2)
            read_fd, write_fd = os.pipe()
            os.dup2(write_fd, 2)
            os.close(write_fd)
        except (OSError, ValueError, AttributeError):
            self._terminal_fd = None
            return self
        self._python_stderr = sys.stderr
        sys.stderr = io.TextIOWrapper(io.FileIO(os.dup(self._terminal_fd), "w"), encoding="utf-8",
                                      errors="backslashreplace", line_buffering=True)
        self._thread = threading.Thread(target=self._pump, args=(read_fd, os.dup(self._terminal_fd), self.log_path),
                                        name="native-stderr", daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _pump(read_fd: int, terminal_fd: int, log_path: Optional[Path]) -> None:
        try:
            log_fd: Optional[int] = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if log_path else None
        except OSError:
            log_fd = None
        with open(read_fd, "rb", closefd=True) as pipe:
            for raw in pipe:
                line = raw.decode("utf-8", "backslashreplace")
                try:
                    if not is_library_line(line) or is_fatal_line(line):
                        os.write(terminal_fd, raw)
                    if is_library_line(line) and log_fd is not None:
                        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
                        os.write(log_fd, f"{stamp} WARNING native: {line.rstrip()}\n".encode("utf-8", "backslashreplace"))
                except OSError:  # a full disk or a closed terminal: the line is lost, the run goes on
                    pass
        os.close(terminal_fd)
        if log_fd is not None:
            os.close(log_fd)

    def __exit__(self, *exc) -> None:
        if self._terminal_fd is None:
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._terminal_fd, 2)  # the pipe's last writer here: the pump sees its end
        os.close(self._terminal_fd)
        self._terminal_fd = None
        ours, sys.stderr = sys.stderr, self._python_stderr
        ours.close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)  # a child process still holding the pipe keeps it open
