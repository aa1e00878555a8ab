"""A fake OpenAI-compatible chat completions server (OpenAI / vLLM / Ollama) for the `openai` SDK.

    client = AsyncOpenAI(base_url=f"{srv.url}/v1", api_key=srv.api_key)

`POST /v1/chat/completions`, `GET /v1/models`, `GET /v1/models/{id}`. A model outside `served`
(when given) or in `retired` is the service's 404 `model_not_found`; `daily_quota=N` makes every
completion after the N-th the 429 `insufficient_quota` ("You exceeded your current quota"). Strict like api.openai.com: no or a wrong `Authorization:
Bearer` key is 401; unknown parameters ("Unrecognized request argument supplied"), missing model
or messages, bad roles, unknown content part types, image/video data URLs that are not base64, a
`json_schema` response format without a valid name or with a non-strict-compatible schema (every
object needs `additionalProperties: false` and all its properties required) are 400.

What each model takes is the real server's, per model (`flavor`):

- `openai` (api.openai.com): content parts `text`, `image_url`, `input_audio`, `file` only (a
  `video_url` part is "Invalid value: 'video_url'"); a vision model (gpt-4o ...) refuses
  `input_audio`, an audio model (gpt-4o-audio-preview, gpt-audio ...) refuses `image_url`, needs
  audio in or out, and refuses a `json_schema` response format; vLLM's extra parameters
  (`mm_processor_kwargs`) are unknown arguments.
- `vllm`: the model's own modalities (Qwen2.5-Omni / Qwen3-Omni: image, video, audio; Qwen2.5-VL:
  image, video; Qwen2-Audio: audio); anything else is vLLM's 400 "At most 0 audio(s) may be
  provided in one request." (`{"object": "error", ...}`), and `mm_processor_kwargs` is accepted.

`modalities={model: {...}}` overrides the table (a model it does not list takes text only under
vllm, text and images under openai).

Usage: text ~4 characters per token, 85 tokens per `detail: low` image (765 otherwise), video_url
at 1 frame per second times 66 + 32 audio tokens per second, input_audio 10 tokens per second
(reported in `prompt_tokens_details.audio_tokens`).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
import uuid
from typing import Any, Optional

from . import FakeServer, FaultPlan, HttpError, fake_value, json_body, media_seconds, tokens_of_text

PARAMS = {
    "messages", "model", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "metadata", "modalities", "n", "parallel_tool_calls", "prediction",
    "presence_penalty", "reasoning_effort", "response_format", "seed", "service_tier", "stop", "store", "stream",
    "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user",
}
ROLES = {"system", "developer", "user", "assistant", "tool"}
PART_TYPES = {"text", "image_url", "input_audio", "video_url", "audio_url", "file"}
#: api.openai.com's content part types (vLLM adds video_url and audio_url)
OPENAI_PART_TYPES = ("text", "image_url", "input_audio", "refusal", "audio", "file")
#: vLLM's own request parameters beyond OpenAI's
VLLM_PARAMS = {"mm_processor_kwargs", "top_k", "min_p", "repetition_penalty", "guided_json", "chat_template_kwargs"}
#: the modality a content part carries
PART_MODALITY = {"image_url": "image", "video_url": "video", "input_audio": "audio", "audio_url": "audio"}
#: what each model takes, as its server says (text always)
MODALITIES = {
    "openai": {"gpt-4o": {"image"}, "gpt-4o-mini": {"image"}, "gpt-4.1": {"image"}, "gpt-4.1-mini": {"image"},
               "gpt-4o-audio-preview": {"audio"}, "gpt-4o-mini-audio-preview": {"audio"}, "gpt-audio": {"audio"},
               "gpt-audio-mini": {"audio"}},
    "vllm": {"Qwen/Qwen2.5-Omni-7B": {"image", "video", "audio"}, "Qwen/Qwen2.5-Omni-3B": {"image", "video", "audio"},
             "Qwen/Qwen3-Omni-30B-A3B-Instruct": {"image", "video", "audio"},
             "Qwen/Qwen2.5-VL-7B-Instruct": {"image", "video"}, "Qwen/Qwen2-Audio-7B-Instruct": {"audio"}},
}
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+);base64,(.*)$", re.S)


def _bad(message: str, param: Optional[str] = None) -> HttpError:
    return HttpError(400, {"error": {"message": message, "type": "invalid_request_error", "param": param,
                                     "code": None}})


def _data_url(url: Any, where: str) -> tuple[str, bytes]:
    if not isinstance(url, str):
        raise _bad(f"{where}.url must be a string", where)
    m = _DATA_URL.match(url)
    if not m:
        if url.startswith(("http://", "https://")):
            return "", b""
        raise _bad(f"Invalid URL at {where}: expected a data URL or http(s)", where)
    try:
        return m.group(1), base64.b64decode(m.group(2), validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"Invalid base64 data at {where}", where) from None


def _strict_schema(node: Any, where: str) -> None:
    if not isinstance(node, dict):
        return
    if node.get("type") == "object" or "properties" in node:
        props = node.get("properties", {})
        if node.get("additionalProperties", True) is not False:
            raise _bad(f"Invalid schema for response_format 'json_schema': In context={where}, "
                       "'additionalProperties' is required to be supplied and to be false.", "response_format")
        if sorted(node.get("required", [])) != sorted(props):
            raise _bad(f"Invalid schema for response_format 'json_schema': In context={where}, 'required' is "
                       "required to be supplied and to be an array including every key in properties.",
                       "response_format")
        for name, sub in props.items():
            _strict_schema(sub, f"{where}.properties.{name}")
    if "items" in node:
        _strict_schema(node["items"], f"{where}.items")
    if "$ref" in node and "$defs" not in node:
        pass  # refs are allowed; resolution is the model's business


_PROMPT_SCHEMA = re.compile(r"JSON Schema:\s*```json\s*(\{.*?\})\s*```", re.S)


def _prompted_schema(req: dict) -> Optional[dict]:
    """The JSON Schema a system message spells out (when Structured Outputs are not available)."""
    for msg in req.get("messages", []):
        if msg.get("role") == "system" and isinstance(msg.get("content"), str):
            m = _PROMPT_SCHEMA.search(msg["content"])
            if m:
                try:
                    return json.loads(m.group(1))
                except ValueError:
                    return None
    return None


class FakeOpenAI(FakeServer):
    def __init__(self, api_key: str = "fake-openai-key", faults: Optional[FaultPlan] = None, latency_s: float = 0.0,
                 reasoning_tokens: int = 0, served: Optional[tuple[str, ...]] = None, retired: tuple[str, ...] = (),
                 daily_quota: Optional[int] = None, flavor: str = "openai",
                 modalities: Optional[dict[str, set[str]]] = None):
        super().__init__(faults, latency_s)
        assert flavor in MODALITIES, flavor
        self.flavor = flavor
        self.modalities = {**MODALITIES[flavor], **(modalities or {})}
        self.api_key = api_key
        self.reasoning_tokens = reasoning_tokens
        self.served = tuple(served) if served is not None else None  # None: any model id is served
        self.retired = set(retired)
        self.daily_quota = daily_quota
        self.completions = 0

    def serves(self, model: str) -> bool:
        return model not in self.retired and (self.served is None or model in self.served)

    def listed(self) -> list[str]:
        return [m for m in (self.served or ("gpt-4o", "gpt-4o-mini")) if m not in self.retired]

    def _check_model(self, model: str) -> None:
        if not self.serves(model):
            raise HttpError(404, {"error": {
                "message": f"The model `{model}` does not exist or you do not have access to it.",
                "type": "invalid_request_error", "param": None, "code": "model_not_found"}},
                outcome="model_not_found")

    def _quota(self) -> None:
        with self._lock:
            self.completions += 1
            over = self.daily_quota is not None and self.completions > self.daily_quota
        if over:
            raise HttpError(429, {"error": {
                "message": "You exceeded your current quota, please check your plan and billing details. For more "
                           "information on this error, read the docs: "
                           "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}}, outcome="daily_quota")

    @staticmethod
    def model_json(model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": 1715367049, "owned_by": "system"}

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes):
        route = path.split("?")[0]
        known = (route == "/v1/chat/completions" and method == "POST") or (
            route.startswith("/v1/models") and method == "GET")
        if not known:
            raise HttpError(404, {"error": {"message": f"Invalid URL ({method} {path})", "type": "invalid_request_error"}})
        lower = {k.lower(): v for k, v in headers.items()}
        auth = lower.get("authorization", "")
        if auth != f"Bearer {self.api_key}":
            raise HttpError(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                            "code": "invalid_api_key"}})
        if route == "/v1/models":
            self.lookup("model_list")
            return 200, {"object": "list", "data": [self.model_json(m) for m in self.listed()]}, {}
        if route.startswith("/v1/models/"):
            model = route.removeprefix("/v1/models/")
            self._check_model(model)
            self.lookup("model_get")
            return 200, self.model_json(model), {}
        req = json_body(body, _bad)
        return self._complete(req)

    def takes(self, model: str) -> set[str]:
        default = {"image"} if self.flavor == "openai" else set()
        return {"text"} | self.modalities.get(model, default)

    def _refuse_modality(self, model: str, typ: str, pw: str) -> None:
        """The real server's 400 for a content part the model does not take."""
        if self.flavor == "openai" and typ not in OPENAI_PART_TYPES:
            raise HttpError(400, {"error": {"message": f"Invalid value: '{typ}'. Supported values are: 'text', "
                                                       "'image_url', 'input_audio', 'refusal', 'audio', and 'file'.",
                                            "type": "invalid_request_error", "param": f"{pw}.type", "code": "invalid_value"}},
                            outcome="unsupported_input")
        modality = PART_MODALITY.get(typ)
        if modality is None or modality in self.takes(model):
            return
        if self.flavor == "openai":
            raise HttpError(400, {"error": {"message": f"This model does not support {typ} content.",
                                            "type": "invalid_request_error", "param": pw, "code": "invalid_value"}},
                            outcome="unsupported_input")
        raise HttpError(400, {"object": "error", "message": f"At most 0 {modality}(s) may be provided in one request.",
                              "type": "BadRequestError", "param": None, "code": 400}, outcome="unsupported_input")

    def _openai_model_rules(self, req: dict, audio_in: bool) -> None:
        """api.openai.com's audio models: audio in (or out) required, no Structured Outputs."""
        takes = self.takes(req["model"])
        if self.flavor != "openai" or "audio" not in takes or "image" in takes:
            return
        if not audio_in and "audio" not in (req.get("modalities") or []):
            raise _bad("This model requires that either input content or output modality contain audio.", "model")
        if (req.get("response_format") or {}).get("type") == "json_schema":
            raise _bad("Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model. "
                       "Learn more about supported models at the Structured Outputs guide: "
                       "https://platform.openai.com/docs/guides/structured-outputs")

    def _validate(self, req: Any) -> tuple[str, int, int, dict[str, Any]]:
        if not isinstance(req, dict):
            raise _bad("The request body must be a JSON object")
        params = PARAMS | (VLLM_PARAMS if self.flavor == "vllm" else set())
        for k in req:
            if k not in params:
                raise _bad(f"Unrecognized request argument supplied: {k}", k)
        if not isinstance(req.get("model"), str) or not req["model"]:
            raise _bad("you must provide a model parameter", "model")
        msgs = req.get("messages")
        if not isinstance(msgs, list) or not msgs:
            raise _bad("[] is too short - 'messages'", "messages")
        if "max_tokens" in req and "max_completion_tokens" in req:
            raise _bad("max_tokens and max_completion_tokens cannot both be set", "max_tokens")
        temp = req.get("temperature")
        if temp is not None and not (isinstance(temp, (int, float)) and 0 <= temp <= 2):
            raise _bad("temperature must be in [0, 2]", "temperature")
        text_tokens = 0
        audio_tokens = 0
        user_texts: list[str] = []
        for i, msg in enumerate(msgs):
            where = f"messages[{i}]"
            if not isinstance(msg, dict) or msg.get("role") not in ROLES:
                raise _bad(f"Invalid value for '{where}.role': expected one of {sorted(ROLES)}", f"{where}.role")
            content = msg.get("content")
            if isinstance(content, str):
                text_tokens += tokens_of_text(content)
                if msg["role"] == "user":
                    user_texts.append(content)
                continue
            if not isinstance(content, list) or not content:
                raise _bad(f"Invalid '{where}.content': expected a string or a non-empty array", where)
            for j, part in enumerate(content):
                pw = f"{where}.content[{j}]"
                typ = part.get("type") if isinstance(part, dict) else None
                if typ not in PART_TYPES:
                    raise _bad(f"Invalid value: '{typ}'. Supported values are: {sorted(PART_TYPES)}", f"{pw}.type")
                self._refuse_modality(req["model"], typ, pw)
                if msg["role"] == "system" and typ != "text":
                    raise _bad(f"Invalid '{pw}': system messages take text parts only", pw)
                if typ == "text":
                    if not isinstance(part.get("text"), str):
                        raise _bad(f"Missing '{pw}.text'", pw)
                    text_tokens += tokens_of_text(part["text"])
                    if msg["role"] == "user":
                        user_texts.append(part["text"])
                elif typ == "image_url":
                    img = part.get("image_url") or {}
                    mime, _ = _data_url(img.get("url"), f"{pw}.image_url")
                    if mime and not mime.startswith("image/"):
                        raise _bad(f"Invalid image mime type {mime}", pw)
                    detail = img.get("detail", "auto")
                    if detail not in ("auto", "low", "high"):
                        raise _bad(f"Invalid detail {detail!r}", pw)
                    text_tokens += 85 if detail == "low" else 765
                elif typ == "video_url":
                    mime, data = _data_url((part.get("video_url") or {}).get("url"), f"{pw}.video_url")
                    secs = media_seconds(data)
                    text_tokens += max(1, math.ceil(secs)) * 66
                    audio_tokens += math.ceil(secs * 32)
                elif typ == "input_audio":
                    au = part.get("input_audio") or {}
                    if au.get("format") not in ("wav", "mp3"):
                        raise _bad("input_audio.format must be wav or mp3", pw)
                    try:
                        data = base64.b64decode(au.get("data", ""), validate=True)
                    except (binascii.Error, ValueError):
                        raise _bad(f"Invalid base64 input_audio at {pw}", pw) from None
                    audio_tokens += math.ceil(media_seconds(data) * 10)
        self._openai_model_rules(req, audio_tokens > 0)
        rf = req.get("response_format")
        if rf is not None:
            if not isinstance(rf, dict) or rf.get("type") not in ("text", "json_object", "json_schema"):
                raise _bad("Invalid response_format type", "response_format")
            if rf["type"] == "json_schema":
                js = rf.get("json_schema") or {}
                if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(js.get("name", ""))):
                    raise _bad("response_format.json_schema.name must match ^[a-zA-Z0-9_-]{1,64}$", "response_format")
                if not isinstance(js.get("schema"), dict):
                    raise _bad("response_format.json_schema.schema is required", "response_format")
                if js.get("strict"):
                    _strict_schema(js["schema"], "root")
        return "\n".join(user_texts), text_tokens, audio_tokens, rf or {}

    def _complete(self, req: Any):
        key, text_tokens, audio_tokens, rf = self._validate(req)
        self._check_model(req["model"])
        self._quota()
        with self._lock:
            self.requests.append(req)
        attempt = self.next_attempt(key)
        fault = self.faults.pick(key, attempt)
        if fault == "rate_limit":
            ms = int(self.faults.retry_delay_s * 1000)
            raise HttpError(429, {"error": {"message": "Rate limit reached for requests", "type": "requests",
                                            "code": "rate_limit_exceeded"}},
                            headers={"retry-after-ms": str(ms), "retry-after": str(math.ceil(ms / 1000))},
                            outcome=fault, key=key, attempt=attempt)
        if fault in ("server_error", "unavailable"):
            code = 500 if fault == "server_error" else 503
            raise HttpError(code, {"error": {"message": "The server had an error processing your request.",
                                             "type": "server_error"}}, outcome=fault, key=key, attempt=attempt)
        if fault == "slow":
            self.record(key, fault, attempt=attempt)
            time.sleep(self.faults.slow_s)
        schema = ((rf.get("json_schema") or {}).get("schema")) if rf.get("type") == "json_schema" else None
        prompted = None if schema else _prompted_schema(req)  # a model told the schema in its prompt follows it
        text: Optional[str] = (json.dumps(fake_value(schema, key)) if schema else
                               f"```json\n{json.dumps(fake_value(prompted, key))}\n```" if prompted else "fake answer")
        finish = "stop"
        if fault == "invalid_json":
            text = text[: len(text) // 2]
        elif fault == "max_tokens":
            text = text[: len(text) // 3]
            finish = "length"
        elif fault == "safety":
            text, finish = None, "content_filter"
        completion = tokens_of_text(text or "") + self.reasoning_tokens
        body = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "finish_reason": finish, "logprobs": None}],
            "usage": {
                "prompt_tokens": text_tokens + audio_tokens,
                "completion_tokens": completion,
                "total_tokens": text_tokens + audio_tokens + completion,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": audio_tokens},
                "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens, "audio_tokens": 0},
            },
        }
        if fault != "slow":
            self.record(key, fault or "ok", attempt=attempt, usage=body["usage"])
        return 200, body, {}
