"""Prompt v2's description of the delivery: non-verbal events with times inside the clip, perceived
gender / age / accent, a caption; strict validation, re-asks on a malformed answer, both fakes."""

from __future__ import annotations

import asyncio
import copy
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mikupal.config import compose  # noqa: E402
from mikupal.labelers import LabelPool, LabelRequest, make_labeler  # noqa: E402
from mikupal.labelers.schema import NONVERBAL_EVENTS, InvalidOutput, OutputSchema  # noqa: E402
from mikupal.taxonomy import load_taxonomy  # noqa: E402
from tests.fakes import FakeGemini, FakeOpenAI, FaultPlan, make_audio, make_clip  # noqa: E402

CK = load_taxonomy("cowen_keltner_26")
RECORDED = Path(__file__).resolve().parents[1] / "data" / "labeler" / "gemini_generate_content_v2.json"


def recorded_answer() -> dict:
    return json.loads(json.loads(RECORDED.read_text())["candidates"][0]["content"]["parts"][0]["text"])


def test_recorded_answer_in_the_service_format_parses():
    from google.genai import types

    from mikupal.labelers.gemini import answer_from_response

    resp = types.GenerateContentResponse.model_validate(json.loads(RECORDED.read_text()))
    answer = answer_from_response(resp, "gemini-3.8-flash", 2048)
    assert answer.usage.input_by_modality == {"text": 2861, "video": 396, "audio": 158}
    label = OutputSchema(CK, "video", delivery=True).parse(answer.text, duration=4.1)
    assert label.primary == "Joy" and label.gender == "female" and label.age == "20s"
    assert label.nonverbal_events == [("laughter", 1.4, 2.3), ("breath", 3.05, 3.3)]
    assert label.accent == "General American English" and label.caption.startswith("A young woman")


@pytest.mark.parametrize("change, problem", [
    (lambda a: a["nonverbal_events"].append({"event": "laughter", "start": 2.0, "end": 1.0}), "before it starts"),
    (lambda a: a["nonverbal_events"].append({"event": "sigh", "start": 6.0, "end": 6.5}), "outside the 4.10 s clip"),
    (lambda a: a["nonverbal_events"].append({"event": "yodel", "start": 1.0, "end": 1.5}), "nonverbal_events.2.event"),
    (lambda a: a.update(gender="woman"), "gender"),
    (lambda a: a.update(age="27"), "age"),
    (lambda a: a.update(caption="   "), "caption: blank"),
    (lambda a: a.update(caption="x" * 700), "caption: 700 characters"),
    (lambda a: a.pop("accent"), "accent"),
    (lambda a: a["nonverbal_events"][0].update(start=-0.5), "nonverbal_events.0.start"),
])
def test_malformed_delivery_is_invalid_output(change, problem):
    answer = recorded_answer()
    change(answer)
    with pytest.raises(InvalidOutput, match="does not match the schema") as e:
        OutputSchema(CK, "video", delivery=True).parse(json.dumps(answer), duration=4.1)
    assert problem in str(e.value)


def test_an_end_just_past_the_clip_is_clamped_and_events_sorted():
    answer = recorded_answer()
    answer["nonverbal_events"] = [{"event": "sigh", "start": 3.9, "end": 4.4}, {"event": "gasp", "start": 0.2, "end": 0.2}]
    answer.pop("face_analysis")  # audio mode: no face
    label = OutputSchema(CK, "audio", delivery=True).parse(json.dumps(answer), duration=4.1)
    assert label.nonverbal_events == [("gasp", 0.2, 0.2), ("sigh", 3.9, 4.1)]
    answer["accent"] = "UNSURE"
    assert OutputSchema(CK, "audio", delivery=True).parse(json.dumps(answer)).accent == "unsure"


def test_text_mode_and_v1_ask_nothing_of_the_delivery():
    assert "caption" not in OutputSchema(CK, "text", delivery=True).json_schema()["properties"]
    assert "caption" not in OutputSchema(CK, "video").json_schema()["properties"]
    props = OutputSchema(CK, "video", delivery=True).json_schema()["properties"]
    assert props["nonverbal_events"]["items"]["properties"]["event"]["enum"] == list(NONVERBAL_EVENTS)
    assert props["nonverbal_events"]["items"]["additionalProperties"] is False


def _labels(fake, cfg, reqs):
    async def go():
        lab = make_labeler(cfg, CK, fake.api_key)
        try:
            return await LabelPool(lab).label_many(reqs)
        finally:
            await lab.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("kind", ["gemini", "openai"])
def test_both_fakes_answer_v2_within_the_clip(kind, tmp_path):
    fake = FakeGemini(api_key="k") if kind == "gemini" else FakeOpenAI(api_key="k")
    mode = "video" if kind == "gemini" else "audio"
    with fake as srv:
        over = [f"labeler={kind}", f"labeler.base_url={srv.url if kind == 'gemini' else srv.url + '/v1'}",
                f"labeler.mode={mode}", "labeler.backoff_base_s=0.01"]
        if kind == "openai":
            over.append("labeler.model=gpt-4o-audio-preview")
        cfg = compose(over).labeler
        reqs = []
        for i in range(4):
            media = tmp_path / f"s{i}.{'mp4' if mode == 'video' else 'flac'}"
            (make_clip if mode == "video" else make_audio)(media, seconds=1.5)
            reqs.append(LabelRequest(f"s{i}", f"line {i}", mode, clip_path=media, audio_path=media, duration=1.5))
        results = _labels(srv, cfg, reqs)
    for res in results:
        ann = res.annotation
        assert res.ok and ann.prompt_version == "v2" and ann.caption
        assert all(e.event in NONVERBAL_EVENTS and 0 <= e.start <= e.end <= 1.5 for e in ann.nonverbal_events)
        assert ann.perceived_gender in ("female", "male", "unsure")


def test_a_malformed_answer_is_asked_again_then_rejected(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", seconds=1.0)
    with FakeGemini(api_key="k", faults=FaultPlan(rate=1.0, kinds=("invalid_json",))) as srv:
        cfg = compose(["labeler=gemini", f"labeler.base_url={srv.url}", "labeler.invalid_retries=1"]).labeler
        [res] = _labels(srv, cfg, [LabelRequest("s", "hi", "video", clip_path=clip, duration=1.0)])
        assert srv.counts["invalid_json"] == 2  # the first answer and one re-ask
    assert res.reason == "labeler_invalid_output" and "answer is not valid JSON" in res.message


def test_samples_take_the_delivery_of_the_chosen_answer():
    from mikupal.labelers.pool import make_annotation
    from mikupal.labelers.base import Usage

    schema = OutputSchema(CK, "video", delivery=True)
    a, b = recorded_answer(), copy.deepcopy(recorded_answer())
    b.update(primary_emotion="Sadness", caption="Someone else.", gender="male")
    b["intensities"]["Sadness"] = 0.9
    labels = [schema.parse(json.dumps(x), 4.1) for x in (b, a, a)]
    ann = make_annotation(labels, CK.names(), usage=Usage(), usd=0.0, model="m", prompt_version="v2")
    assert ann.primary_emotion == "Joy" and ann.perceived_gender == "female" and ann.caption.startswith("A young")
