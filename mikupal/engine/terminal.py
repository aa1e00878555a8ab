"""The run's terminal: what it shows while the run works, and nothing else.

- `Terminal`: for the length of a run, file descriptors 1 and 2 and Python's `sys.stdout` and
  `sys.stderr` go to the run's log file, so what native code and libraries print (Ray's core
  workers, `core_worker.cc ... max_restarts` lines, lines Ray forwards from its workers and GCS,
  OpenCV) lands in `OUT/logs/`, not on the user's screen. mikupal's own lines (the progress
  display, its warnings) go to `stream`: the terminal the run started on.
- `Display`: on a TTY a live panel (rich): media seconds done of the total with a bar, elapsed
  time and ETA, kept seconds and segments, and what each stage is doing now (busy workers, how
  far into the media it has come; `stages/activity.py`). Elsewhere (a pipe, a CI log) plain
  lines: one per committed video, and one every `HEARTBEAT_S` while nothing commits.
- `summary_line`: the run's result in words, pointing at report.html.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import IO, Optional, Sequence

from ..stages.activity import StageActivity, read_activity
from .progress import Progress, clock, seconds

#: a plain-line display prints at least this often while nothing commits
HEARTBEAT_S = 30.0


class Terminal:
    """`with Terminal(log_path) as term:` sends fds 1 and 2, and Python's `sys.stdout` and
    `sys.stderr`, to `log_path`, and `term.stream` to the user's terminal (wherever `sys.stderr`
    pointed: fd 2, or the terminal `native_log.NativeStderr` keeps it on); restored on exit. When
    stderr is not a real file (a test captured it into memory), nothing is redirected and
    `stream` is that stderr."""

    def __init__(self, log_path: Path):
        self.log_path = Path(log_path)
        self.stream: IO[str] = sys.stderr
        self._saved: dict[int, int] = {}
        self._objects: Optional[tuple[IO[str], IO[str]]] = None
        self._handlers: list[tuple[logging.StreamHandler, IO]] = []

    def __enter__(self) -> "Terminal":
        try:
            terminal_fd = sys.stderr.fileno()
            log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) \
                if self.log_path.parent.is_dir() else None
        except (AttributeError, OSError, ValueError):
            return self  # in memory, or a full or read-only disk: the run reports that where it matters
        if log_fd is None:
            return self
        old = (sys.stdout, sys.stderr)
        for f in old:
            _flush(f)
        encoding = getattr(old[1], "encoding", None) or "utf-8"
        self.stream = os.fdopen(os.dup(terminal_fd), "w", buffering=1, encoding=encoding, errors="replace")
        for target in (1, 2):
            self._saved[target] = os.dup(target)
            os.dup2(log_fd, target)
        to_log = os.fdopen(os.dup(log_fd), "w", buffering=1, encoding="utf-8", errors="replace")
        os.close(log_fd)
        self._objects = old
        sys.stdout = sys.stderr = to_log  # what libraries print from Python (Ray's lines from its workers)
        for h in logging.getLogger().handlers:  # mikupal's terminal handler keeps writing to the terminal
            stream = getattr(h, "stream", None)  # pytest's and other handlers may have none
            to_terminal = stream is not None and (stream in old or stream is sys.__stderr__)  # basicConfig's, before NativeStderr
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) and to_terminal:
                self._handlers.append((h, h.stream))
                h.setStream(self.stream)
        return self

    def __exit__(self, *exc) -> None:
        for h, stream in self._handlers:
            h.setStream(stream)
        self._handlers = []
        if self._objects is None:
            return
        to_log = sys.stderr
        _flush(to_log)
        sys.stdout, sys.stderr = self._objects
        self._objects = None
        for target, saved in self._saved.items():
            os.dup2(saved, target)
            os.close(saved)
        self._saved = {}
        to_log.close()
        self.stream.close()
        self.stream = sys.stderr


def _flush(f) -> None:
    try:
        f.flush()
    except (OSError, ValueError, AttributeError):
        pass


class Display:
    """The live panel on a TTY, plain lines otherwise (see the module docstring)."""

    def __init__(self, stream: IO[str], progress: Progress, output_dir: Path, enabled: bool = True,
                 stages: Sequence[str] = ()):
        self.stream = stream
        self.stages = list(stages)  # the pipeline's order, for the activity line
        self.progress = progress
        self.output_dir = Path(output_dir)
        self.enabled = enabled
        self.live = None
        self.since = time.time()
        self._last_line = 0.0
        self._stop = threading.Event()
        self._beat: Optional[threading.Thread] = None
        self._handlers: list[tuple[logging.StreamHandler, IO]] = []

    @property
    def is_tty(self) -> bool:
        try:
            return self.stream.isatty()
        except (AttributeError, ValueError):
            return False

    def say(self, text: str) -> None:
        """A line of its own, above the live panel when there is one."""
        if not self.enabled:
            return
        if self.live is not None:
            self.live.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    def start(self) -> None:
        if not self.enabled:
            return
        if self.is_tty:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream, force_terminal=True)
            self.live = Live(console=console, refresh_per_second=4, transient=False, get_renderable=self.render,
                             redirect_stdout=False, redirect_stderr=False)
            self.live.start()
            self._route_logging(console)
        else:
            self._beat = threading.Thread(target=self._heartbeat, name="mikupal-progress", daemon=True)
            self._beat.start()

    def update(self) -> None:
        """A video was committed."""
        if not self.enabled:
            return
        if self.live is not None:
            self.live.refresh()
        else:
            self._plain()

    def stop(self) -> None:
        self._stop.set()
        for h, stream in self._handlers:
            h.setStream(stream)
        self._handlers = []
        if self.live is not None:
            self.live.stop()
            self.live = None

    # ------------------------------------------------------------ plain lines

    def _plain(self) -> None:
        self._last_line = time.monotonic()
        acts = self.activity_text(plain=True)
        print(self.progress.line() + (f"; {acts}" if acts else ""), file=self.stream, flush=True)

    def _heartbeat(self) -> None:
        while not self._stop.wait(1.0):
            if time.monotonic() - self._last_line >= HEARTBEAT_S:
                self._plain()

    # ------------------------------------------------------------ the live panel

    def _route_logging(self, console) -> None:
        """mikupal's warnings print above the panel instead of through it."""

        class _Above:
            def write(self, text: str) -> int:
                if text.strip():
                    console.print(text.rstrip("\n"), markup=False, highlight=False)
                return len(text)

            def flush(self) -> None:
                pass

        for h in logging.getLogger().handlers:
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) and h.stream is self.stream:
                self._handlers.append((h, h.stream))
                h.setStream(_Above())

    def render(self):
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        p = self.progress
        grid = Table.grid(padding=(0, 1))
        total = p.media_total if p.media_total else None
        bar = ProgressBar(total=total or 1.0, completed=min(p.done_seconds, total) if total else 0.0, width=30,
                          pulse=total is None)
        eta = p.eta_seconds
        head = Text.assemble(("media ", "bold"), p.media_fraction(), "  ", ("elapsed ", "bold"), clock(p.elapsed),
                             "  ", ("ETA ", "bold"), clock(eta) if eta is not None else "-")
        grid.add_row(bar, head)
        kept = Text.assemble(("kept ", "bold"), f"{seconds(p.kept_seconds)} ({p.kept_seconds / 3600:.3f} h) in "
                             f"{p.segments_kept} segment{'s' * (p.segments_kept != 1)}", "  ", ("videos ", "bold"),
                             f"{p.videos_done}/{p.videos_total}", "  ", ("rejects ", "bold"), str(p.rejects))
        grid.add_row(Text(""), kept)
        grid.add_row(Text(""), Text.assemble(("stages ", "bold"), self.activity_text() or "starting workers ..."))
        return grid

    def activity_text(self, plain: bool = False) -> str:
        acts = read_activity(self.output_dir, since=self.since)
        rank = {name: i for i, name in enumerate(self.stages)}
        ordered = sorted(acts.values(), key=lambda a: (rank.get(a.stage, len(rank)), a.stage))
        return (", " if plain else " | ").join(_describe(a) for a in ordered)


