"""The labeler preflight and run-level failures, over real HTTP with the real SDKs against the fakes:
a retired model, a rejected key, a used-up daily quota, a model without a price."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mikupal.cli import main  # noqa: E402
from mikupal.config import compose  # noqa: E402
from mikupal.errors import UserError  # noqa: E402
from mikupal.labelers import LabelRequest, make_labeler  # noqa: E402
from mikupal.labelers.pool import LabelPool  # noqa: E402
from mikupal.labelers.preflight import preflight, served_models  # noqa: E402
from mikupal.taxonomy import load_taxonomy  # noqa: E402
from tests.fakes import FakeGemini, FakeOpenAI  # noqa: E402
from tests.fakes.gemini_server import SERVED_MODELS  # noqa: E402

KEY = "AIza-preflight-key-4242"


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def gemini(url: str, *over: str):
    return compose(["labeler=gemini", f"labeler.base_url={url}", *over]).labeler


def test_served_model_passes_with_one_lookup():
    with FakeGemini(api_key=KEY) as srv:
        preflight(gemini(srv.url))
        assert srv.lookups == {"model_get": 1} and not srv.counts  # no generate request, nothing billed


def test_retired_model_is_one_line_naming_it_and_how_to_list():
    with FakeGemini(api_key=KEY, retired=("gemini-2.5-flash",)) as srv:
        with pytest.raises(UserError) as e:
            preflight(gemini(srv.url, "labeler.model=gemini-2.5-flash"))
    msg = str(e.value)
    assert "\n" not in msg and "labeler.model=gemini-2.5-flash" in msg and "mikupal models --labeler" in msg
    assert "models/gemini-2.5-flash is not found for API version v1beta" in msg  # the service's own words


@pytest.mark.parametrize("bad", ["wrong-key", ""])
def test_rejected_or_missing_key(monkeypatch, bad):
    monkeypatch.setenv("GEMINI_API_KEY", bad)
    with FakeGemini(api_key=KEY) as srv:
        with pytest.raises(UserError) as e:
            preflight(gemini(srv.url))
    assert ("rejected the API key" if bad else "needs an API key") in str(e.value)
    if bad:
        assert bad not in str(e.value).replace("API key", "")  # the key is never echoed


def test_models_listing_pages_through_the_service(capsys):
    many = tuple(f"gemini-test-{i:03d}" for i in range(130)) + SERVED_MODELS  # more than one page of 100
    with FakeGemini(api_key=KEY, served=many, retired=("gemini-test-007",)) as srv:
        ids = served_models(gemini(srv.url))
        assert len(ids) == len(many) - 1 and "gemini-test-007" not in ids and srv.lookups["model_list"] == 2
        assert main(["models", "--labeler", "labeler=gemini", f"labeler.base_url={srv.url}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "gemini-3.8-flash  (configured)" in lines and len(lines) == len(ids)


def test_openai_compatible_lists_models_and_refuses_an_unlisted_one():
    with FakeOpenAI(api_key=KEY, served=("qwen2.5-omni", "gpt-4o")) as srv:
        base = ["labeler=openai", f"labeler.base_url={srv.base_url}"]
        preflight(compose(base).labeler)
        with pytest.raises(UserError, match="labeler.model=gpt-9 is not served"):
            preflight(compose(base + ["labeler.model=gpt-9"]).labeler)
        assert served_models(compose(base).labeler) == ["gpt-4o", "qwen2.5-omni"]
        assert srv.lookups["model_list"] == 3 and not srv.counts


def test_unpriced_model_warns_and_refuses_max_usd(caplog, tmp_path, capsys):
    with FakeGemini(api_key=KEY) as srv:
        with caplog.at_level(logging.WARNING, logger="mikupal.labelers"):
            preflight(gemini(srv.url, "labeler.model=gemini-3.7-flash"))
        assert "labeler.prices.gemini-3.7-flash" in caplog.text and "null" in caplog.text
        priced = gemini(srv.url, "labeler.model=gemini-3.7-flash", "labeler.max_usd=1",
                        "+labeler.prices={gemini-3.7-flash: {text: 1, output: 2}}")  # as the warning says
        preflight(priced)
        with pytest.raises(UserError, match="cannot enforce max_usd without a price for gemini-3.7-flash"):
            preflight(gemini(srv.url, "labeler.model=gemini-3.7-flash", "labeler.max_usd=1"))
        # through the command line: exit 2, one line, and not one request sent blind
        (tmp_path / ".state" / "done").mkdir(parents=True)
        rc = main(["label", f"input={tmp_path}", "labeler=gemini", f"labeler.base_url={srv.url}",
                   "labeler.model=gemini-3.7-flash", "labeler.max_usd=1"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and "cannot enforce max_usd" in err[0]
        assert not srv.counts and srv.lookups["model_get"] == 2  # the two direct preflights only


def test_unpriced_model_costs_null_not_zero(tmp_path):
    with FakeGemini(api_key=KEY) as srv:
        lc = gemini(srv.url, "labeler.model=gemini-3.7-flash", "labeler.mode=text")

        async def go():
            lab = make_labeler(lc, load_taxonomy("meld"), KEY)
            try:
                pool = LabelPool(lab)
                return await pool.label(LabelRequest("s1", "hello there", "text")), pool.stats
            finally:
                await lab.aclose()

        res, stats = asyncio.run(go())
    assert res.ok and res.annotation.cost_usd is None and res.cost_usd is None
    assert stats.to_dict()["usd"] is None and stats.usd_per_kept_hour is None
    assert "cost unknown" in stats.summary()


@pytest.mark.parametrize("fake", ["gemini", "openai"])
def test_daily_quota_and_retired_model_halt_every_request(fake):
    """A per-day quota that runs out (and a model retired mid-run) is fatal: after the first such
    answer, no further request is sent, and every remaining segment carries the run-level reason."""
    cls = FakeGemini if fake == "gemini" else FakeOpenAI
    for kind, reason in (("quota", "labeler_quota_exhausted"), ("retired", "labeler_model_not_found")):
        extra = {"daily_quota": 3} if kind == "quota" else {}
        with cls(api_key=KEY, **extra) as srv:
            over = ["labeler.mode=text", "labeler.requests_in_flight=1", "labeler.backoff_base_s=0.01"]
            if fake == "gemini":
                lc = gemini(srv.url, *over)
            else:
                lc = compose(["labeler=openai", f"labeler.base_url={srv.base_url}", *over]).labeler
            if kind == "retired":
                srv.retired.add(lc.model)  # shut down after the preflight

            async def go():
                lab = make_labeler(lc, load_taxonomy("meld"), KEY)
                try:
                    return await LabelPool(lab).label_many(
                        [LabelRequest(f"s{i}", f"line {i}", "text") for i in range(10)])
                finally:
                    await lab.aclose()

            res = asyncio.run(go())
            failed = [r for r in res if not r.ok]
            assert {r.reason for r in failed} == {reason}, (fake, kind, [r.message for r in failed])
            assert len([r for r in res if r.ok]) == (3 if kind == "quota" else 0)
            blocked = "daily_quota" if kind == "quota" else "model_not_found"
            assert srv.counts[blocked] == 1  # one answer said so; nothing was sent after it
