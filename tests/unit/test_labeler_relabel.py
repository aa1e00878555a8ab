"""`mikupal label input=OUT` labels what needs it: segments whose final state is a labeler reject
(kept for it under labeler/pending/, also when no segment was kept) and segments never labeled;
`--relabel` labels everything again into labels/<model>__<prompt_version>/, apart from segments/."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mikupal.cli import main  # noqa: E402
from mikupal.engine.commit import OutputDir  # noqa: E402
from mikupal.records import SpeechSegment  # noqa: E402
from mikupal.records import Payload, WorkItem  # noqa: E402
from tests.fakes import FakeGemini, make_clip  # noqa: E402

KEY = "AIza-relabel-key"


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)


def commit_video(root: Path, vid: str, n: int, rejected: set[int] = frozenset(), labeled: bool = False) -> None:
    """Commit one video as a run would: n utterances past vision, those in `rejected` rejected by the labeler."""
    from mikupal.records import EmotionAnnotation, EmotionIntensity

    items = []
    for i in range(n):
        sid = f"{vid}_{i * 4000:09d}"
        clip = make_clip(root / "clips" / vid / f"{sid}.mp4", seconds=1.0, seed=i)
        seg = SpeechSegment(segment_id=sid, video_id=vid, source=f"{vid}.mp4", start=i * 4.0, end=i * 4.0 + 2.5,
                            text=f"utterance {i} of {vid}")
        it = WorkItem(source=f"{vid}.mp4", video_id=vid, status="segment", fanout_total=n, data=Payload(segment=seg, clip_path=str(clip.relative_to(root)), audio_path=f"audio/{vid}/{sid}.flac", speaker_boxes=[[1.0, 2.0, 3.0, 4.0]], asd_score=0.9))
        if i in rejected:
            it.reject("label", "labeler_safety_block", "finish reason SAFETY (HARM_CATEGORY_HARASSMENT=HIGH)")
        elif labeled:
            it.data.annotation = EmotionAnnotation(emotions=[EmotionIntensity(name="Joy", intensity=1.0)],
                                              primary_emotion="Joy", labeler_model="earlier", cost_usd=0.001)
        items.append(it)
    OutputDir(root).commit_video(vid, items)


def label(root: Path, url: str, *extra: str) -> int:
    return main(["label", f"input={root}", "labeler=gemini", f"labeler.base_url={url}", *extra])


def test_rejected_segments_are_relabeled_even_when_none_was_kept(tmp_path):
    root = tmp_path / "out"
    commit_video(root, "va", 2, rejected={0, 1})  # the labeler refused both: nothing kept
    assert not list((root / "segments").glob("*.parquet"))
    assert pq.read_metadata(root / "labeler" / "pending" / "va.parquet").num_rows == 2
    with FakeGemini(api_key=KEY) as srv:
        assert label(root, srv.url) == 0
        assert srv.counts["ok"] == 2
        rows = pq.read_table(root / "segments" / "va.parquet").to_pylist()
        assert [r["segment_id"] for r in rows] == ["va_000000000", "va_000004000"]
        assert all(r["primary_emotion"] and r["speaker_boxes"] == [[1.0, 2.0, 3.0, 4.0]] for r in rows)
        assert not (root / "labeler" / "pending" / "va.parquet").exists()
        assert not (root / "rejects" / "va.parquet").exists()  # no segment is both kept and rejected
        [summary] = OutputDir(root).summaries()
        assert summary.kept == 2 and summary.rejects == 0 and len(summary.primary_emotions) == 2
        assert summary.cost_usd == pytest.approx(sum(r["cost_usd"] for r in rows))
        assert label(root, srv.url) == 0 and srv.counts["ok"] == 2  # nothing left: nothing sent


def test_unlabeled_and_rejected_rows_of_one_video_end_in_one_file(tmp_path):
    root = tmp_path / "out"
    commit_video(root, "vb", 3, rejected={1})  # labeler=none-like rows 0 and 2, a labeler reject at 1
    with FakeGemini(api_key=KEY) as srv:
        assert label(root, srv.url) == 0 and srv.counts["ok"] == 3
    rows = pq.read_table(root / "segments" / "vb.parquet").to_pylist()
    assert [r["start"] for r in rows] == [0.0, 4.0, 8.0] and all(r["primary_emotion"] for r in rows)


def test_relabel_keeps_both_results_apart_and_resumes(tmp_path, capsys):
    root = tmp_path / "out"
    commit_video(root, "vc", 3, labeled=True)
    before = (root / "segments" / "vc.parquet").read_bytes()
    with FakeGemini(api_key=KEY) as srv:
        assert label(root, srv.url, "--relabel", "labeler.model=gemini-3.5-flash") == 0
        assert srv.counts["ok"] == 3
        assert (root / "segments" / "vc.parquet").read_bytes() == before  # the first labels are untouched
        new = pq.read_table(root / "labels" / "gemini-3.5-flash__v2" / "vc.parquet").to_pylist()
        assert sorted(r["segment_id"] for r in new) == ["vc_000000000", "vc_000004000", "vc_000008000"]
        assert {r["labeler_model"] for r in new} == {"gemini-3.5-flash"} and all(r["primary_emotion"] for r in new)
        assert label(root, srv.url, "--relabel", "labeler.model=gemini-3.5-flash") == 0
        assert srv.counts["ok"] == 3  # resumed: nothing left to relabel with this model and prompt
    assert "nothing to do" in capsys.readouterr().err
