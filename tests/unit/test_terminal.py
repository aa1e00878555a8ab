"""The run's terminal without a run: fds 1 and 2 go to the log while `Terminal` is active and
mikupal's own lines still reach the user; the plain-line display (a pipe, a CI log) says media
seconds done of the total, the ETA, what was kept and what each stage is on; the summary in words."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

from mikupal.engine.progress import Progress, clock, seconds
from mikupal.engine.terminal import Display, summary_line
from mikupal.records import SpeechSegment, WorkItem
from mikupal.stages.activity import ActivityFile, clear_activity, read_activity

ROOT = Path(__file__).resolve().parents[2]


def test_native_lines_go_to_the_log_and_ours_to_the_terminal(tmp_path):
    script = textwrap.dedent(f"""
        import logging, os, sys
        from mikupal.engine.terminal import Terminal
        logging.basicConfig(level="WARNING")
        with Terminal({str(tmp_path / 'run.log')!r}) as t:
            os.write(2, b"[2026 E 1 1] core_worker.cc:2465: native noise\\n")
            os.write(1, b"(MapWorker pid=1) worker stdout\\n")
            print("printed by a library", file=sys.stderr)
            logging.getLogger("mikupal").warning("our own warning")
            print("progress line", file=t.stream, flush=True)
        print("after", file=sys.stderr)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == ["WARNING:mikupal:our own warning", "progress line", "after"], r.stderr
    assert r.stdout == ""
    log = (tmp_path / "run.log").read_text()
    assert "core_worker.cc" in log and "worker stdout" in log and "printed by a library" in log


def test_inside_the_run_log_ray_lines_from_python_go_to_the_log_too(tmp_path):
    """As a run nests them: RunLog (whose NativeStderr filters fd 2) and then Terminal. What Ray
    prints through Python's sys.stderr (its workers' forwarded lines) stays off the terminal."""
    script = textwrap.dedent(f"""
        import logging, os, sys
        from mikupal.engine.run_log import RunLog
        from mikupal.engine.terminal import Terminal
        logging.basicConfig(level="WARNING")
        with RunLog({str(tmp_path)!r}) as rl, Terminal(rl.path) as t:
            print("(MapWorker(MapBatches(AsrStage)) pid=7) forwarded by Ray", file=sys.stderr, flush=True)
            os.write(2, b"[2026-12-06 18:04:03,075 E 1 1] core_worker.cc:2465: native\\n")
            os.write(2, b"an unknown native line\\n")
            logging.getLogger("mikupal").warning("our own warning")
            print("progress line", file=t.stream, flush=True)
        print("after", file=sys.stderr)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == ["WARNING:mikupal:our own warning", "progress line", "after"], r.stderr
    log = "".join(p.read_text() for p in (tmp_path / "logs").glob("run-*.log"))
    assert "forwarded by Ray" in log and "core_worker.cc" in log and "an unknown native line" in log


def _utterance(video: str, start: float, end: float) -> WorkItem:
    seg = SpeechSegment(segment_id=f"{video}_{int(start * 1000):09d}", video_id=video, source=f"/in/{video}.mp4", start=start, end=end, text="x",
                        language="en", words=[])
    it = WorkItem(source=f"/in/{video}.mp4", video_id=video, status="segment")
    it.data.segment = seg
    return it


def test_plain_lines_say_seconds_eta_kept_and_stage_activity(tmp_path, monkeypatch):
    monkeypatch.setattr("mikupal.stages.activity.MIN_INTERVAL_S", 0.0)
    p = Progress(videos_total=2, media_total=100.0)
    p.started -= 10.0  # ten seconds in
    p.saw(_utterance("va", 0.0, 25.0))
    asr, vision = ActivityFile(tmp_path, "asr"), ActivityFile(tmp_path, "vision")
    asr.started(WorkItem(source="/in/va.mp4", video_id="va"))
    asr.advanced(_utterance("va", 30.0, 41.5))
    vision.started(_utterance("va", 20.0, 25.0))
    vision.finished(_utterance("va", 20.0, 25.0))
    stream = io.StringIO()
    d = Display(stream, p, tmp_path, stages=["probe", "asr", "vision"])
    d.since = 0.0
    d.update()
    line = stream.getvalue().strip()
    assert line.startswith("[0:10] videos 0/2, media 25.0 s of 100.0 s (25%), ETA 0:30, kept 0.0 s in 0 segments"), line
    assert line.endswith("; asr 1/1 busy va.mp4 @41.5 s, vision idle"), line
    acts = read_activity(tmp_path)
    assert acts["asr"].busy == 1 and acts["vision"].busy == 0 and acts["vision"].workers == 1
    clear_activity(tmp_path, remove=True)
    assert read_activity(tmp_path) == {}


def test_units_and_summary():
    assert (clock(75), clock(3725), seconds(2.71), seconds(600), seconds(9000)) == ("1:15", "1:02:05", "2.7 s", "10.0 min", "2.50 h")
    report = {"segments": 1, "kept_seconds": 2.71, "input_seconds": 6.13, "videos": 1, "videos_processed_this_run": 1,
              "rejects": 2, "processed_seconds": 6.13, "wall_seconds": 12.0, "speed_ratio": 0.51, "speakers": [{}]}
    first, second = summary_line(report, "out", global_speakers=1).splitlines()
    assert first == "kept 2.7 s of 6.1 s in 1 segment, 1 speaker -> out/report.html"
    assert second == "1 video, 6.1 s of media in 12.0 s (0.51x real time); 2 rejects"
    resumed = summary_line(report | {"videos": 3, "videos_processed_this_run": 0}, "out")
    assert "nothing left to do: all 3 videos were already committed and were skipped" in resumed
