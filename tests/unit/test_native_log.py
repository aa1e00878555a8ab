"""Native libraries' lines on fd 2: to the log, and to the terminal too when they end the process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mikupal.engine.native_log import is_fatal_line, is_library_line

ROOT = Path(__file__).resolve().parents[2]
ACTOR = "[2026-12-06 18:04:03,075 E 23897 23897] core_worker.cc:2465: Actor with class name ... max_restarts > 0\n"
EXITS = ("[2026-12-06 20:17:56,283 E 4170 4793] core_worker_process.cc:1109: The core worker has already been shutdown. "
         "This happens when the language frontend accesses the Ray's worker after it is shutdown. The process will exit\n")
CHECK = "[2026-12-06 20:17:56,283 F 4170 4793] raylet_client.cc:60: Check failed: status.ok()\n"
OPENCV = "[ WARN:0@4.494] global net_impl_backend.cpp:388 setPreferableTarget Targets are not supported\n"


def test_library_lines_and_the_ones_that_end_the_process():
    assert all(is_library_line(x) for x in (ACTOR, EXITS, CHECK, OPENCV))
    assert not is_library_line("mikupal run: something the user must read\n")
    assert [is_fatal_line(x) for x in (ACTOR, EXITS, CHECK, OPENCV)] == [False, True, True, False]


def test_fd2_lines_reach_the_log_and_only_the_user_s_and_fatal_ones_the_terminal(tmp_path):
    log = tmp_path / "native.log"
    lines = [ACTOR, OPENCV, EXITS, "plain words\n"]
    code = f"""
import os
from mikupal.engine.native_log import NativeStderr
with NativeStderr({str(log)!r}):
    for line in {lines!r}:
        os.write(2, line.encode())
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert p.stderr.splitlines() == [EXITS.rstrip("\n"), "plain words"]
    logged = log.read_text()
    assert ACTOR.strip() in logged and OPENCV.strip() in logged and EXITS.strip() in logged and "plain words" not in logged
