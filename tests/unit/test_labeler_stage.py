"""LabelStage: concurrent labeling of a batch of WorkItems, rejects, pass-through, no key leaks."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mikupal.config import compose  # noqa: E402
from mikupal.records import SpeechSegment  # noqa: E402
from mikupal.records import Payload, WorkItem  # noqa: E402
from mikupal.stages.label import LabelStage  # noqa: E402
from tests.fakes import FakeGemini, FaultPlan, make_audio, make_clip  # noqa: E402

KEY = "AIza-SECRET-stage-key-0001"


def items(n, out: Path, video_id="vid", with_clip=True):
    res = []
    for i in range(n):
        sid = f"{video_id}_{i * 3000:09d}"
        clip = f"clips/{sid}.mp4"
        if with_clip and not (out / clip).exists():
            make_clip(out / clip, seconds=1.0, seed=i)
        seg = SpeechSegment(segment_id=sid, video_id=video_id, source="in.mp4", start=i * 3.0, end=i * 3.0 + 2.5,
                            text=f"utterance {i} of {video_id}")
        res.append(WorkItem(source="in.mp4", video_id=video_id, status="segment", data=Payload(segment=seg, clip_path=clip, audio_path=f"audio/{sid}.flac")))
    return res


def stage_for(out, srv, *over):
    cfg = compose(["labeler=gemini", f"labeler.base_url={srv.url}", "labeler.backoff_base_s=0.01",
                   "labeler.requests_in_flight=8", *over])
    return LabelStage(cfg, out)


def test_batch_is_labeled_concurrently_and_dropped_items_pass(tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    its = items(6, tmp_path)
    its[2].reject("asd", "no_active_speaker", "nobody speaks")
    its[4].data.clip_path = "clips/missing.mp4"
    with FakeGemini(api_key=KEY, latency_s=0.2) as srv:
        st = stage_for(tmp_path, srv)
        out = WorkItem.from_table(st.run_batch(WorkItem.to_table(its)))
        st.close()
        assert [o.item_id for o in out] == [i.item_id for i in its]
        assert srv.max_in_flight >= 3  # concurrent, not one by one
    by = {o.item_id: o for o in out}
    assert by[its[2].item_id].rejects[-1].stage == "asd" and by[its[2].item_id].data.annotation is None
    miss = by[its[4].item_id]
    assert miss.status == "dropped" and miss.rejects[-1].reason == "labeler_missing_media"
    for i in (0, 1, 3, 5):
        o = by[its[i].item_id]
        assert o.status == "segment" and o.data.annotation and o.data.annotation.primary_emotion
        assert o.times[-1].stage == "label"
    cost = json.loads((tmp_path / "labeler" / "cost.json").read_text())
    assert cost["segments_labeled"] == 4 and cost["segments_rejected"] == {"labeler_missing_media": 1}
    assert cost["usd_per_kept_hour"] == pytest.approx(cost["usd"] / (4 * 2.5 / 3600), rel=1e-4)


def test_rejects_carry_the_fault_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    its = items(3, tmp_path)
    with FakeGemini(api_key=KEY, faults=FaultPlan(rate=1.0, kinds=("safety",))) as srv:
        st = stage_for(tmp_path, srv)
        out = st._label(its)  # the single-process path used by run_item too
        st.close()
    assert all(o.status == "dropped" and o.rejects[-1].reason == "labeler_safety_block" for o in out)
    assert all(o.rejects[-1].stage == "label" for o in out)


def test_text_mode_uses_the_batch_as_dialogue_context(tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    its = items(3, tmp_path, with_clip=False)
    with FakeGemini(api_key=KEY) as srv:
        st = stage_for(tmp_path, srv, "labeler.mode=text", "labeler.context_turns=1")
        out = st._label(list(reversed(its)))
        st.close()
        texts = {r["contents"][0]["parts"][0]["text"] for r in srv.requests}
    assert all(o.data.annotation for o in out)
    third = next(t for t in texts if "utterance 2 of vid" in t.split("<target_utterance>")[1])
    assert "1. utterance 1 of vid" in third and "utterance 0" not in third


def test_audio_mode_reads_the_vocals(tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    its = items(1, tmp_path, with_clip=False)
    make_audio(tmp_path / its[0].data.audio_path, seconds=2.5)
    with FakeGemini(api_key=KEY) as srv:
        st = stage_for(tmp_path, srv, "labeler.mode=audio")
        [o] = st._label(its)
        st.close()
        part = srv.requests[0]["contents"][0]["parts"][0]
    assert o.data.annotation is not None
    assert (part.get("inlineData") or part.get("inline_data"))["mime_type"] == "audio/flac"


def test_none_and_batch_pass_through_without_setup(tmp_path):
    its = items(2, tmp_path, with_clip=False)
    for over in (["labeler=none"], ["labeler=gemini", "labeler.batch=true"]):
        st = LabelStage(compose(over), tmp_path)
        out = WorkItem.from_table(st.run_batch(WorkItem.to_table(its)))
        assert [o.model_dump() for o in out] == [i.model_dump() for i in its]
        assert st._labeler is None


def test_api_key_never_reaches_logs_outputs_or_rejects(tmp_path, monkeypatch, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    its = items(8, tmp_path)
    faults = FaultPlan(rate=0.6, seed=5, slow_s=0.6)
    with FakeGemini(api_key=KEY, faults=faults) as srv:
        st = stage_for(tmp_path, srv, "labeler.timeout_s=0.3", "labeler.max_retries=1")
        out = WorkItem.to_table(st._label(its))
        st.close()
        assert srv.counts["ok"] >= 1 and sum(srv.counts.values()) > srv.counts["ok"]
    import pickle

    assert KEY not in caplog.text
    captured = capsys.readouterr()
    assert KEY not in captured.out + captured.err
    assert KEY.encode() not in pickle.dumps(st)  # the stage ships to Ray workers: no key inside
    assert KEY not in json.dumps(out.to_pylist(), default=str)
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert KEY.encode() not in f.read_bytes(), f
    # and with a wrong key the 400 reply is reported without echoing what was sent
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-WRONG-" + KEY)
    with FakeGemini(api_key=KEY) as srv:
        st = stage_for(tmp_path, srv)
        bad = st._label(items(2, tmp_path))
        st.close()
    assert {o.rejects[-1].reason for o in bad} == {"labeler_auth_error"}
    assert "WRONG" not in caplog.text and all("WRONG" not in o.rejects[-1].message for o in bad)
