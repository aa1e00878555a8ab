"""A fake Gemini Developer API (generateContent + Files API) for the google-genai SDK.

Point the SDK at it with `HttpOptions(base_url=srv.url, api_version="v1beta")` (or the env var
GOOGLE_GEMINI_BASE_URL). Routes, under /v1beta and /v1:

    GET    /{v}/models                             models.list (pageSize, pageToken)
    GET    /{v}/models/{model}                     models.get
    POST   /{v}/models/{model}:generateContent
    POST   /upload/{v}/files                       resumable upload: start, then upload+finalize
    GET    /{v}/files/{id}         DELETE /{v}/files/{id}

Strict like the service: a missing `x-goog-api-key` is 403 PERMISSION_DENIED, a wrong one 400
API_KEY_INVALID; unknown request or generationConfig fields, missing contents, bad roles, parts
with no or two data fields, inline data that is not base64, unsupported response-schema keywords,
unknown file URIs: 400 INVALID_ARGUMENT.

Served models: `served` (default SERVED_MODELS; any other `gemini*` id is accepted for generating
unless `strict_models=True`); `retired` ids answer the service's 404 NOT_FOUND body ("models/X is
not found for API version v1beta, or is not supported for generateContent. Call ListModels ...")
on every route. `daily_quota=N`: after N generate requests of a key, every further one is the
service's daily-quota 429 (RESOURCE_EXHAUSTED with a QuotaFailure violation whose quotaId is
`GenerateRequestsPerDayPerProjectPerModel`, and a RetryInfo of hours).

Usage: text ~4 characters per token; video at 1 frame per second times 66 (MEDIA_RESOLUTION_LOW)
or 258 tokens per frame, plus 32 audio tokens per second (reported as VIDEO and AUDIO); audio 32
tokens per second; images 258 (66 at low). Durations come from decoding the bytes with PyAV.
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
from urllib.parse import parse_qs, urlparse

from . import FakeServer, FaultPlan, HttpError, fake_value, json_body, media_seconds, tokens_of_text

REQUEST_FIELDS = {
    "contents", "systemInstruction", "system_instruction", "generationConfig", "generation_config",
    "safetySettings", "safety_settings", "tools", "toolConfig", "tool_config", "cachedContent",
    "cached_content", "model", "labels",
}
GENERATION_FIELDS = {
    "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities",
    "candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty",
    "frequencyPenalty", "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers", "speechConfig",
    "thinkingConfig", "imageConfig", "mediaResolution",
}
GENERATION_FIELDS |= {re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), f) for f in GENERATION_FIELDS}
PART_DATA = {"text", "inlineData", "inline_data", "fileData", "file_data", "functionCall", "function_call",
             "functionResponse", "function_response", "executableCode", "executable_code",
             "codeExecutionResult", "code_execution_result"}
PART_FIELDS = PART_DATA | {"thought", "thoughtSignature", "thought_signature", "videoMetadata", "video_metadata",
                           "mediaResolution", "media_resolution"}
SCHEMA_KEYWORDS = {
    "type", "properties", "required", "enum", "items", "minimum", "maximum", "description",
    "additionalProperties", "propertyOrdering", "title", "format", "nullable", "anyOf", "$ref", "$defs",
    "minItems", "maxItems", "prefixItems", "$id", "$anchor", "const", "minLength", "maxLength",
}
MEDIA_RESOLUTIONS = {"MEDIA_RESOLUTION_UNSPECIFIED", "MEDIA_RESOLUTION_LOW", "MEDIA_RESOLUTION_MEDIUM",
                     "MEDIA_RESOLUTION_HIGH"}
THINKING_FIELDS = {"thinkingBudget", "thinking_budget", "includeThoughts", "include_thoughts", "thinkingLevel",
                   "thinking_level"}


#: what the fake lists and serves by default (ids from the official models page, Dec 2026)
SERVED_MODELS = ("gemini-3.8-flash", "gemini-3.7-flash", "gemini-3.6-flash", "gemini-3.5-flash",
                 "gemini-3.5-flash-lite", "gemini-3.1-flash-lite", "gemini-3.1-pro-preview", "gemini-3-flash-preview")
DAILY_QUOTA_ID = "GenerateRequestsPerDayPerProjectPerModel"


def not_found_body(model: str, method: str, version: str = "v1beta") -> dict:
    """The service's answer for a retired or unknown model id."""
    return {"error": {"code": 404, "status": "NOT_FOUND",
                      "message": f"models/{model} is not found for API version {version}, or is not supported for "
                                 f"{method}. Call ListModels to see the list of available models and their supported "
                                 "methods."}}


