"""Batch API JSONL: request lines the service accepts, result lines validated and priced."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mikupal.config import compose  # noqa: E402
from mikupal.labelers import LabelRequest, make_labeler  # noqa: E402
from mikupal.labelers.batch import ingest_results, write_requests  # noqa: E402
from mikupal.labelers.pricing import RunCost  # noqa: E402
from mikupal.taxonomy import load_taxonomy  # noqa: E402
from tests.fakes import FakeGemini, make_clip  # noqa: E402

KEY = "batch-key"


def test_samples_keys_errors_and_discount(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", seconds=1.0)
    cfg = compose(["labeler=gemini", "labeler.samples=2"]).labeler
    lab = make_labeler(cfg, load_taxonomy("cowen_keltner_26"), KEY)
    reqs = [LabelRequest(f"s{i}", f"text {i}", "video", clip_path=clip, duration=1.0) for i in range(4)]
    n = write_requests(tmp_path / "req.jsonl", lab, reqs)
    lines = [json.loads(x) for x in (tmp_path / "req.jsonl").read_text().splitlines()]
    assert n == 8 and [x["key"] for x in lines[:2]] == ["s0#0", "s0#1"]
    assert lines[0]["request"]["generationConfig"]["seed"] == 1234
    assert lines[1]["request"]["generationConfig"]["seed"] == 1235
    out = []
    with FakeGemini(api_key=KEY) as srv:
        for x in lines:
            status, body, _ = srv.handle("POST", "/v1beta/models/gemini-2.5-flash:generateContent",
                                         {"x-goog-api-key": KEY}, json.dumps(x["request"]).encode())
            assert status == 200
            out.append({"key": x["key"], "response": body})
    out[2] = {"key": "s1#0", "error": {"code": 429, "message": "quota"}}  # s1 keeps one good sample
    out[4] = {"key": "s2#0", "response": {**out[4]["response"], "candidates": [{"finishReason": "SAFETY"}]}}
    out[5] = {"key": "s2#1", "response": {**out[5]["response"], "candidates": [
        {"content": {"parts": [{"text": "{broken"}], "role": "model"}, "finishReason": "STOP"}]}}
    del out[6:8]  # s3 missing entirely
    (tmp_path / "res.jsonl").write_text("\n".join(json.dumps(o) for o in out) + "\nnot json\n")
    stats = RunCost()
    results = ingest_results(tmp_path / "res.jsonl", lab, reqs, stats)
    assert [r.segment_id for r in results] == ["s0", "s1", "s2", "s3"]
    assert results[0].ok and results[0].annotation.samples == 2 and results[0].annotation.agreement == 1.0
    assert results[1].ok and results[1].annotation.samples == 1
    assert results[2].reason == "labeler_safety_block"
    assert results[3].reason == "labeler_batch_missing"
    assert stats.outcomes == {"ok": 3, "rate_limited": 1, "invalid_output": 1, "safety_block": 1}
    assert stats.segments_labeled == 2 and sum(stats.segments_rejected.values()) == 2
    one = out[0]["response"]["usageMetadata"]
    by = {d["modality"]: d["tokenCount"] for d in one["promptTokensDetails"]}
    p = compose(["labeler=gemini"]).labeler.price()  # the default model's price table
    full = (by["TEXT"] * p.text + by["VIDEO"] * p.video + by["AUDIO"] * p.audio + one["candidatesTokenCount"] * p.output) / 1e6
    assert results[0].cost_usd == pytest.approx(full * 0.5 * 2, rel=0.05)  # two samples at half price
