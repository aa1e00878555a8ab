"""`mikupal label input=DIR`: resumable relabeling of an output dir, live and through the Batch API."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mikupal.errors import UserError  # noqa: E402
from mikupal.commands.label import label_command  # noqa: E402
from mikupal.records import DatasetSegment, EmotionIntensity, Reject  # noqa: E402
from tests.fakes import FakeGemini, FaultPlan, make_clip  # noqa: E402

KEY = "AIza-command-key-31337"


def make_dataset(root: Path, videos=("va", "vb"), per_video=3, labeled=()):
    clip = make_clip(root / "clips" / "shared.mp4", seconds=1.0)
    for v in videos:
        rows = []
        for i in range(per_video):
            sid = f"{v}_{i * 4000:09d}"
            row = dict(segment_id=sid, video_id=v, source=f"{v}.mp4", start=i * 4.0, end=i * 4.0 + 3.0, duration=3.0,
                       text=f"line {i} of {v}", language="en", words=[], audio_path=f"audio/{sid}.flac",
                       clip_path=str(clip.relative_to(root)), sample_rate=44100, speaker_boxes=[], asd_score=1.0)
            if sid in labeled:
                row.update(emotions=[EmotionIntensity(name="Joy", intensity=1.0)], primary_emotion="Joy",
                           labeler_model="earlier")
            rows.append(DatasetSegment(**row))
        (root / "segments").mkdir(parents=True, exist_ok=True)
        pq.write_table(DatasetSegment.to_table(rows), root / "segments" / f"{v}.parquet")
    return root


def read_rows(root):
    rows = []
    for f in sorted((root / "segments").glob("*.parquet")):
        rows.extend(pq.read_table(f).to_pylist())
    return {r["segment_id"]: r for r in rows}


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)


def test_labels_unlabeled_rows_atomically_and_resumes(tmp_path, capsys):
    root = make_dataset(tmp_path / "out", labeled={"va_000000000"})
    schema_before = pq.read_schema(root / "segments" / "va.parquet")
    with FakeGemini(api_key=KEY) as srv:
        rc = label_command([f"input={root}", "labeler=gemini", f"labeler.base_url={srv.url}"])
        assert rc == 0 and srv.counts["ok"] == 5  # the labeled row was skipped
        rows = read_rows(root)
        assert rows["va_000000000"]["labeler_model"] == "earlier"
        for sid, r in rows.items():
            assert r["primary_emotion"] and len(r["emotions"]) == (1 if sid == "va_000000000" else 26)
            if sid != "va_000000000":
                assert r["labeler_model"] == "gemini-3.8-flash" and r["prompt_version"] == "v2"
                assert r["input_tokens"] > 0 and r["output_tokens"] > 0 and r["cost_usd"] > 0
                assert r["rationale"] and r["face_analysis"] and r["voice_analysis"] and r["text_analysis"]
        assert pq.read_schema(root / "segments" / "va.parquet").equals(schema_before)
        assert not list((root / "segments").glob("*.tmp"))
        cost = json.loads((root / "labeler" / "cost.json").read_text())
        assert cost["segments_labeled"] == 5
        assert cost["usd_per_kept_hour"] == pytest.approx(cost["usd"] / (5 * 3.0 / 3600), rel=1e-4)
        printed = capsys.readouterr()
        assert "per kept hour" in printed.err
        assert KEY not in printed.out + printed.err  # the key reaches no output, file or report
        assert not [f for f in root.rglob("*") if f.is_file() and KEY.encode() in f.read_bytes()]
        # a second run has nothing to do and sends nothing
        assert label_command([f"input={root}", f"labeler.base_url={srv.url}"]) == 0
        assert sum(srv.counts.values()) == 5


def test_budget_cap_leaves_the_rest_for_a_rerun(tmp_path):
    root = make_dataset(tmp_path / "out", videos=("va",), per_video=6)
    with FakeGemini(api_key=KEY) as srv:
        # a request reserves ~2k input tokens at $0.75/M + 2048 output tokens at $3.75/M ~ $0.0092 and
        # costs ~$0.002: the cap lets 2 requests through, then no request fits any more
        rc = label_command([f"input={root}", f"labeler.base_url={srv.url}", "labeler.max_usd=0.012",
                            "labeler.requests_in_flight=1"])
        assert rc == 1
        rows = read_rows(root)
        done = [r for r in rows.values() if r["primary_emotion"]]
        assert 1 <= len(done) < 6 and sum(r["cost_usd"] for r in done) <= 0.012
        rejects = Reject.from_table(pq.read_table(root / "labeler" / "rejects.parquet"))
        assert len(rejects) == 6 - len(done) and {r.reason for r in rejects} == {"budget_exhausted"}
        assert {r.item_id for r in rejects} == {s for s, r in rows.items() if not r["primary_emotion"]}
        assert label_command([f"input={root}", f"labeler.base_url={srv.url}"]) == 0
        assert all(r["primary_emotion"] for r in read_rows(root).values())
        assert len(Reject.from_table(pq.read_table(root / "labeler" / "rejects.parquet"))) == 0


def test_failures_are_reported_not_lost(tmp_path):
    root = make_dataset(tmp_path / "out", videos=("va",), per_video=4)
    with FakeGemini(api_key=KEY, faults=FaultPlan(rate=1.0, kinds=("safety",))) as srv:
        assert label_command([f"input={root}", f"labeler.base_url={srv.url}"]) == 1
    rejects = Reject.from_table(pq.read_table(root / "labeler" / "rejects.parquet"))
    assert sorted(r.item_id for r in rejects) == sorted(read_rows(root))
    assert all(r.reason == "labeler_safety_block" and r.stage == "label" and r.video_id == "va" for r in rejects)


def test_batch_mode_writes_requests_then_ingests_results(tmp_path):
    root = make_dataset(tmp_path / "out", videos=("va",), per_video=3)
    assert label_command([f"input={root}", "labeler.batch=true"]) == 0
    lines = [json.loads(x) for x in (root / "labeler" / "batch_requests.jsonl").read_text().splitlines()]
    assert [x["key"] for x in lines] == ["va_000000000", "va_000004000", "va_000008000"]
    with FakeGemini(api_key=KEY) as srv:
        results = []
        for i, line in enumerate(lines):  # every line is a request the service accepts
            status, body, _ = srv.handle("POST", "/v1beta/models/gemini-2.5-flash:generateContent",
                                         {"x-goog-api-key": KEY}, json.dumps(line["request"]).encode())
            assert status == 200
            if i < 2:  # the third result is missing: it must be rejected, not dropped
                results.append({"key": line["key"], "response": body})
    assert all("inlineData" in x["request"]["contents"][0]["parts"][0] for x in lines)
    (root / "labeler" / "batch_results.jsonl").write_text("\n".join(json.dumps(r) for r in results) + "\n")
    assert label_command([f"input={root}", "labeler.batch=true"]) == 1
    rows = read_rows(root)
    assert rows["va_000000000"]["primary_emotion"] and rows["va_000004000"]["primary_emotion"]
    assert rows["va_000008000"]["primary_emotion"] is None
    [rej] = Reject.from_table(pq.read_table(root / "labeler" / "rejects.parquet"))
    assert rej.item_id == "va_000008000" and rej.reason == "labeler_batch_missing"
    usage = results[0]["response"]["usageMetadata"]
    by = {d["modality"]: d["tokenCount"] for d in usage["promptTokensDetails"]}
    from mikupal.config import compose

    p = compose(["labeler=gemini"]).labeler.price()  # the default model's price table
    full = (by["TEXT"] * p.text + by["VIDEO"] * p.video + by["AUDIO"] * p.audio
            + usage["candidatesTokenCount"] * p.output) / 1e6
    assert rows["va_000000000"]["cost_usd"] == pytest.approx(full * 0.5)  # batch discount
    assert not (root / "labeler" / "batch_results.jsonl").exists()
    assert list((root / "labeler").glob("batch_results.ingested-*.jsonl"))


@pytest.mark.parametrize(
    "overrides,needle",
    [
        ([], "input=DIR"),
        (["input=/definitely/not/here"], "not a directory"),
        (["input={tmp}", "labeler=none"], "labeler=none"),
        (["input={tmp}"], "segments"),
        (["input={tmp}", "labeler=openai", "+labeler.batch=true"], "gemini"),
        (["input={tmp}", "labeler.nope=1"], "nope"),
    ],
)
def test_user_mistakes(tmp_path, overrides, needle):
    with pytest.raises(UserError, match=needle):
        label_command([o.format(tmp=tmp_path) for o in overrides])


def test_missing_key_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY")
    root = make_dataset(tmp_path / "out", videos=("va",), per_video=1)
    with pytest.raises(UserError, match="GEMINI_API_KEY"):
        label_command([f"input={root}"])
