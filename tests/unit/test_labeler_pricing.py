"""Cost from token counts: per answer, per segment, per run and per kept hour."""

from __future__ import annotations

import json

import pytest

from mikupal.config import Price
from mikupal.labelers.base import Usage
from mikupal.labelers.pricing import RunCost, cost_usd

FLASH = Price(text=0.30, image=0.30, video=0.30, audio=1.00, output=2.50)


def test_cost_by_modality_by_hand():
    u = Usage({"text": 1000, "video": 2000, "audio": 500}, output_tokens=300, thoughts_tokens=200)
    # (1000*0.30 + 2000*0.30 + 500*1.00 + (300+200)*2.50) / 1e6
    assert cost_usd(u, FLASH) == pytest.approx(0.00265)
    assert cost_usd(u, FLASH, discount=0.5) == pytest.approx(0.001325)
    assert cost_usd(Usage({"document": 1_000_000}), FLASH) == pytest.approx(0.30)  # priced as text
    assert u.input_tokens == 3500 and u.billed_output_tokens == 500


def test_run_cost_per_kept_hour(tmp_path):
    run = RunCost(model="gemini-2.5-flash")
    a = Usage({"text": 1000, "video": 2000, "audio": 500}, 300, 200)
    b = Usage({"text": 800}, 100, 0)
    run.add_attempt("rate_limited")
    run.add_attempt("ok", a, cost_usd(a, FLASH))
    run.add_attempt("invalid_output", b, cost_usd(b, FLASH))  # billed, though the segment was rejected
    run.add_segment(True, 6.0)
    run.add_segment(False, 3.0, "labeler_invalid_output")
    total = 0.00265 + (800 * 0.30 + 100 * 2.50) / 1e6
    assert run.usd == pytest.approx(total)
    assert run.usd_per_kept_hour == pytest.approx(total / (6.0 / 3600))
    d = run.to_dict()
    assert d["requests"] == 3 and d["segments_labeled"] == 1
    assert d["segments_rejected"] == {"labeler_invalid_output": 1}
    assert d["input_tokens_by_modality"] == {"audio": 500, "text": 1800, "video": 2000}
    run.write_json(tmp_path / "cost.json")
    assert json.loads((tmp_path / "cost.json").read_text())["usd_per_kept_hour"] == pytest.approx(
        total / (6.0 / 3600), rel=1e-6
    )
    assert "per kept hour" in run.summary()
    assert RunCost().usd_per_kept_hour is None
