"""The small pieces the reliability fixes rest on, checked without running the pipeline."""

from __future__ import annotations

import errno

import pytest

from mikupal import media as M
from mikupal.engine.commit import RETRY_REASONS, summarize
from mikupal.errors import StageError
from mikupal.records import Reject
from mikupal.records import WorkItem
from mikupal.stages.faults import FAULT_ENV, injected_fault, is_disk_full


def test_fault_injection_is_off_by_default_and_fires_once_with_a_marker(tmp_path, monkeypatch):
    item = WorkItem(source="a.mp4", video_id="vid1")
    monkeypatch.delenv(FAULT_ENV, raising=False)
    injected_fault("vad", item)  # nothing set: nothing happens
    monkeypatch.setenv(FAULT_ENV, "asr:vid1:raise;vad:other:raise")
    injected_fault("vad", item)  # another stage's, another item's
    marker = tmp_path / "once"
    monkeypatch.setenv(FAULT_ENV, f"vad:*:raise:{marker}")
    with pytest.raises(RuntimeError, match="injected fault"):
        injected_fault("vad", item)
    injected_fault("vad", item)  # the marker exists: fired once only
    assert marker.exists()


def test_disk_full_is_recognised_through_the_cause_chain(tmp_path):
    full = OSError(errno.ENOSPC, "No space left on device")
    try:
        try:
            raise full
        except OSError as e:
            raise StageError("separation_failed", "boom") from e
    except StageError as wrapped:
        assert is_disk_full(wrapped, tmp_path, heuristic=False)
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"), tmp_path, heuristic=False)
    assert not is_disk_full(ValueError("bad value"), tmp_path)  # plenty of space here


def test_transient_rejects_make_a_video_redone_by_the_next_run():
    def items(reason):
        it = WorkItem(source="a.mp4", video_id="vid1")
        return [it.reject("vision", reason, "x")]

    assert {"stage_error", "worker_lost", "disk_full", "labeler_rate_limited"} <= RETRY_REASONS
    assert summarize("vid1", items("stage_error"))[2].final is False
    assert summarize("vid1", items("no_face"))[2].final is True
    assert summarize("vid1", [WorkItem(source="a.mp4", video_id="vid1", rejects=[
        Reject(item_id="x", video_id="vid1", source="a.mp4", stage="label", reason="labeler_timeout")])])[2].final is False


def test_truncation_check_reads_box_headers_only(tmp_path):
    def box(kind: bytes, payload: bytes) -> bytes:
        return (8 + len(payload)).to_bytes(4, "big") + kind + payload

    whole = box(b"ftyp", b"isom" + b"\0" * 12) + box(b"moov", b"\0" * 100) + box(b"mdat", b"\1" * 5000)
    (tmp_path / "whole.mp4").write_bytes(whole)
    (tmp_path / "cut.mp4").write_bytes(whole[:3000])
    (tmp_path / "text.mp4").write_text("not a box at all " * 10)
    assert M.truncation(tmp_path / "whole.mp4") is None
    assert "'mdat' box runs to byte" in M.truncation(tmp_path / "cut.mp4")
    assert M.truncation(tmp_path / "text.mp4") is None  # not ISO-BMFF: left to FFmpeg
