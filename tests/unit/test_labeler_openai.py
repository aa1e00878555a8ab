"""The OpenAI-compatible backend through the real openai SDK against the local fake server."""

from __future__ import annotations

import asyncio
import base64
import io
import sys
import wave
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mikupal.config import compose
from mikupal.errors import UserError
from mikupal.labelers import LabelRequest, make_labeler
from mikupal.labelers.pool import LabelPool
from mikupal.taxonomy import load_taxonomy
from tests.fakes import FakeOpenAI, FaultPlan, make_audio, make_clip

KEY = "sk-test-OPENAI-99"
CK = load_taxonomy("cowen_keltner_26")
IEMOCAP = load_taxonomy("iemocap")
BASE = compose(["labeler=openai"]).labeler


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    return make_clip(d / "clip.mp4", seconds=3.0, fps=10), make_audio(d / "vocals.flac", seconds=2.0)


def label(srv, reqs, key=KEY, tax=CK, sleep=None, **kw):
    unknown = set(kw) - set(type(BASE).model_fields)
    assert not unknown, f"not labeler settings: {unknown}"  # model_copy would take them silently
    cfg = BASE.model_copy(update={"base_url": srv.base_url, "backoff_base_s": 0.01, "timeout_s": 10.0, **kw})

    async def go():
        lab = make_labeler(cfg, tax, key)
        pool = LabelPool(lab, **({"sleep": sleep} if sleep else {}))
        try:
            return await pool.label_many(reqs), pool
        finally:
            await lab.aclose()

    return asyncio.run(go())


def test_text_mode_melt_with_context_and_strict_schema():
    with FakeOpenAI(api_key=KEY) as srv:
        req = LabelRequest("s", "You did WHAT?", "text", context=["I sold the car.", "The red one?"])
        [res], pool = label(srv, [req])
        assert res.ok, res.message
        body = srv.requests[0]
        assert body["model"] == "gpt-4o" and body["temperature"] == 0.0 and body["seed"] == 1234
        system, user = body["messages"]
        assert system["role"] == "system" and all(c.description in system["content"] for c in CK.categories)
        assert [p["type"] for p in user["content"]] == ["text"]
        text = user["content"][0]["text"]
        assert text.index("I sold the car.") < text.index("The red one?") < text.index("You did WHAT?")
        rf = body["response_format"]
        assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True
        assert "max_tokens" in body  # a local server (base_url set): max_tokens, not max_completion_tokens
        usage = srv.log[-1]["usage"]
        assert res.annotation.input_tokens == usage["prompt_tokens"]
        assert res.annotation.output_tokens == usage["completion_tokens"]


OMNI = "Qwen/Qwen2.5-Omni-7B"


