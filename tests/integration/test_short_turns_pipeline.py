"""Turns of 0.5-2 s through the whole pipeline, on conversations with exact ground truth.

Built from the real clips (tests/conversations.py `SHORT_TURNS`): a 0.6 s reply at the end of an
utterance, a 0.8 s back-channel inside one, and a fast exchange of 0.6-2.5 s turns; with both
faces on screen, or with one face and the other person a voice off screen. One real run through
Ray, then every kept segment is checked against the truth (one voice), and every second against
the report's accounting and the reject spans.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mikupal.config import compose
from mikupal.engine.run import run
from mikupal.records import Word, join_words

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conversations import SHARED_MEDIA, Truth, short_turn_set  # noqa: E402

pytestmark = pytest.mark.skipif(not (SHARED_MEDIA / "vr_face1.mp4").is_file(), reason="../shared/media absent")

CASES = [("reply_at_end", "offscreen"), ("reply_at_end", "side"), ("backchannel", "offscreen"), ("fast_exchange", "side")]


@pytest.fixture(scope="module")
def talks(tmp_path_factory) -> tuple[Path, dict[str, Truth]]:
    d = tmp_path_factory.mktemp("short_turns")
    truths: dict[str, Truth] = {}
    for name, layout in CASES:
        truths.update(short_turn_set(d, layouts=(layout,), names=[name]))
    return d, truths


@pytest.fixture(scope="module")
def result(tmp_path_factory, ray_session, models_dir, talks):
    if not (models_dir / "ge2e" / "pretrained.pt").exists():
        pytest.skip("GE2E weights absent (pip install --no-deps resemblyzer)")
    inp, truths = talks
    out = tmp_path_factory.mktemp("short_turns_out")
    report = run(compose([f"input={inp}", f"output={out}", f"models_dir={models_dir}", "profile=cpu", "separation=none",
                          "asr.model=tiny.en", "offline=true", "engine.progress=false", "labeler=none"]))
    return out, truths, report


def rows(out: Path, sub: str) -> list[dict]:
    return [r for f in sorted((out / sub).glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_kept_segments_hold_one_voice(result):
    out, truths, _ = result
    segs = rows(out, "segments")
    purities = [truths[Path(r["source"]).stem].purity(r["start"], r["end"]) for r in segs]
    assert len(segs) >= 4, "the long turns must be kept"
    assert sum(p >= 0.9 for p in purities) >= 0.98 * len(purities), purities
    for r in segs:
        assert r["text"] == join_words([Word(**w) for w in r["words"]])


def test_every_second_is_accounted_for(result):
    out, truths, report = result
    acc = report["accounting"]
    assert acc["reconciles"] and acc["unaccounted_seconds"] <= 0.02 * acc["vad_seconds"], acc
    segs, rejects = rows(out, "segments"), [r for r in rows(out, "rejects") if r["start"] is not None]
    for name, t in truths.items():
        spans = [(r["start"], r["end"]) for r in segs + rejects if Path(r["source"]).stem == name]
        for v in t.voiced:
            covered = sum(max(0.0, min(b, v["end"]) - max(a, v["start"])) for a, b in spans)
            assert covered >= 0.95 * (v["end"] - v["start"]), (name, v, sorted(spans))


def test_the_short_turns_end_in_reject_spans_of_their_own(result):
    """The other person's 0.6-0.8 s turns: never inside a kept segment, and rejected where they are
    (`speaker_change` when cut out of an utterance, or the face check's reason for a piece of their own)."""
    out, truths, _ = result
    segs, rejects = rows(out, "segments"), rows(out, "rejects")
    for name, t in truths.items():
        main = max(t.persons, key=lambda p: sum(x["end"] - x["start"] for x in t.turns if x["person"] == p))
        for turn in t.turns:
            if turn["person"] == main or turn["end"] - turn["start"] > 1.0:
                continue
            mid = (turn["start"] + turn["end"]) / 2.0
            kept = [r for r in segs if Path(r["source"]).stem == name and r["start"] <= mid < r["end"]]
            assert not kept or t.main_person(kept[0]["start"], kept[0]["end"]) == turn["person"], (name, turn, kept)
            why = {r["reason"] for r in rejects if Path(r["source"]).stem == name and r["start"] is not None
                   and r["start"] <= mid < r["end"]}
            assert kept or why & {"speaker_change", "overlapping_speech", "no_active_speaker", "low_confidence"}, (name, turn, why)


def test_cut_messages_say_why(result):
    out, _, _ = result
    msgs = [r["message"] for r in rows(out, "rejects") if r["reason"] == "speaker_change"]
    assert msgs and all("voice" in m or "face" in m for m in msgs), msgs
