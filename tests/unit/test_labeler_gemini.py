"""The Gemini backend through the real google-genai SDK against the local fake server."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mikupal.config import compose  # noqa: E402
from mikupal.errors import UserError  # noqa: E402
from mikupal.labelers import LabelRequest, make_labeler, read_api_key  # noqa: E402
from mikupal.labelers.gemini import retry_info_delay  # noqa: E402
from mikupal.labelers.http import retry_after_header  # noqa: E402
from mikupal.labelers.pool import LabelPool  # noqa: E402
from mikupal.taxonomy import load_taxonomy  # noqa: E402
from tests.fakes import FakeGemini, FaultPlan, make_audio, make_clip  # noqa: E402

KEY = "gm-test-KEY-4242"
CK = load_taxonomy("cowen_keltner_26")
BASE = compose(["labeler=gemini"]).labeler


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    return make_clip(d / "clip.mp4", seconds=2.0), make_audio(d / "vocals.flac", seconds=3.0)


@pytest.fixture()
def server():
    with FakeGemini(api_key=KEY) as srv:
        yield srv


def lcfg(srv, **kw):
    unknown = set(kw) - set(type(BASE).model_fields)
    assert not unknown, f"not labeler settings: {unknown}"  # model_copy would take them silently
    return BASE.model_copy(update={"base_url": srv.url, "backoff_base_s": 0.01, "timeout_s": 10.0, **kw})


def label(srv, reqs, key=KEY, tax=CK, sleep=None, **kw):
    async def go():
        lab = make_labeler(lcfg(srv, **kw), tax, key)
        pool = LabelPool(lab, **({"sleep": sleep} if sleep else {}))
        try:
            return await pool.label_many(reqs), pool
        finally:
            await lab.aclose()

    return asyncio.run(go())


def test_request_carries_clip_transcript_and_full_system_prompt(server, media):
    clip, _ = media
    [res], pool = label(server, [LabelRequest("s1", "I can't believe we won!", "video", clip_path=clip, duration=2.0)])
    assert res.ok, res.message
    [body] = server.requests
    system = body["systemInstruction"]["parts"][0]["text"]
    for c in CK.categories:
        assert c.name in system and c.description in system
    [turn] = body["contents"]
    assert turn["role"] == "user"
    media_part, text_part = turn["parts"]
    inline = media_part["inlineData"] if "inlineData" in media_part else media_part["inline_data"]
    assert inline.get("mimeType", inline.get("mime_type")) == "video/mp4"
    assert base64.urlsafe_b64decode(inline["data"]) == clip.read_bytes()  # the SDK sends URL-safe base64
    assert "I can't believe we won!" in text_part["text"]
    gen = body["generationConfig"]
    assert gen["temperature"] == 0.0 and gen["seed"] == 1234
    assert gen["responseMimeType"] == "application/json"
    assert gen["responseJsonSchema"]["properties"]["intensities"]["required"] == CK.names()
    assert gen["mediaResolution"] == "MEDIA_RESOLUTION_LOW"
    ann = res.annotation
    assert ann.labeler_model == "gemini-3.8-flash" and ann.prompt_version == "v2"
    assert [e.name for e in ann.emotions] == CK.names()
    # v2 describes the delivery in the same answer: events with times inside the 2 s clip, traits, a caption
    props = gen["responseJsonSchema"]["properties"]
    assert list(props)[-1] == "caption" and props["nonverbal_events"]["type"] == "array"
    assert "(it lasts 2.0 seconds)" in text_part["text"] and "`nonverbal_events`" in system
    assert ann.nonverbal_events and all(0 <= e.start <= e.end <= 2.0 for e in ann.nonverbal_events)
    assert ann.perceived_gender in ("female", "male", "unsure") and ann.perceived_age and ann.accent
    assert ann.caption and ann.row_columns()["caption_source"] == "labeler"
    # per-modality tokens come from usage_metadata.prompt_tokens_details
    usage = server.log[-1]["usage"]
    by = {d["modality"].lower(): d["tokenCount"] for d in usage["promptTokensDetails"]}
    assert {e.name: int(e.intensity) for e in ann.input_tokens_by_modality} == by
    assert by["video"] == 2 * 66 and by["audio"] == math.ceil(2.0 * 32)
    assert ann.output_tokens == usage["candidatesTokenCount"]


def test_audio_and_text_modes(server, media):
    _, audio = media
    [res], _ = label(server, [LabelRequest("a", "hello there", "audio", audio_path=audio, duration=3.0)], mode="audio")
    assert res.ok
    parts = server.requests[-1]["contents"][0]["parts"]
    inline = parts[0].get("inlineData") or parts[0].get("inline_data")
    assert inline.get("mimeType", inline.get("mime_type")) == "audio/flac"
    assert res.annotation.face_analysis == "" and res.annotation.voice_analysis
    [res], _ = label(server, [LabelRequest("t", "hello again", "text", context=["hi", "what's up"])], mode="text")
    assert res.ok
    body = server.requests[-1]
    assert [list(p) for p in body["contents"][0]["parts"]] == [["text"]]
    assert "1. hi" in body["contents"][0]["parts"][0]["text"] and "mediaResolution" not in body["generationConfig"]


def test_large_clip_goes_through_files_api_and_is_deleted(media):
    clip, _ = media
    with FakeGemini(api_key=KEY, processing_polls=1) as srv:
        [res], _ = label(srv, [LabelRequest("big", "a long clip", "video", clip_path=clip, duration=2.0)],
                         inline_max_mb=0.001)
        assert res.ok, res.message
        part = srv.requests[0]["contents"][0]["parts"][0]
        fd = part.get("fileData") or part.get("file_data")
        assert fd and fd.get("mimeType", fd.get("mime_type")) == "video/mp4"
        assert srv.counts["file_uploaded"] == 1 and srv.counts["file_deleted"] == 1 and not srv.files
        assert srv.log[1]["usage"]["promptTokensDetails"][1] == {"modality": "VIDEO", "tokenCount": 132}


def test_sdk_retries_are_off_and_ours_are_bounded(media):
    clip, _ = media
    with FakeGemini(api_key=KEY, faults=FaultPlan(rate=1.0, kinds=("unavailable",))) as srv:
        [res], pool = label(srv, [LabelRequest("s", "x", "video", clip_path=clip, duration=2.0)], max_retries=2)
        assert res.reason == "labeler_server_error" and "HTTP 503" in res.message
        assert srv.counts["unavailable"] == 3 and res.attempts == 3  # 1 + max_retries, no SDK extras


def test_retry_info_delay_is_honoured(media):
    clip, _ = media
    sleeps = []

    async def rec(s):
        sleeps.append(s)

    with FakeGemini(api_key=KEY, faults=FaultPlan(rate=0.5, seed=7, kinds=("rate_limit",), retry_delay_s=0.2)) as srv:
        reqs = [LabelRequest(f"s{i}", f"line {i}", "video", clip_path=clip, duration=2.0) for i in range(6)]
        results, _ = label(srv, reqs, sleep=rec, max_retries=10)
        assert all(r.ok for r in results)
        assert srv.counts["rate_limit"] == len(sleeps) > 0
        assert all(0.2 <= s <= 0.24 for s in sleeps)  # RetryInfo.retryDelay, plus up to 20% jitter


@pytest.mark.parametrize("kind,reason", [("safety", "labeler_safety_block"), ("max_tokens", "labeler_max_tokens")])
def test_blocked_and_cut_answers(media, kind, reason):
    clip, _ = media
    with FakeGemini(api_key=KEY, faults=FaultPlan(rate=1.0, kinds=(kind,))) as srv:
        [res], pool = label(srv, [LabelRequest("s", "x", "video", clip_path=clip, duration=2.0)])
        assert res.reason == reason and res.attempts == 1
        if kind == "max_tokens":
            assert "raw answer: {" in res.message
        assert pool.stats.usd > 0  # the input was billed


def test_timeout(media):
    clip, _ = media
    with FakeGemini(api_key=KEY, faults=FaultPlan(rate=1.0, kinds=("slow",), slow_s=1.0)) as srv:
        [res], _ = label(srv, [LabelRequest("s", "x", "video", clip_path=clip, duration=2.0)], timeout_s=0.3,
                         max_retries=1)
        assert res.reason == "labeler_timeout" and res.attempts == 2


def test_wrong_key_is_a_fatal_auth_error_and_never_echoed(server, media, caplog):
    clip, _ = media
    wrong = "gm-WRONG-KEY-777"
    reqs = [LabelRequest(f"s{i}", "x", "video", clip_path=clip, duration=2.0) for i in range(4)]
    results, _ = label(server, reqs, key=wrong, requests_in_flight=1)
    assert {r.reason for r in results} == {"labeler_auth_error"}
    assert server.counts["unauthorized"] == 1
    assert all(wrong not in r.message for r in results) and wrong not in caplog.text


def test_api_key_sources(tmp_path, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    assert read_api_key(BASE) is None
    with pytest.raises(UserError, match="GEMINI_API_KEY"):
        make_labeler(BASE, CK, None)
    monkeypatch.setenv("GEMINI_API_KEY", " from-env ")
    assert read_api_key(BASE) == "from-env"
    f = tmp_path / "key.txt"
    f.write_text("from-file\n")
    assert read_api_key(BASE.model_copy(update={"api_key_file": str(f)})) == "from-file"
    with pytest.raises(UserError, match="api_key_file"):
        read_api_key(BASE.model_copy(update={"api_key_file": str(tmp_path / "missing")}))


def _post(url, body, headers=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_fake_is_as_strict_as_the_service(server):
    url = f"{server.url}/v1beta/models/gemini-2.5-flash:generateContent"
    ok = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    h = {"x-goog-api-key": KEY}
    assert _post(url, ok, h)[0] == 200
    assert _post(url.replace("v1beta", "v1"), ok, h)[0] == 200
    assert _post(url, ok)[0] == 403
    assert _post(url, ok, {"x-goog-api-key": "nope"})[1]["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    bad = [
        {},
        {"contents": []},
        {"contents": [{"role": "system", "parts": [{"text": "hi"}]}]},
        {"contents": [{"role": "user", "parts": []}]},
        {"contents": [{"role": "user", "parts": [{"text": "a", "inlineData": {"mimeType": "video/mp4", "data": "AA=="}}]}]},
        {"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "video/mp4", "data": "not base64!"}}]}]},
        {**ok, "generationConfig": {"temperature": 0, "responseFormat": "json"}},
        {**ok, "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": {"type": "object", "patternProperties": {}}}},
        {**ok, "extra": 1},
    ]
    for body in bad:
        status, payload = _post(url, body, h)
        assert status == 400 and payload["error"]["status"] == "INVALID_ARGUMENT", body
    assert _post(url, b"{not json", h)[0] == 400
    assert server.counts["bad_request"] == len(bad) + 1


def test_retry_hint_parsing():
    body = {"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12.5s"}]}}
    assert retry_info_delay(body) == 12.5
    assert retry_info_delay({"error": {"details": []}}) is None
    assert retry_after_header({"retry-after": "3"}) == 3.0
    assert retry_after_header({"retry-after-ms": "250"}) == 0.25
    assert retry_after_header({}) is None