def test_video_as_frames_to_openai_and_as_video_url_to_a_vllm_omni_model(media):
    clip, _ = media
    req = LabelRequest("s", "look at this", "video", clip_path=clip, duration=3.0)
    with FakeOpenAI(api_key=KEY) as srv:  # api.openai.com: gpt-4o takes images
        [res], _ = label(srv, [req], mode="video", frames_fps=1.0, max_frames=2)
        assert res.ok, res.message
        parts = srv.requests[-1]["messages"][1]["content"]
        assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]  # capped at max_frames
        assert parts[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
        assert parts[0]["image_url"]["detail"] == "low"
    with FakeOpenAI(api_key=KEY, flavor="vllm", served=(OMNI,)) as srv:
        [res], _ = label(srv, [req], model=OMNI, mode="video", video_transport="video_url")
        assert res.ok, res.message
        body = srv.requests[-1]
        vpart = body["messages"][1]["content"][0]
        assert vpart["type"] == "video_url"
        assert base64.b64decode(vpart["video_url"]["url"].split(",", 1)[1]) == clip.read_bytes()
        assert body["mm_processor_kwargs"] == {"use_audio_in_video": True}  # the omni model hears the clip's voice
        assert body["response_format"]["type"] == "json_schema"


@pytest.mark.parametrize("flavor, model, structured", [("openai", "gpt-4o-audio-preview", False),
                                                       ("openai", "gpt-audio", False), ("vllm", OMNI, True)])
def test_audio_mode_sends_wav_to_models_that_take_audio(media, flavor, model, structured):
    _, audio = media
    with FakeOpenAI(api_key=KEY, flavor=flavor, served=(model,)) as srv:
        [res], _ = label(srv, [LabelRequest("s", "hm", "audio", audio_path=audio, duration=2.0)], mode="audio",
                         tax=IEMOCAP, model=model)
        assert res.ok, res.message
        body = srv.requests[-1]
        part = body["messages"][1]["content"][0]
        assert part["type"] == "input_audio" and part["input_audio"]["format"] == "wav"
        with wave.open(io.BytesIO(base64.b64decode(part["input_audio"]["data"]))) as w:
            assert w.getnframes() / w.getframerate() == pytest.approx(2.0, abs=0.1)
        assert ("response_format" in body) is structured  # OpenAI's audio models refuse json_schema
        ann = res.annotation
        assert ann.primary_emotion in IEMOCAP.names() and sum(e.intensity for e in ann.emotions) == 1.0
        assert {e.name for e in ann.input_tokens_by_modality} == {"text", "audio"}


@pytest.mark.parametrize("flavor, model, mode, extra, words", [
    ("openai", "gpt-4o", "audio", {}, "This model does not support input_audio content"),
    ("openai", "gpt-4o-audio-preview", "video", {}, "This model does not support image_url content"),
    ("openai", "gpt-4o", "video", {"video_transport": "video_url"}, "Invalid value: 'video_url'"),
    ("vllm", "Qwen/Qwen2.5-VL-7B-Instruct", "audio", {}, "At most 0 audio(s) may be provided in one request"),
    ("vllm", "Qwen/Qwen2-Audio-7B-Instruct", "video", {}, "At most 0 image(s) may be provided in one request"),
])
def test_a_modality_the_model_refuses_stops_at_the_first_request(media, flavor, model, mode, extra, words):
    """The real servers' 400s for a modality: run-level at the first answer, and the first request
    went alone, so no other was sent."""
    clip, audio = media
    reqs = [LabelRequest(f"s{i}", "hm", mode, clip_path=clip, audio_path=audio, duration=2.0) for i in range(6)]
    with FakeOpenAI(api_key=KEY, flavor=flavor, served=(model,)) as srv:
        results, _ = label(srv, reqs, model=model, mode=mode, requests_in_flight=4, **extra)
        assert len(srv.log) == 1 and srv.counts["unsupported_input"] == 1, srv.log
    assert {r.reason for r in results} == {"labeler_unsupported_input"}
    assert words in results[0].message and "labeler.mode" in results[0].message


@pytest.mark.parametrize(
    "kind,reason",
    [("rate_limit", "labeler_rate_limited"), ("server_error", "labeler_server_error"),
     ("safety", "labeler_safety_block"), ("max_tokens", "labeler_max_tokens"),
     ("invalid_json", "labeler_invalid_output")],
)
def test_faults_map_to_reasons_with_bounded_retries(kind, reason):
    sleeps = []

    async def rec(s):
        sleeps.append(s)

    with FakeOpenAI(api_key=KEY, faults=FaultPlan(rate=1.0, kinds=(kind,), retry_delay_s=0.05)) as srv:
        [res], _ = label(srv, [LabelRequest("s", "x", "text")], sleep=rec, max_retries=2, invalid_retries=1)
        assert res.reason == reason
        expected = {"rate_limit": 3, "server_error": 3, "invalid_json": 2}.get(kind, 1)
        assert srv.counts[kind] == expected == res.attempts  # openai max_retries=0: no hidden retries
        if kind == "rate_limit":
            assert all(0.05 <= s <= 0.06 for s in sleeps)  # retry-after-ms honoured


def test_auth_and_key_requirements():
    with FakeOpenAI(api_key=KEY) as srv:
        [res], _ = label(srv, [LabelRequest("s", "x", "text")], key="sk-wrong")
        assert res.reason == "labeler_auth_error" and "sk-wrong" not in res.message
    with pytest.raises(UserError, match="OPENAI_API_KEY"):
        make_labeler(BASE, CK, None)  # api.openai.com without a key
    make_labeler(BASE.model_copy(update={"base_url": "http://127.0.0.1:9/v1"}), CK, None)  # local: fine
