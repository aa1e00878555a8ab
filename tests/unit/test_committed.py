"""`committed.py` reads back what `engine/commit.py` wrote, without creating anything."""

from __future__ import annotations

from mikupal.committed import FUNNEL_STAGES, CommittedOutput
from mikupal.engine.commit import OutputDir
from mikupal.engine.inputs import SkippedFile, write_skipped
from mikupal.records import Reject


def test_reads_the_markers_rejects_and_skip_list_the_writer_wrote(tmp_path):
    out = OutputDir(tmp_path)
    reject = Reject(item_id="src-1", video_id="", source="gone.mp4", stage="input", reason="missing_file")
    out.commit_rejects("src-1", [reject], "gone.mp4")
    out.commit_rejects("src-2", [reject.model_copy(update={"item_id": "src-2"})], "lost.mp4", final=False)
    write_skipped(tmp_path, [SkippedFile(str(tmp_path / "notes.txt"))])

    read = CommittedOutput(tmp_path)
    assert [s.key for s in read.summaries()] == ["src-1", "src-2"]
    assert [f.stage for f in read.summaries()[0].funnel] == list(FUNNEL_STAGES)
    assert read.is_done("src-1") and not read.is_done("src-2")  # not final: redone by the next run
    assert read.read_rejects().column("reason").to_pylist() == ["missing_file", "missing_file"]
    assert read.read_segments().num_rows == 0
    assert read.skipped() == [{"path": str(tmp_path / "notes.txt"), "reason": "not_media"}]


def test_reading_a_folder_with_nothing_committed_creates_nothing(tmp_path):
    read = CommittedOutput(tmp_path / "empty")
    assert read.summaries() == [] and read.skipped() == [] and read.read_rejects().num_rows == 0
    assert not read.is_done("abc") and not (tmp_path / "empty").exists()