def _describe(a: StageActivity) -> str:
    """'asr 1/1 busy talk.mp4 @63.2 s', 'vision 2/2 busy ...', 'vad idle'."""
    if not a.busy:
        return f"{a.stage} idle"
    where = f" {a.source}" if a.source else ""
    if a.at is not None:
        where += f" @{a.at:.1f} s"
    return f"{a.stage} {a.busy}/{a.workers} busy{where}"


def summary_line(report: dict, output: str, global_speakers: Optional[int] = None) -> str:
    """'kept 2.7 s of 6.1 s in 1 segment, 1 speaker -> out/report.html', then what a resumed run
    skipped and the run's pace."""
    n, speakers = report.get("segments", 0), global_speakers
    if speakers is None:
        speakers = len(report.get("speakers") or [])
    html = os.path.join(output, "report.html")
    line = (f"kept {seconds(report.get('kept_seconds', 0.0))} of {seconds(report.get('input_seconds', 0.0))} in {n} "
            f"segment{'s' * (n != 1)}, {speakers} speaker{'s' * (speakers != 1)} -> {html}")
    videos, this_run = report.get("videos", 0), report.get("videos_processed_this_run", 0)
    rejects = report.get("rejects", 0)
    pace = f"{report.get('processed_seconds', 0.0):.1f} s of media in {report.get('wall_seconds', 0.0):.1f} s " \
           f"({report.get('speed_ratio', 0.0):.2f}x real time)"
    if this_run < videos:
        done = videos - this_run
        rest = (f"nothing left to do: all {videos} videos were already committed and were skipped" if this_run == 0 else
                f"{this_run} video{'s' * (this_run != 1)} run now ({pace}), {done} already committed and skipped")
    else:
        rest = f"{videos} video{'s' * (videos != 1)}, {pace}"
    cost = report.get("cost_usd")
    cost_text = f", labeling cost ${cost:.4f}" if cost else ""
    return f"{line}\n{rest}; {rejects} reject{'s' * (rejects != 1)}{cost_text}"