def model_json(model: str) -> dict:
    """A `Model` resource as models.get / models.list return it."""
    version = model.removeprefix("gemini-").split("-")[0]
    return {
        "name": f"models/{model}", "baseModelId": model, "version": version,
        "displayName": " ".join(w.capitalize() for w in model.split("-")),
        "description": f"fake {model}", "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
        "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent",
                                       "batchGenerateContent"],
        "temperature": 1.0, "topP": 0.95, "topK": 64, "maxTemperature": 2.0, "thinking": True,
    }


def _bad(message: str) -> HttpError:
    return HttpError(400, {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}})


def _get(d: dict, camel: str) -> Any:
    snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel)
    return d.get(camel, d.get(snake))


def _check_schema(node: Any, where: str) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k not in SCHEMA_KEYWORDS:
                raise _bad(f"Invalid JSON payload received. Unknown name \"{k}\" at '{where}': Cannot find field.")
            if k == "properties":
                if not isinstance(v, dict):
                    raise _bad(f"{where}.properties must be an object")
                for name, sub in v.items():
                    _check_schema(sub, f"{where}.properties[{name}]")
            elif k in ("items", "additionalProperties") and isinstance(v, dict):
                _check_schema(v, f"{where}.{k}")
            elif k in ("anyOf", "prefixItems"):
                for i, sub in enumerate(v):
                    _check_schema(sub, f"{where}.{k}[{i}]")
            elif k == "$defs":
                for name, sub in v.items():
                    _check_schema(sub, f"{where}.$defs[{name}]")


def _b64(data: Any, where: str) -> bytes:
    if not isinstance(data, str) or not data:
        raise _bad(f"{where}.data: must be a non-empty base64 string")
    try:
        return base64.b64decode(data.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"Invalid value at '{where}.data' (TYPE_BYTES), Base64 decoding failed for \"{data[:20]}...\"")


