"""The request policy: retries, backoff with hints, timeouts, validation re-asks, limits, budget."""

from __future__ import annotations

import asyncio
import json
import random
import time

import pytest

from mikupal.config import LabelerConfig, Price
from mikupal.labelers.base import Answer, LabelerError, LabelRequest, Labeler, Usage
from mikupal.labelers.budget import LimitsClient, RunLimits
from mikupal.labelers.pool import LabelPool, backoff_delay
from mikupal.taxonomy import load_taxonomy

MELD = load_taxonomy("meld")


def good(label="joy"):
    return json.dumps({"text_analysis": "t", "rationale": "r", "primary_emotion": label})


class Scripted(Labeler):
    """Answers from a per-segment script: str = answer text, Exception = raised, float = sleep first."""

    kind = "scripted"

    def __init__(self, cfg, script=None, default=None, usage=None, delay=0.0):
        super().__init__(cfg, MELD, "sekret-key")
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.default = default if default is not None else good()
        self.usage = usage or Usage({"text": 1000}, 100)
        self.delay = delay
        self.calls: list[tuple[str, int]] = []

    def estimate_input(self, request):
        return {"text": 1000}

    async def generate(self, request, sample=0):
        self.calls.append((request.segment_id, sample))
        steps = self.script.get(request.segment_id)
        step = steps.pop(0) if steps else self.default
        if self.delay:
            await asyncio.sleep(self.delay)
        if isinstance(step, float):
            await asyncio.sleep(step)
            step = self.default
        if isinstance(step, BaseException):
            raise step
        return Answer(step, self.usage, "fake-model")


def cfg(**kw):
    base = dict(kind="gemini", model="m", mode="text", taxonomy=None, requests_in_flight=4, max_retries=3,
                invalid_retries=1, backoff_base_s=0.5, backoff_max_s=10.0, timeout_s=5.0,
                requests_per_minute=1e6, tokens_per_minute=1e9, max_output_tokens=100,
                prices={"m": Price(text=1.0, output=10.0)})
    base.pop("taxonomy")
    base.update(kw)
    return LabelerConfig(**base)


class Sleeps:
    def __init__(self):
        self.calls: list[float] = []

    async def __call__(self, s):
        self.calls.append(s)
        await asyncio.sleep(0)


def req(i="s0"):
    return LabelRequest(segment_id=i, transcript=f"hello {i}", mode="text", duration=2.0)


def run(coro):
    return asyncio.run(coro)


def test_rate_limit_honours_retry_hint_then_succeeds():
    c = cfg()
    lab = Scripted(c, {"s0": [LabelerError("labeler_rate_limited", "429", retryable=True, retry_after=0.2)]})
    sleeps = Sleeps()
    pool = LabelPool(lab, sleep=sleeps, rng=random.Random(0))
    res = run(pool.label(req()))
    assert res.ok and res.attempts == 2
    assert len(sleeps.calls) >= 1 and all(0.2 <= s <= 0.24 for s in sleeps.calls)
    assert pool.stats.outcomes == {"rate_limited": 1, "ok": 1}


def test_backoff_is_exponential_with_jitter_and_bounded():
    c = cfg(max_retries=3)
    err = LabelerError("labeler_server_error", "HTTP 503", retryable=True)
    lab = Scripted(c, {"s0": [err] * 10})
    sleeps = Sleeps()
    res = run(LabelPool(lab, sleep=sleeps, rng=random.Random(1)).label(req()))
    assert not res.ok and res.reason == "labeler_server_error" and "gave up after 4 attempts" in res.message
    assert res.attempts == 4 and len(lab.calls) == 4  # 1 + max_retries, never more
    for k, s in enumerate(sleeps.calls):
        assert 0.5 * 2**k / 2 <= s <= 0.5 * 2**k
    rng = random.Random(2)
    assert all(backoff_delay(20, 1.0, 60.0, rng) <= 60.0 for _ in range(100))


