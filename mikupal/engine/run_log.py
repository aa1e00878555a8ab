"""A quiet terminal, a complete log file: library chatter goes to OUT/logs/, not to the user.

The terminal shows mikupal's own warnings, the progress line(s) and the summary. Everything else
that goes through Python logging or `warnings` (Ray Data's INFO lines and deprecation notices,
library warnings) is written to OUT/logs/run-<time>.log. OpenCV's native log (its "graph engine"
warnings bypass Python) is set to errors only before any worker starts (and in every worker's
environment: engine/cluster.py); what native libraries still write to the driver's stderr in their
own formats (Ray's C++ core) goes to the log file too (engine/native_log.py).
"""

from __future__ import annotations

import logging
import os
import time

from ..layout import OutputPaths
from .native_log import NativeStderr

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: loggers whose INFO/WARNING lines are library chatter: kept in the log file, off the terminal
CHATTY = ("ray", "ray.data", "py.warnings", "faster_whisper", "audio_separator", "httpx", "urllib3", "filelock")


_active: list["RunLog"] = []


class _LogFile(logging.FileHandler):
    """A log file that never disturbs the run: a write that fails (a full disk) turns it off, silently
    (logging's default would print a traceback on the terminal)."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: ARG002
        self.setLevel(logging.CRITICAL + 1)


def quiet_consoles() -> None:
    """Call after importing a library that sets up its own console handlers (Ray, Ray Data): their
    lines go to the run's log file, and to the terminal only when they are errors."""
    if not _active:
        return
    run_log = _active[-1]
    for name, lg in list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(lg, logging.Logger) or name.startswith("mikupal"):
            continue
        for h in lg.handlers:
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                if _terminal_filter not in h.filters:
                    h.addFilter(_terminal_filter)
                    run_log._filtered.append(h)
        if lg.handlers and not lg.propagate and run_log.handler not in lg.handlers:
            lg.addHandler(run_log.handler)
            run_log._attached.append(lg)


class RunLog:
    """`with RunLog(out_root):` routes logging and warnings to OUT/logs/ for the run's duration."""

    def __init__(self, root: str | os.PathLike, command: str = "run"):
        self.path = OutputPaths(root).log(f"{command}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log")
        self.handler: logging.Handler | None = None
        self._saved: dict[str, tuple[int, bool]] = {}
        self._filtered: list[logging.Handler] = []
        self._attached: list[logging.Logger] = []
        self._native = NativeStderr(self.path)

    def __enter__(self) -> "RunLog":
        os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # inherited by Ray's local workers
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handler = _LogFile(self.path, encoding="utf-8")
        except OSError:  # a full or read-only disk: the run itself reports it where it matters
            self.handler = logging.NullHandler()
        self.handler.setLevel(logging.INFO)
        self.handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root = logging.getLogger()
        root.addHandler(self.handler)
        for name in CHATTY:
            lg = logging.getLogger(name)
            self._saved[name] = (lg.level, lg.propagate)
            lg.setLevel(min(lg.level or logging.INFO, logging.INFO))
        logging.captureWarnings(True)  # warnings.warn -> the "py.warnings" logger -> the file
        for h in root.handlers:  # the terminal's handler keeps to warnings, and none from libraries
            if h is not self.handler and isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                h.addFilter(_terminal_filter)
                self._filtered.append(h)
        _active.append(self)
        quiet_consoles()
        self._native.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._native.__exit__(*exc)
        root = logging.getLogger()
        if self in _active:
            _active.remove(self)
        for h in self._filtered:
            h.removeFilter(_terminal_filter)
        for lg in self._attached:
            lg.removeHandler(self.handler)
        logging.captureWarnings(False)
        for name, (level, _) in self._saved.items():
            lg = logging.getLogger(name)
            lg.setLevel(level)
            if self.handler in lg.handlers:
                lg.removeHandler(self.handler)
        if self.handler is not None:
            root.removeHandler(self.handler)
            self.handler.close()
            self.handler = None


def _terminal_filter(record: logging.LogRecord) -> bool:
    """On the terminal: mikupal's own lines (at MIKUPAL_LOG_LEVEL); libraries' only when they are errors."""
    if record.name == "mikupal" or record.name.startswith("mikupal."):
        return True
    return record.levelno >= logging.ERROR