class FakeGemini(FakeServer):
    def __init__(
        self,
        api_key: str = "fake-gemini-key",
        faults: Optional[FaultPlan] = None,
        latency_s: float = 0.0,
        thoughts_tokens: int = 0,
        processing_polls: int = 0,
        served: Optional[tuple[str, ...]] = None,
        retired: tuple[str, ...] = (),
        strict_models: bool = False,
        daily_quota: Optional[int] = None,
    ):
        super().__init__(faults, latency_s)
        self.served = tuple(served) if served is not None else SERVED_MODELS
        self.retired = set(retired)
        self.strict_models = strict_models
        self.daily_quota = daily_quota
        self.generate_calls = 0  # generate requests that passed auth (what the daily quota counts)
        self.api_key = api_key
        self.thoughts_tokens = thoughts_tokens
        self.processing_polls = processing_polls  # GETs a file stays PROCESSING after upload
        self.files: dict[str, dict[str, Any]] = {}
        self._uploads: dict[str, dict[str, Any]] = {}
        self.deleted: list[str] = []

    @property
    def base_url(self) -> str:
        return self.url

    # --------------------------------------------------------- routing

    def _auth(self, headers: dict[str, str], query: dict[str, list[str]]) -> None:
        lower = {k.lower(): v for k, v in headers.items()}
        key = lower.get("x-goog-api-key") or (query.get("key") or [None])[0]
        if not key:
            raise HttpError(403, {"error": {"code": 403, "status": "PERMISSION_DENIED",
                                            "message": "Method doesn't allow unregistered callers (callers without "
                                                       "established identity). Please use API Key or other form of "
                                                       "API consumer identity to call this API."}})
        if key != self.api_key:
            raise HttpError(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                            "message": "API key not valid. Please pass a valid API key.",
                                            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                                         "reason": "API_KEY_INVALID",
                                                         "domain": "googleapis.com"}]}}, outcome="unauthorized")

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes):
        url = urlparse(path)
        query = parse_qs(url.query)
        p = url.path
        m = re.fullmatch(r"/(v1beta|v1|v1alpha)/models", p)
        if m and method == "GET":
            self._auth(headers, query)
            return self._list_models(query)
        m = re.fullmatch(r"/(v1beta|v1|v1alpha)/models/([^/:]+)", p)
        if m and method == "GET":
            self._auth(headers, query)
            self._check_model(m.group(2), "getModel", m.group(1))
            self.lookup("model_get")
            return 200, model_json(m.group(2)), {}
        m = re.fullmatch(r"/(v1beta|v1|v1alpha)/models/([^/:]+):generateContent", p)
        if m and method == "POST":
            self._auth(headers, query)
            return self._generate(m.group(2), json_body(body, _bad))
        m = re.fullmatch(r"/upload/(v1beta|v1|v1alpha)/files", p)
        if m and method == "POST":
            return self._upload(m.group(1), headers, query, body)
        m = re.fullmatch(r"/(v1beta|v1|v1alpha)/files/([^/]+)", p)
        if m and method in ("GET", "DELETE"):
            self._auth(headers, query)
            name = f"files/{m.group(2)}"
            if name not in self.files:
                raise HttpError(404, {"error": {"code": 404, "status": "NOT_FOUND",
                                                "message": f"File {name} does not exist."}})
            if method == "DELETE":
                self.files.pop(name)
                self.deleted.append(name)
                self.record(None, "file_deleted")
                return 200, {}, {}
            meta = self.files[name]
            if meta["polls_left"] > 0:
                meta["polls_left"] -= 1
            return 200, self._file_json(name), {}
        raise HttpError(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": f"no route {method} {p}"}})

    # --------------------------------------------------------- models

    def serves(self, model: str) -> bool:
        if model in self.retired:
            return False
        return model in self.served or (not self.strict_models and model.startswith("gemini"))

    def _check_model(self, model: str, method: str, version: str = "v1beta") -> None:
        if not self.serves(model):
            raise HttpError(404, not_found_body(model, method, version), outcome="model_not_found")

    def _list_models(self, query: dict[str, list[str]]):
        size = int((query.get("pageSize") or ["50"])[0] or 50)
        start = int((query.get("pageToken") or ["0"])[0] or 0)
        ids = [m for m in self.served if m not in self.retired]
        page = ids[start : start + size]
        body: dict[str, Any] = {"models": [model_json(m) for m in page]}
        if start + size < len(ids):
            body["nextPageToken"] = str(start + size)
        self.lookup("model_list")
        return 200, body, {}

    def _quota(self, key: str) -> None:
        """The per-key daily quota: counted per generate request, like the service's RPD."""
        with self._lock:
            self.generate_calls += 1
            over = self.daily_quota is not None and self.generate_calls > self.daily_quota
        if over:
            raise HttpError(429, {"error": {
                "code": 429, "status": "RESOURCE_EXHAUSTED",
                "message": "You exceeded your current quota, please check your plan and billing details. For more "
                           "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n"
                           "* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_requests, "
                           f"limit: {self.daily_quota}",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                     "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                                     "quotaId": DAILY_QUOTA_ID,
                                     "quotaDimensions": {"location": "global"},
                                     "quotaValue": str(self.daily_quota)}]},
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "50400s"},
                ]}}, outcome="daily_quota", key=key)

    # --------------------------------------------------------- Files API

    def _file_json(self, name: str) -> dict[str, Any]:
        meta = self.files[name]
        return {
            "name": name,
            "mimeType": meta["mime"],
            "sizeBytes": str(len(meta["data"])),
            "uri": f"{self.url}/v1beta/{name}",
            "state": "PROCESSING" if meta["polls_left"] > 0 else "ACTIVE",
            "source": "UPLOADED",
        }

    def _upload(self, version: str, headers: dict[str, str], query: dict[str, list[str]], body: bytes):
        lower = {k.lower(): v for k, v in headers.items()}
        command = lower.get("x-goog-upload-command", "")
        upload_id = (query.get("upload_id") or [None])[0]
        if upload_id is None:  # start of a resumable upload
            self._auth(headers, query)
            if lower.get("x-goog-upload-protocol") != "resumable" or command != "start":
                raise _bad("expected X-Goog-Upload-Protocol: resumable and X-Goog-Upload-Command: start")
            meta = json_body(body, _bad) or {}
            file = meta.get("file", {}) if isinstance(meta, dict) else {}
            size = int(lower.get("x-goog-upload-header-content-length") or file.get("sizeBytes") or 0)
            mime = lower.get("x-goog-upload-header-content-type") or file.get("mimeType") or ""
            if not mime:
                raise _bad("the upload has no mime type")
            uid = uuid.uuid4().hex
            self._uploads[uid] = {"data": b"", "size": size, "mime": mime}
            upload_url = f"{self.url}/upload/{version}/files?upload_id={uid}&upload_protocol=resumable"
            return 200, {}, {"X-Goog-Upload-URL": upload_url, "X-Goog-Upload-Status": "active"}
        up = self._uploads.get(upload_id)
        if up is None:
            raise HttpError(404, {"error": {"code": 404, "message": "unknown upload id", "status": "NOT_FOUND"}})
        if not command.startswith("upload"):
            raise _bad(f"bad X-Goog-Upload-Command {command!r}")
        if int(lower.get("x-goog-upload-offset", -1)) != len(up["data"]):
            raise _bad("X-Goog-Upload-Offset does not match the bytes received")
        up["data"] += body
        if "finalize" not in command:
            return 200, {}, {"X-Goog-Upload-Status": "active"}
        self._uploads.pop(upload_id)
        name = f"files/{uuid.uuid4().hex[:12]}"
        self.files[name] = {"data": up["data"], "mime": up["mime"], "polls_left": self.processing_polls}
        self.record(None, "file_uploaded")
        return 200, {"file": self._file_json(name)}, {"X-Goog-Upload-Status": "final"}

    # --------------------------------------------------------- generateContent

    def _validate(self, model: str, req: Any) -> tuple[str, dict[str, int], dict[str, Any]]:
        """Check the request; return (prompt key, input tokens per modality, generation config)."""
        self._check_model(model, "generateContent")
        if not isinstance(req, dict):
            raise _bad("Invalid JSON payload received. Expected an object.")
        for k in req:
            if k not in REQUEST_FIELDS:
                raise _bad(f"Invalid JSON payload received. Unknown name \"{k}\": Cannot find field.")
        contents = req.get("contents")
        if not contents:
            raise _bad("* GenerateContentRequest.contents: contents is not specified")
        if not isinstance(contents, list):
            raise _bad("contents must be a list")
        gen = _get(req, "generationConfig") or {}
        if not isinstance(gen, dict):
            raise _bad("generationConfig must be an object")
        for k in gen:
            if k not in GENERATION_FIELDS:
                raise _bad(f"Invalid JSON payload received. Unknown name \"{k}\" at 'generation_config': "
                           "Cannot find field.")
        temp = _get(gen, "temperature")
        if temp is not None and not (isinstance(temp, (int, float)) and 0 <= temp <= 2):
            raise _bad("generation_config.temperature must be in [0, 2]")
        mime = _get(gen, "responseMimeType")
        if mime is not None and mime not in ("text/plain", "application/json", "text/x.enum"):
            raise _bad(f"response_mime_type {mime!r} is not supported")
        js, s = _get(gen, "responseJsonSchema"), _get(gen, "responseSchema")
        if js is not None and s is not None:
            raise _bad("response_schema and response_json_schema cannot both be set")
        if (js is not None or s is not None) and mime != "application/json":
            raise _bad("a response schema needs response_mime_type application/json")
        if js is not None:
            _check_schema(js, "generation_config.response_json_schema")
        res = _get(gen, "mediaResolution")
        if res is not None and res not in MEDIA_RESOLUTIONS:
            raise _bad(f"Invalid value at 'generation_config.media_resolution': {res!r}")
        seed = _get(gen, "seed")
        if seed is not None and not isinstance(seed, int):
            raise _bad("generation_config.seed must be an integer")
        mot = _get(gen, "maxOutputTokens")
        if mot is not None and not (isinstance(mot, int) and mot > 0):
            raise _bad("generation_config.max_output_tokens must be a positive integer")
        think = _get(gen, "thinkingConfig")
        if think is not None:
            if not isinstance(think, dict) or set(think) - THINKING_FIELDS:
                raise _bad("generation_config.thinking_config has unknown fields")

        per_frame = 66 if res == "MEDIA_RESOLUTION_LOW" else 258
        usage: dict[str, int] = {"TEXT": 0}
        texts: list[str] = []
        sys_inst = _get(req, "systemInstruction")
        if sys_inst is not None:
            if not isinstance(sys_inst, dict) or not sys_inst.get("parts"):
                raise _bad("system_instruction must be a Content with parts")
            for part in sys_inst["parts"]:
                if set(part) != {"text"}:
                    raise _bad("system_instruction parts must be text")
                usage["TEXT"] += tokens_of_text(part["text"])
        for i, content in enumerate(contents):
            where = f"contents[{i}]"
            if not isinstance(content, dict) or set(content) - {"role", "parts"}:
                raise _bad(f"Invalid JSON payload received. Unknown name at '{where}'")
            role = content.get("role", "user")
            if role not in ("user", "model"):
                raise _bad(f"Please use a valid role: user, model. (got {role!r} at {where})")
            parts = content.get("parts")
            if not parts or not isinstance(parts, list):
                raise _bad(f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.")
            for j, part in enumerate(parts):
                pw = f"{where}.parts[{j}]"
                if not isinstance(part, dict):
                    raise _bad(f"{pw} must be an object")
                unknown = set(part) - PART_FIELDS
                if unknown:
                    raise _bad(f"Invalid JSON payload received. Unknown name \"{sorted(unknown)[0]}\" at '{pw}'")
                data_fields = set(part) & PART_DATA
                if len(data_fields) != 1:
                    raise _bad(f"{pw}: a part needs exactly one of text, inline_data, file_data (got "
                               f"{sorted(data_fields)})")
                if "text" in part:
                    if not isinstance(part["text"], str):
                        raise _bad(f"{pw}.text must be a string")
                    usage["TEXT"] += tokens_of_text(part["text"])
                    if role == "user":
                        texts.append(part["text"])
                    continue
                inline = _get(part, "inlineData")
                filed = _get(part, "fileData")
                if inline is not None:
                    mime_type = _get(inline, "mimeType")
                    if not mime_type:
                        raise _bad(f"{pw}.inline_data.mime_type is required")
                    data = _b64(inline.get("data"), f"{pw}.inline_data")
                elif filed is not None:
                    uri = _get(filed, "fileUri") or ""
                    name = "files/" + uri.rstrip("/").rsplit("/", 1)[-1]
                    if name not in self.files:
                        raise HttpError(403, {"error": {"code": 403, "status": "PERMISSION_DENIED",
                                                        "message": f"You do not have permission to access the "
                                                                   f"File {name} or it may not exist."}},
                                        outcome="bad_request")
                    if self.files[name]["polls_left"] > 0:
                        raise _bad(f"The File {name} is not in an ACTIVE state and usage is not allowed.")
                    mime_type = _get(filed, "mimeType") or self.files[name]["mime"]
                    data = self.files[name]["data"]
                else:
                    raise _bad(f"{pw}: function parts are not accepted by this fake")
                self._count_media(usage, mime_type, data, per_frame)
        key = "\n".join(texts)
        return key, {k: v for k, v in usage.items() if v}, gen

    @staticmethod
    def _count_media(usage: dict[str, int], mime: str, data: bytes, per_frame: int) -> None:
        if mime.startswith("video/"):
            secs = media_seconds(data)
            usage["VIDEO"] = usage.get("VIDEO", 0) + max(1, math.ceil(secs)) * per_frame
            usage["AUDIO"] = usage.get("AUDIO", 0) + math.ceil(secs * 32)
        elif mime.startswith("audio/"):
            usage["AUDIO"] = usage.get("AUDIO", 0) + math.ceil(media_seconds(data) * 32)
        elif mime.startswith("image/"):
            usage["IMAGE"] = usage.get("IMAGE", 0) + per_frame
        else:
            raise _bad(f"Unsupported MIME type: {mime}")

    def _usage(self, prompt: dict[str, int], out_text: str, thoughts: int) -> dict[str, Any]:
        cand = tokens_of_text(out_text)
        total_prompt = sum(prompt.values())
        u: dict[str, Any] = {
            "promptTokenCount": total_prompt,
            "candidatesTokenCount": cand,
            "totalTokenCount": total_prompt + cand + thoughts,
            "promptTokensDetails": [{"modality": m, "tokenCount": t} for m, t in prompt.items()],
        }
        if thoughts:
            u["thoughtsTokenCount"] = thoughts
        return u

    def _generate(self, model: str, req: Any):
        key, prompt_usage, gen = self._validate(model, req)
        self._quota(key)
        with self._lock:
            self.requests.append(req)
        attempt = self.next_attempt(key)
        fault = self.faults.pick(key, attempt)
        if fault == "rate_limit":
            delay = f"{self.faults.retry_delay_s:g}s"
            raise HttpError(429, {"error": {
                "code": 429, "status": "RESOURCE_EXHAUSTED",
                "message": "You exceeded your current quota, please check your plan and billing details.",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                     "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                                     "quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}]},
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
                ]}}, outcome="rate_limit", key=key, attempt=attempt)
        if fault == "server_error":
            raise HttpError(500, {"error": {"code": 500, "status": "INTERNAL",
                                            "message": "An internal error has occurred."}}, outcome=fault,
                            key=key, attempt=attempt)
        if fault == "unavailable":
            raise HttpError(503, {"error": {"code": 503, "status": "UNAVAILABLE",
                                            "message": "The model is overloaded. Please try again later."}},
                            outcome=fault, key=key, attempt=attempt)
        if fault == "slow":
            self.record(key, fault, attempt=attempt)
            time.sleep(self.faults.slow_s)
        schema = _get(gen, "responseJsonSchema") or _get(gen, "responseSchema")
        answer = fake_value(schema, key) if schema else {"text": "fake"}
        text = json.dumps(answer)
        finish = "STOP"
        if fault == "invalid_json":
            text = text[: len(text) // 2]
        elif fault == "max_tokens":
            text = text[: len(text) // 3]
            finish = "MAX_TOKENS"
        body: dict[str, Any] = {
            "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": finish,
                            "index": 0}],
            "usageMetadata": self._usage(prompt_usage, text, self.thoughts_tokens),
            "modelVersion": model,
            "responseId": uuid.uuid4().hex[:16],
        }
        if fault == "safety":
            body["candidates"] = [{
                "finishReason": "SAFETY", "index": 0,
                "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH",
                                   "blocked": True}],
            }]
            body["usageMetadata"] = self._usage(prompt_usage, "", 0)
        if fault != "slow":
            self.record(key, fault or "ok", attempt=attempt, usage=body["usageMetadata"])
        return 200, body, {}
