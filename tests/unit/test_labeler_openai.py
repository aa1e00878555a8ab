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

from mikupal.config import compose  # noqa: E402
from mikupal.errors import UserError  # noqa: E402
from mikupal.labelers import LabelRequest, make_labeler  # noqa: E402
from mikupal.labelers.pool import LabelPool  # noqa: E402
from mikupal.taxonomy import load_taxonomy  # noqa: E402
from tests.fakes import FakeOpenAI, FaultPlan, make_audio, make_clip  # noqa: E402

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


def test_video_as_frames_and_as_video_url(media):
    clip, _ = media
    with FakeOpenAI(api_key=KEY) as srv:
        req = LabelRequest("s", "look at this", "video", clip_path=clip, duration=3.0)
        [res], _ = label(srv, [req], mode="video", frames_fps=1.0, max_frames=2)
        assert res.ok, res.message
        parts = srv.requests[-1]["messages"][1]["content"]
        assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]  # capped at max_frames
        assert parts[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
        assert parts[0]["image_url"]["detail"] == "low"
        [res], _ = label(srv, [req], mode="video", video_transport="video_url")
        assert res.ok
        vpart = srv.requests[-1]["messages"][1]["content"][0]
        assert vpart["type"] == "video_url"
        assert base64.b64decode(vpart["video_url"]["url"].split(",", 1)[1]) == clip.read_bytes()


def test_audio_mode_sends_wav(media):
    _, audio = media
    with FakeOpenAI(api_key=KEY) as srv:
        [res], _ = label(srv, [LabelRequest("s", "hm", "audio", audio_path=audio, duration=2.0)], mode="audio",
                         tax=IEMOCAP)
        assert res.ok, res.message
        part = srv.requests[-1]["messages"][1]["content"][0]
        assert part["type"] == "input_audio" and part["input_audio"]["format"] == "wav"
        with wave.open(io.BytesIO(base64.b64decode(part["input_audio"]["data"]))) as w:
            assert w.getnframes() / w.getframerate() == pytest.approx(2.0, abs=0.1)
        ann = res.annotation
        assert ann.primary_emotion in IEMOCAP.names() and sum(e.intensity for e in ann.emotions) == 1.0
        assert {e.name for e in ann.input_tokens_by_modality} == {"text", "audio"}


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
