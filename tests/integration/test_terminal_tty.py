"""What a user sees: on a terminal (a pseudo-TTY here) the run shows media seconds done of the
total, elapsed time, an ETA, kept seconds and each stage's activity, and no line of Ray's own; it
ends with the result in words pointing at report.html. A re-run says what it skipped; `--json`
prints the totals instead. Off a TTY the progress is plain lines."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
RAY_LINES = ("core_worker", "(pid=", "raylet", "gcs_server", "(MapWorker", "Ray Data", "[ WARN")


def run_in_pty(args: list[str], env: dict[str, str], timeout: float = 400) -> tuple[int, str]:
    """`mikupal ARGS` with stdin, stdout and stderr on a pseudo-terminal 160 columns wide."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    p = subprocess.Popen([sys.executable, "-m", "mikupal.cli", *args], stdin=slave, stdout=slave, stderr=slave, env=env,
                         cwd=ROOT, close_fds=True)
    os.close(slave)
    buf, t0 = b"", time.monotonic()
    try:
        while time.monotonic() - t0 < timeout:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 1 << 16)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                buf += data
            elif p.poll() is not None:
                break
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
        os.close(master)
    return p.returncode, ANSI.sub("", buf.decode("utf-8", "replace"))


@pytest.fixture
def three_clips(tmp_path, media):
    d = tmp_path / "in"
    d.mkdir()
    for i in (1, 2, 3):
        (d / f"vr_face{i}.mp4").symlink_to(media / f"vr_face{i}.mp4")
    return d


def test_a_tty_shows_seconds_eta_and_stages_and_no_ray_line(tmp_path, three_clips, models_dir):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled", "TERM": "xterm-256color", "COLUMNS": "160"}
    env.pop("RAY_ADDRESS", None)
    args = [f"input={three_clips}", f"output={out}", f"models_dir={models_dir}", "profile=cpu", "separation=none",
            "asr.model=tiny.en", "labeler=none", "offline=true"]
    rc, screen = run_in_pty(["run", *args], env)
    assert rc == 0, screen[-3000:]
    report = json.loads((out / "report.json").read_text())
    total = report["input_seconds"]
    assert f"of {total:.1f} s (" in screen  # media seconds of the total, once the headers were read
    assert re.search(r"media \d+\.\d s of \d+\.\d s \(\d+%\)", screen), screen[-2000:]
    assert re.search(r"elapsed \d+:\d\d", screen) and re.search(r"ETA \d+:\d\d", screen), screen[-2000:]
    assert re.search(r"kept \d+\.\d s \(\d\.\d{3} h\) in \d+ segments?", screen)
    stages = re.findall(r"\b(probe|vad|asr|speaker|quality|vision) (?:\d+/\d+ busy|idle)", screen)
    assert {"asr", "vision"} <= set(stages), screen[-2000:]
    assert re.search(r"(asr|speaker|vision) \d+/\d+ busy vr_face\d\.mp4 @\d+\.\d s", screen), screen[-2000:]
    for noise in RAY_LINES + ("Traceback",):
        assert noise not in screen, (noise, screen[-3000:])
    summary = f"kept {report['kept_seconds']:.1f} s of {total:.1f} s in {report['segments']} segment"
    assert summary in screen and f"-> {out / 'report.html'}" in screen

    again = subprocess.run([sys.executable, "-m", "mikupal.cli", "run", *args], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"resuming: 3 of 3 videos already committed ({total:.1f} s of media) are skipped; 0 to run" in again.stderr
    assert "nothing left to do: all 3 videos were already committed and were skipped" in again.stdout
    js = subprocess.run([sys.executable, "-m", "mikupal.cli", "run", "--json", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)
    totals = json.loads(js.stdout.strip().splitlines()[-1])
    assert totals["videos"] == 3 and totals["segments"] == report["segments"] and totals["output"] == str(out)
