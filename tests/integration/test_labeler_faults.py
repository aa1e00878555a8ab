"""Labeling under injected faults: nothing lost or duplicated, reasons exact, retries bounded,
the budget cap holds, and the cost per kept hour matches a hand calculation."""

from __future__ import annotations

import asyncio
import json
import math
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mikupal.config import compose  # noqa: E402
from mikupal.labelers import LabelRequest, make_labeler  # noqa: E402
from mikupal.labelers.pool import LabelPool  # noqa: E402
from mikupal.records import SpeechSegment  # noqa: E402
from mikupal.records import Payload, WorkItem  # noqa: E402
from mikupal.stages.label import LabelStage  # noqa: E402
from mikupal.taxonomy import load_taxonomy  # noqa: E402
from tests.fakes import FAULT_REASON, FakeGemini, FakeOpenAI, FaultPlan, make_clip  # noqa: E402

KEY = "AIza-integration-SECRET"
N = 200
MAX_RETRIES, INVALID_RETRIES = 2, 2
FAULTS = dict(rate=0.2, slow_s=2.0, retry_delay_s=0.1)


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("out")
    make_clip(d / "clips" / "c.mp4", seconds=1.0)
    return d


def work_items(n, dur=lambda i: 2.0):
    items = []
    for i in range(n):
        sid = f"vid_{i:09d}"
        seg = SpeechSegment(segment_id=sid, video_id="vid", source="in.mp4", start=i * 10.0, end=i * 10.0 + dur(i),
                            text=f"utterance #{i:03d}# says something")
        items.append(WorkItem(source="in.mp4", video_id="vid", status="segment", data=Payload(segment=seg, clip_path="clips/c.mp4", audio_path=f"audio/{sid}.flac")))
    return items


def stage(out, url, *over):
    cfg = compose(["labeler=gemini", f"labeler.base_url={url}", "labeler.requests_in_flight=16",
                   "labeler.timeout_s=1.0", "labeler.backoff_base_s=0.02", "labeler.backoff_max_s=2",
                   f"labeler.max_retries={MAX_RETRIES}", f"labeler.invalid_retries={INVALID_RETRIES}",
                   "labeler.requests_per_minute=100000", *over])
    return LabelStage(cfg, out)


def check_outcomes(srv, results: dict[str, tuple[bool, str | None]]):
    """Every segment: labeled after an 'ok' answer, or rejected with the reason of its last fault."""
    per_seg_limit = 1 + MAX_RETRIES + INVALID_RETRIES
    for i in range(len(results)):
        ok, reason = results[f"vid_{i:09d}"]
        seen = srv.outcomes_for(f"#{i:03d}#")
        assert 1 <= len(seen) <= per_seg_limit, (i, seen)
        if ok:
            assert seen[-1] == "ok", (i, seen)
        else:
            assert reason == FAULT_REASON[seen[-1]], (i, reason, seen)


