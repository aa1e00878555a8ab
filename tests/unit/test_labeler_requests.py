"""One way to ask about a segment (`labelers.requests`): the pipeline's label stage and
`mikupal label` build the same request, with the same dialogue context, for the same segment."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mikupal.config import compose  # noqa: E402
from mikupal.engine.commit import OutputDir, dataset_row  # noqa: E402
from mikupal.labelers.relabel import LabelDataset, rewrite_parquet  # noqa: E402
from mikupal.labelers.requests import context_turns, earlier_turns, label_request  # noqa: E402
from mikupal.records import DatasetSegment, EmotionAnnotation, EmotionIntensity, SpeechSegment  # noqa: E402
from mikupal.records import Payload, WorkItem  # noqa: E402
from mikupal.stages.label import LabelStage  # noqa: E402
from tests.fakes import make_clip  # noqa: E402


def test_context_is_the_last_n_turns_of_the_same_dialogue_in_order():
    turns = [("b", 2, "b2"), ("a", 3, "a3"), ("a", 1, "a1"), ("a", 2, ""), ("b", 1, "b1"), ("a", 4, "a4")]
    ctx = context_turns(turns, 2, dialogue=lambda t: t[0], order=lambda t: t[1], line=lambda t: t[2])
    # a4 sees a2 (no text: left out) and a3; a3 sees a1 and a2; each dialogue apart; input order kept
    assert ctx == [["b1"], ["a1"], [], ["a1"], [], ["a3"]]
    assert context_turns(turns, 0, dialogue=lambda t: t[0], order=lambda t: t[1], line=lambda t: t[2]) == [[]] * 6
    every = earlier_turns(turns, None, dialogue=lambda t: t[0], order=lambda t: t[1])
    assert [t[2] for t in every[5]] == ["a1", "", "a3"]


def test_the_request_follows_the_mode():
    text = compose(["labeler=gemini", "labeler.mode=text"]).labeler
    video = compose(["labeler=gemini", "labeler.mode=video"]).labeler
    root = Path("/out")
    r = label_request(video, "s1", None, root=root, clip="clips/s1.mp4", audio="audio/s1.flac", context=["before"],
                      start=1.0, end=3.5)
    assert (r.mode, r.transcript, r.context, r.duration) == ("video", "", [], 2.5)
    assert r.media_path() == root / "clips" / "s1.mp4" and r.audio_path == root / "audio" / "s1.flac"
    r = label_request(text, "s1", "hi", context=["before"], duration=4.0, start=0.0, end=1.0)
    assert (r.context, r.duration, r.clip_path, r.media_path()) == (["before"], 4.0, None, None)
    assert label_request(text, "s1", "hi", start=2.0, end=1.0).duration == 0.0


@pytest.mark.parametrize("mode", ["text", "video"])
def test_pipeline_and_label_command_ask_the_same_way(tmp_path, mode):
    root = tmp_path / "out"
    items = []
    for i in (2, 0, 3, 1):  # out of order: the context follows the start times
        sid = f"va_{i:09d}"
        clip = make_clip(root / "clips" / "va" / f"{sid}.mp4", seconds=1.0, seed=i)
        seg = SpeechSegment(segment_id=sid, video_id="va", source="va.mp4", start=i * 4.0, end=i * 4.0 + 2.5,
                            text=f"utterance {i}")
        items.append(WorkItem(source="va.mp4", video_id="va", status="segment", fanout_total=4, data=Payload(segment=seg, clip_path=str(clip.relative_to(root)), audio_path=f"audio/va/{sid}.flac")))
    OutputDir(root).commit_video("va", items)  # unlabeled rows: what `mikupal label` reads
    cfg = compose(["labeler=gemini", f"labeler.mode={mode}", "labeler.context_turns=2"])
    stage = LabelStage(cfg, root)
    in_run = [stage.request_for(it, ctx) for it, ctx in zip(items, stage._contexts(items))]
    ds = LabelDataset(root, cfg)
    rows = {r["segment_id"]: r for rows in ds.todo.values() for r in rows}
    offline = [ds.request(rows[it.data.segment.segment_id]) for it in items]
    assert in_run == offline
    assert in_run[2].context == (["utterance 1", "utterance 2"] if mode == "text" else [])
    assert in_run[2].duration == pytest.approx(2.5) and in_run[2].clip_path.is_file()


def test_an_annotation_fills_the_same_columns_in_a_run_and_in_a_rewritten_file(tmp_path):
    ann = EmotionAnnotation(emotions=[EmotionIntensity(name="Joy", intensity=0.75)], primary_emotion="Joy",
                            rationale="smiles", labeler_model="m", prompt_version="v1", input_tokens=10,
                            output_tokens=3, cost_usd=None, agreement=0.5)
    seg = SpeechSegment(segment_id="v_1", video_id="v", source="v.mp4", start=0.0, end=1.0, text="t")
    item = WorkItem(source="v.mp4", video_id="v", status="segment", data=Payload(segment=seg, clip_path="c.mp4", audio_path="a.flac"))
    unlabeled = dataset_row(item, 16000)
    assert unlabeled.primary_emotion is None and unlabeled.emotions == [] and unlabeled.cost_usd == 0.0
    item.data.annotation = ann
    in_run = dataset_row(item, 16000).model_dump()
    path = tmp_path / "v.parquet"
    pq.write_table(DatasetSegment.to_table([unlabeled]), path)
    assert rewrite_parquet(path, pq.read_table(path), {"v_1": ann}) == 1
    rewritten = pq.read_table(path).to_pylist()[0]
    cols = ann.row_columns()
    assert {k: in_run[k] for k in cols} == {k: rewritten[k] for k in cols} == cols
    assert cols["emotion_agreement"] == 0.5 and cols["cost_usd"] is None