def test_hint_longer_than_backoff_max_gives_up_at_once():
    c = cfg(backoff_max_s=1.0)
    lab = Scripted(c, {"s0": [LabelerError("labeler_rate_limited", "quota", retryable=True, retry_after=3600.0)]})
    res = run(LabelPool(lab, sleep=Sleeps()).label(req()))
    assert res.reason == "labeler_rate_limited" and "3600" in res.message and res.attempts == 1


def test_invalid_answer_is_asked_again_then_rejected_with_raw_text():
    c = cfg(invalid_retries=2)
    bad = '{"text_analysis": "cut' + "x" * 5000
    lab = Scripted(c, {"s0": [bad] * 5})
    pool = LabelPool(lab, sleep=Sleeps())
    res = run(pool.label(req()))
    assert res.reason == "labeler_invalid_output" and res.attempts == 3
    assert '{"text_analysis": "cut' in res.message and "chars cut" in res.message and len(res.message) < 2600
    assert res.cost_usd == pytest.approx(3 * (1000 * 1.0 + 100 * 10.0) / 1e6)  # invalid answers are billed
    lab2 = Scripted(c, {"s0": [bad, good("sadness")]})
    res2 = run(LabelPool(lab2, sleep=Sleeps()).label(req()))
    assert res2.ok and res2.annotation.primary_emotion == "sadness"


def test_permanent_errors_are_not_retried_and_auth_is_fatal():
    c = cfg()
    lab = Scripted(c, {"s0": [LabelerError("labeler_safety_block", "SAFETY")]})
    res = run(LabelPool(lab, sleep=Sleeps()).label(req()))
    assert res.reason == "labeler_safety_block" and res.attempts == 1

    c1 = cfg(requests_in_flight=1)
    lab = Scripted(c1, {"s0": [LabelerError("labeler_auth_error", "HTTP 403 key sekret-key", fatal=True)]})
    pool = LabelPool(lab, sleep=Sleeps())
    results = run(pool.label_many([req(f"s{i}") for i in range(5)]))
    assert [r.reason for r in results] == ["labeler_auth_error"] * 5
    assert len(lab.calls) == 1  # the others were never sent
    assert all("sekret-key" not in r.message and "***" in r.message for r in results)


def test_timeout_is_retried_then_rejected():
    c = cfg(timeout_s=0.05, max_retries=1, backoff_base_s=0.0)
    lab = Scripted(c, {"s0": [0.5, 0.5]})
    res = run(LabelPool(lab).label(req()))
    assert res.reason == "labeler_timeout" and res.attempts == 2


def test_missing_media_is_rejected_without_a_request(tmp_path):
    lab = Scripted(cfg())
    r = LabelRequest("s0", "hi", mode="video", clip_path=tmp_path / "nope.mp4")
    res = run(LabelPool(lab).label(r))
    assert res.reason == "labeler_missing_media" and not lab.calls


def test_concurrency_is_bounded():
    c = cfg(requests_in_flight=3)
    lab = Scripted(c, delay=0.02)
    pool = LabelPool(lab)
    results = run(pool.label_many([req(f"s{i}") for i in range(12)]))
    assert all(r.ok for r in results) and [r.segment_id for r in results] == [f"s{i}" for i in range(12)]
    assert pool.max_in_flight == 3


def test_self_consistency_samples_use_distinct_seeds_and_agreement():
    c = cfg(samples=3, seed=10)
    lab = Scripted(c)
    answers = iter([good("joy"), good("sadness"), good("joy")])
    seeds = []

    async def gen(request, sample=0):
        seeds.append(lab.seed(sample))
        return Answer(next(answers), lab.usage, "fake-model")

    lab.generate = gen  # type: ignore[method-assign]
    pool = LabelPool(lab)
    res = run(pool.label(req()))
    ann = res.annotation
    assert sorted(seeds) == [10, 11, 12]
    assert ann.primary_emotion == "joy" and ann.samples == 3 and ann.agreement == pytest.approx(2 / 3)
    assert {e.name: e.intensity for e in ann.emotions}["joy"] == pytest.approx(2 / 3)
    assert ann.input_tokens == 3000 and ann.output_tokens == 300