def test_200_segments_at_20_percent_faults(out_dir, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with FakeGemini(api_key=KEY, faults=FaultPlan(seed=11, **FAULTS)) as srv:
        st = stage(out_dir, srv.url)
        items = work_items(N)
        out = WorkItem.from_table(st.run_batch(WorkItem.to_table(items)))
        st.close()
        ids = [o.item_id for o in out]
        assert ids == [i.item_id for i in items] and len(set(ids)) == N  # none lost, none duplicated
        for o in out:  # labeled xor rejected by the label stage
            assert (o.data.annotation is not None) != (o.status == "dropped")
            if o.status == "dropped":
                assert len(o.rejects) == 1 and o.rejects[0].stage == "label"
        results = {o.item_id: (o.data.annotation is not None, o.rejects[0].reason if o.rejects else None) for o in out}
        check_outcomes(srv, results)
        faults = sum(v for k, v in srv.counts.items() if k != "ok")
        assert faults > 30 and {k for k in srv.counts} >= set(FAULT_REASON)  # every kind was exercised
        assert srv.max_in_flight <= 16
        rejected = Counter(r for ok, r in results.values() if not ok)
        assert rejected["labeler_safety_block"] > 0 and rejected["labeler_max_tokens"] > 0
        cost = json.loads((out_dir / "labeler" / "cost.json").read_text())
        assert cost["segments_labeled"] + sum(cost["segments_rejected"].values()) == N
        assert cost["segments_rejected"] == dict(sorted(rejected.items()))
        assert cost["requests"] == sum(srv.counts.values())  # every request we sent, the server saw


def test_openai_compatible_under_faults(monkeypatch):
    n = 100
    cfg = compose(["labeler=openai", "labeler.requests_in_flight=16", "labeler.timeout_s=1.0",
                   "labeler.backoff_base_s=0.02", f"labeler.max_retries={MAX_RETRIES}",
                   f"labeler.invalid_retries={INVALID_RETRIES}", "labeler.requests_per_minute=100000"]).labeler
    with FakeOpenAI(api_key=KEY, faults=FaultPlan(seed=12, **FAULTS)) as srv:
        cfg = cfg.model_copy(update={"base_url": srv.base_url})

        async def go():
            lab = make_labeler(cfg, load_taxonomy("meld"), KEY)
            try:
                return await LabelPool(lab).label_many(
                    [LabelRequest(f"vid_{i:09d}", f"utterance #{i:03d}# says something", "text") for i in range(n)]
                )
            finally:
                await lab.aclose()

        res = asyncio.run(go())
        assert [r.segment_id for r in res] == [f"vid_{i:09d}" for i in range(n)]
        check_outcomes(srv, {r.segment_id: (r.ok, r.reason) for r in res})


def test_budget_cap_stops_at_the_cap_under_faults(out_dir, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    cap = 0.05
    with FakeGemini(api_key=KEY, faults=FaultPlan(seed=13, **FAULTS)) as srv:
        st = stage(out_dir, srv.url, f"labeler.max_usd={cap}")
        out = WorkItem.from_table(st.run_batch(WorkItem.to_table(work_items(120))))
        pool = st.session.pool
        reserve_one = 0.0
        lab = st._labeler
        from mikupal.labelers.base import Usage
        from mikupal.labelers.pricing import cost_usd

        est = lab.estimate_input(st.request_for(work_items(1)[0], []))
        reserve_one = cost_usd(Usage(est, lab.cfg.max_output_tokens), lab.cfg.price())
        spent = pool.limits.target.spent
        st.close()
        sent = sum(srv.counts.values())
    labeled = [o for o in out if o.data.annotation is not None]
    exhausted = [o for o in out if o.rejects and o.rejects[0].reason == "budget_exhausted"]
    assert len(labeled) + len([o for o in out if o.status == "dropped"]) == 120
    assert 0 < len(labeled) < 120 and len(exhausted) > 60
    assert cap - reserve_one < spent <= cap  # stopped at the cap: not over, and no request fitted any more
    assert sum(o.data.annotation.cost_usd for o in labeled) <= spent + 1e-12
    assert pool.stats.requests == sent  # nothing sent that the budget did not reserve


def test_cost_per_kept_hour_equals_hand_calculation(out_dir, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    price = compose(["labeler=gemini"]).labeler.prices["gemini-3.8-flash"]
    durations = [1.5 + (i % 7) * 0.75 for i in range(20)]
    with FakeGemini(api_key=KEY, thoughts_tokens=40) as srv:
        d = out_dir / "cost"
        make_clip(d / "clips" / "c.mp4", seconds=1.0)
        st = stage(d, srv.url)
        out = WorkItem.from_table(st.run_batch(WorkItem.to_table(work_items(20, lambda i: durations[i]))))
        st.close()
        assert all(o.data.annotation for o in out)
        usd = 0.0
        for e in srv.log:  # by hand: the token counts the server reported, times the price table
            u = e["usage"]
            by = {d["modality"]: d["tokenCount"] for d in u["promptTokensDetails"]}
            usd += (by.get("TEXT", 0) * price.text + by.get("VIDEO", 0) * price.video
                    + by.get("AUDIO", 0) * price.audio
                    + (u["candidatesTokenCount"] + u.get("thoughtsTokenCount", 0)) * price.output) / 1e6
    per_hour = usd / (sum(durations) / 3600)
    cost = json.loads((d / "labeler" / "cost.json").read_text())
    assert cost["usd"] == pytest.approx(usd, rel=1e-6)
    assert cost["usd_per_kept_hour"] == pytest.approx(per_hour, rel=1e-5)
    assert sum(o.data.annotation.cost_usd for o in out) == pytest.approx(usd, rel=1e-9)
    assert cost["thoughts_tokens"] == 40 * 20
    assert math.isclose(cost["kept_seconds"], sum(durations), rel_tol=1e-9)


@pytest.mark.benchmark
def test_pool_reaches_90_percent_of_ideal_throughput():
    """64 requests at concurrency 16 against 1 s latency: ideal 4 s (benchmarks/labeler_throughput.md).
    The pool alone must reach 90 %; through google-genai and HTTP the SDK's per-request CPU adds a
    load-dependent gap (91-95 % on a quiet 2-CPU machine), so that floor is looser."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from labeler_throughput import run_benchmark

    pool = run_benchmark(requests=64, concurrency=16, latency_s=1.0, backend="pool")
    assert pool["efficiency"] >= 0.9 and pool["ok"] == 64, pool
    http = run_benchmark(requests=64, concurrency=16, latency_s=1.0, backend="gemini")
    assert http["ok"] == 64 and http["max_in_flight"] == 16 and http["efficiency"] >= 0.8, http
