"""One writer per output, no self-ingestion, every input file accounted for, models checked up front."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mikupal.config import compose
from mikupal.engine.inputs import expand_inputs
from mikupal.engine.lock import OutputLock, mark_output
from mikupal.layout import MARKER as OUTPUT_MARKER
from mikupal.errors import UserError
from mikupal.engine.stages import preflight

ROOT = Path(__file__).resolve().parents[2]


def test_a_second_lock_is_refused_naming_the_holder(tmp_path):
    with OutputLock(tmp_path, "run"):
        with pytest.raises(UserError) as e:
            OutputLock(tmp_path, "label").acquire()
        msg = str(e.value)
        assert f"pid {os.getpid()} on {socket.gethostname()}" in msg and "mikupal run" in msg
        assert "\n" not in msg
    OutputLock(tmp_path, "run").acquire().release()  # released: free again


def test_a_lock_held_by_another_process_is_refused(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys,time; from mikupal.engine.lock import OutputLock; "
         f"l=OutputLock({str(tmp_path)!r}, 'run').acquire(); print('held', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=f"pid {holder.pid} "):
            OutputLock(tmp_path, "run").acquire()
    finally:
        holder.kill()
        holder.wait()
    # the kernel dropped the dead holder's flock; its record is stale and is taken over, with a line
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == holder.pid
    import logging

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("mikupal").addHandler(handler)
    try:
        lock = OutputLock(tmp_path, "run").acquire()
    finally:
        logging.getLogger("mikupal").removeHandler(handler)
    assert any(f"pid {holder.pid}" in r.getMessage() and "stale" in r.getMessage() for r in records)
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    lock.release()
    assert (tmp_path / ".lock").read_text() == ""  # a clean release leaves nothing stale


def _touch(p: Path, data: bytes = b"x" * 64) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_folder_expansion_skips_output_dirs_and_lists_non_media(tmp_path):
    inp = tmp_path / "videos"
    _touch(inp / "a.mp4", b"a" * 100)
    _touch(inp / "talk.m4a", b"b" * 100)
    _touch(inp / "voice.WAV", b"c" * 100)
    _touch(inp / "notes.pdf")
    _touch(inp / "sub" / "readme.txt")
    out = inp / "out"  # the run's own output, inside the input (its marker not written yet)
    _touch(out / "clips" / "v1" / "s1.mp4", b"d" * 100)
    other = inp / "old_run"  # an earlier mikupal output
    _touch(other / "clips" / "v2" / "s2.mp4", b"e" * 100)
    mark_output(other)
    got = expand_inputs(str(inp), output=out)
    assert sorted(Path(s).name for s, _, _ in got.videos) == ["a.mp4", "talk.m4a", "voice.WAV"]
    assert sorted((Path(s.path).name, s.reason) for s in got.skipped) == [("notes.pdf", "not_media"), ("readme.txt", "not_media")]
    assert got.rejects == []


def test_a_list_naming_output_files_rejects_each_entry(tmp_path):
    out = tmp_path / "out"
    mark_output(out) if out.mkdir() is None else None
    clip = _touch(out / "clips" / "v1" / "s1.mp4", b"d" * 100)
    good = _touch(tmp_path / "in" / "a.mp4", b"a" * 100)
    lst = tmp_path / "list.txt"
    lst.write_text(f"{clip}\n{good}\n")
    got = expand_inputs(str(lst), output=tmp_path / "elsewhere")
    assert [Path(s).name for s, _, _ in got.videos] == ["a.mp4"]
    assert [(r.source, r.reason) for r in got.rejects] == [(str(clip), "inside_output_dir")]
    assert str(out) in got.rejects[0].message
    assert (out / OUTPUT_MARKER).is_file()


def test_missing_model_offline_is_one_line_before_any_worker(tmp_path):
    cfg = compose([f"models_dir={tmp_path}", "offline=true", "asr.model=tiny.en", "separation=none", "labeler=none"])
    with pytest.raises(UserError) as e:
        preflight(cfg)
    msg = str(e.value)
    assert "tiny.en" in msg and str(tmp_path) in msg and "\n" not in msg


def test_missing_face_model_offline_names_the_file_and_its_source(tmp_path, models_dir):
    (tmp_path / "whisper").symlink_to(models_dir / "whisper")  # tiny.en, and base for the language check
    (tmp_path / "ge2e").symlink_to((models_dir / "ge2e").resolve())
    cfg = compose([f"models_dir={tmp_path}", "offline=true", "asr.model=tiny.en", "separation=none", "labeler=none"])
    with pytest.raises(UserError) as e:
        preflight(cfg)
    msg = str(e.value)
    assert str(tmp_path) in msg and "github.com" in msg, msg


def test_accounting_counts_overlaps_once_and_leaves_vad_spans_apart(tmp_path):
    from mikupal.committed import FunnelCounts, VideoSummary
    from mikupal.engine.commit import OutputDir, _atomic_text
    from mikupal.records import DatasetSegment, Reject
    from mikupal.report.summary import accounting

    od = OutputDir(tmp_path)
    vid = "v0123456789abcdef000"
    seg = DatasetSegment(segment_id=f"{vid}_000001000", video_id=vid, source="a.mp4", start=1.0, end=4.0, duration=3.0,
                         text="hi", language="en", words=[], audio_path="", clip_path="", sample_rate=16000,
                         speaker_boxes=[], asd_score=0.0)
    rejects = [
        Reject.span(vid, "a.mp4", "asr", "no_transcript", "gap", 3.9, 5.0),  # overlaps the kept piece by 0.1 s
        Reject.span(vid, "a.mp4", "vision", "no_active_speaker", "x", 6.0, 8.0),
        Reject.span(vid, "a.mp4", "vad", "too_short", "burst", 9.0, 9.1),  # outside VAD's speech seconds
    ]
    od._write(vid, [seg], rejects)
    summary = VideoSummary(key=vid, video_id=vid, source="a.mp4", funnel=[FunnelCounts(stage="vad", count=1, seconds=7.5)])
    _atomic_text(summary.model_dump_json(), od.marker(vid))
    acc = accounting(od, od.summaries())
    assert acc["kept_seconds"] == 3.0 and acc["accounted_seconds"] == 6.0 and acc["rejected_seconds"] == 3.0
    assert acc["unaccounted_seconds"] == 1.5 and acc["accounted_fraction"] == 0.8 and acc["reconciles"] is False
    assert acc["vad_dropped_seconds"] == pytest.approx(0.1)
    assert acc["rejected_seconds_by_reason"] == {"no_active_speaker": 2.0, "no_transcript": pytest.approx(1.1)}


def test_run_log_takes_library_warnings_off_the_terminal(tmp_path, capsys):
    import logging
    import warnings

    from mikupal.engine.run_log import RunLog

    with RunLog(tmp_path) as rl:
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # whatever filters earlier tests left
            warnings.warn("a library's deprecation notice", FutureWarning)
        logging.getLogger("ray.data").info("Starting execution of Dataset")
        logging.getLogger("mikupal").warning("our own warning")
    text = rl.path.read_text()
    assert "a library's deprecation notice" in text and "Starting execution" in text and "our own warning" in text
    assert "deprecation notice" not in capsys.readouterr().err


def test_an_output_may_share_its_input_folder_but_its_written_parts_are_never_read(tmp_path):
    _touch(tmp_path / "a.mp4", b"a" * 100)
    _touch(tmp_path / "raw" / "b.mp4", b"c" * 100)
    for written in ("clips/v1/s1.mp4", "audio/v1/s1.flac", ".work/v1/x.wav", "report.json"):
        _touch(tmp_path / written, b"b" * 100)
    mark_output(tmp_path)
    got = expand_inputs(str(tmp_path), output=tmp_path)  # input=videos/ output=videos/
    assert sorted(Path(s).name for s, _, _ in got.videos) == ["a.mp4", "b.mp4"] and got.skipped == []
    assert len(expand_inputs(str(tmp_path / "raw"), output=tmp_path).videos) == 1  # the user's own folder in it
    with pytest.raises(UserError, match="part of what the mikupal output"):
        expand_inputs(str(tmp_path / "clips"), output=tmp_path / "new")