def _drain(limits, n, tokens=0, now=None):
    """Take n grants from a RunLimits on a fake clock, advancing it by each wait; the clock at the end."""
    for _ in range(n):
        while (g := limits.reserve(None, tokens)).status == "wait":
            now[0] += g.wait_s
        assert g.status == "go"
        limits.settle(g.ticket, 0.0, tokens)
    return now[0]


def test_rate_limits_spacing_with_fake_clock():
    now = [0.0]
    lim = RunLimits(None, requests_per_minute=120, tokens_per_minute=1e9, clock=lambda: now[0])  # 2/s, burst 2
    assert _drain(lim, 6, now=now) == pytest.approx(2.0)  # 2 burst, then 4 more at 2/s
    now = [0.0]
    lim = RunLimits(None, requests_per_minute=1e9, tokens_per_minute=600, clock=lambda: now[0])  # 10 tokens/s
    g = lim.reserve(None, 50)  # larger than the bucket: allowed into debt once full
    assert g.status == "go"
    t = now[0]
    _drain(lim, 1, tokens=1, now=now)
    assert now[0] - t == pytest.approx(4.1)


def test_rate_limits_real_clock_rpm():
    async def go():
        lim = LimitsClient(RunLimits(None, requests_per_minute=1200, tokens_per_minute=1e9))  # 20/s, burst 20
        t = time.perf_counter()
        for _ in range(30):
            g = await lim.acquire(0.0, 10)
            await lim.settle(g.ticket, 0.0, 10)
        return time.perf_counter() - t

    assert 0.4 <= run(go()) < 1.5


def test_budget_reservations():
    b = RunLimits(1.0, 1e9, 1e9)
    first = b.reserve(0.6, 0)
    assert first.status == "go"
    assert b.reserve(0.6, 0).status == "wait"  # does not fit next to the in-flight 0.6
    b.settle(first.ticket, 0.3)  # the first cost less than reserved: now it fits
    second = b.reserve(0.6, 0)
    assert second.status == "go"
    b.settle(second.ticket, 0.5)
    assert b.reserve(0.6, 0).status == "exhausted"  # 0.8 spent, nothing in flight: exhausted for good
    assert b.exhausted and b.reserve(0.01, 0).status == "exhausted"
    assert b.spent == pytest.approx(0.8)
    unpriced = RunLimits(1.0, 1e9, 1e9)
    assert unpriced.reserve(None, 0).status == "exhausted"  # never sent blind under a cap


def test_halt_stops_every_worker_and_pause_is_shared():
    now = [0.0]
    lim = RunLimits(None, 1e9, 1e9, clock=lambda: now[0])
    lim.pause(2.0)
    g = lim.reserve(None, 0)
    assert g.status == "wait" and g.wait_s == pytest.approx(2.0)
    lim.halt("labeler_model_not_found", "models/x is not found")
    lim.halt("labeler_auth_error", "later reasons do not replace the first")
    g = lim.reserve(None, 0)
    assert (g.status, g.reason) == ("halted", "labeler_model_not_found")


def test_budget_cap_rejects_the_rest_cleanly():
    c = cfg(max_usd=0.01, requests_in_flight=4)  # est per request 0.001 + 0.001 = 0.002; actual 0.002
    lab = Scripted(c)
    pool = LabelPool(lab)
    results = run(pool.label_many([req(f"s{i}") for i in range(20)]))
    ok = [r for r in results if r.ok]
    rest = [r for r in results if not r.ok]
    assert len(ok) == 5 and len(lab.calls) == 5
    assert {r.reason for r in rest} == {"budget_exhausted"} and len(rest) == 15
    assert pool.limits.target.spent == pytest.approx(0.01) and pool.stats.usd <= 0.01 + 1e-12
