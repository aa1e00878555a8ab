"""Gemini through the async google-genai client (`client.aio.models.generate_content`).

One request per segment sample: the system prompt as `system_instruction`, one user turn with the
clip (`video/mp4`; inline bytes up to `labeler.inline_max_mb`, the Files API above) followed by
the transcript text, JSON output constrained by `response_json_schema`, temperature and seed from
the config (0 and a fixed seed by default), `media_resolution` from the config. The SDK's own
retries are off (`HttpRetryOptions(attempts=1)`): `pool.LabelPool` is the only retry policy.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from pathlib import Path
from typing import Any, Optional

from ..errors import UserError
from .base import (
    BAD_REQUEST,
    INVALID_OUTPUT,
    MAX_TOKENS,
    MODEL_NOT_FOUND,
    QUOTA_EXHAUSTED,
    SAFETY_BLOCK,
    Answer,
    LabelerError,
    LabelRequest,
    Labeler,
    Usage,
    media_mime,
    request_duration,
    text_tokens,
    truncate,
)
from .http import retry_after_header, status_error, transport_error

# tokens per second of media at each media_resolution (Gemini samples video at 1 frame/s)
FRAME_TOKENS = {"low": 66, "medium": 258, "high": 258}
AUDIO_TOKENS_PER_S = 32
_MEDIA_RESOLUTION = {
    "low": "MEDIA_RESOLUTION_LOW",
    "medium": "MEDIA_RESOLUTION_MEDIUM",
    "high": "MEDIA_RESOLUTION_HIGH",
}
SAFETY_FINISH = {
    "SAFETY",
    "PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
}
GEMINI_SERVER_CODES = (500, 502, 503, 504)  # retried; other 5xx (501 ...) are bad requests
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def parse_duration(value: Any) -> Optional[float]:
    """'0.2s' (protobuf Duration JSON) -> 0.2."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1))
    return None


def retry_info_delay(details: Any) -> Optional[float]:
    """The `RetryInfo.retryDelay` of a Google error body ({"error": {"details": [...]}}), if any."""
    try:
        err = details.get("error", details) if isinstance(details, dict) else None
        for d in (err or {}).get("details", []) or []:
            if isinstance(d, dict) and str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
                return parse_duration(d.get("retryDelay"))
    except AttributeError:
        return None
    return None


def usage_from_metadata(um: Any) -> Usage:
    """`usage_metadata` -> Usage: input per modality (prompt_tokens_details), candidates, thoughts.
    Prompt tokens not covered by the details (or of other modalities, e.g. DOCUMENT) count as text."""
    if um is None:
        return Usage()
    by: dict[str, int] = {}
    for d in getattr(um, "prompt_tokens_details", None) or []:
        modality = getattr(d.modality, "value", d.modality) or "TEXT"
        key = str(modality).lower()
        key = key if key in ("text", "image", "video", "audio") else "text"
        by[key] = by.get(key, 0) + int(d.token_count or 0)
    total = int(getattr(um, "prompt_token_count", None) or 0)
    rest = total - sum(by.values())
    if rest > 0:
        by["text"] = by.get("text", 0) + rest
    return Usage(
        input_by_modality=by,
        output_tokens=int(getattr(um, "candidates_token_count", None) or 0),
        thoughts_tokens=int(getattr(um, "thoughts_token_count", None) or 0),
    )


def answer_from_response(resp: Any, model: str, max_output_tokens: int) -> Answer:
    """A GenerateContentResponse -> Answer, or LabelerError for blocked / cut / empty answers."""
    usage = usage_from_metadata(getattr(resp, "usage_metadata", None))
    candidates = getattr(resp, "candidates", None) or []
    if not candidates:
        fb = getattr(resp, "prompt_feedback", None)
        block = getattr(fb, "block_reason", None)
        if block is not None:
            name = getattr(block, "value", block)
            raise LabelerError(SAFETY_BLOCK, f"the prompt was blocked ({name})", usage=usage)
        raise LabelerError(INVALID_OUTPUT, "the answer has no candidates", usage=usage)
    cand = candidates[0]
    parts = (cand.content.parts if cand.content is not None else None) or []
    text = "".join(p.text for p in parts if getattr(p, "text", None) and not getattr(p, "thought", False))
    fr = cand.finish_reason
    reason = str(getattr(fr, "value", fr)) if fr is not None else "STOP"
    if reason in SAFETY_FINISH:
        cats = [
            f"{getattr(r.category, 'value', r.category)}={getattr(r.probability, 'value', r.probability)}"
            for r in (cand.safety_ratings or [])
            if getattr(r, "blocked", False) or str(getattr(r.probability, "value", "")) in ("MEDIUM", "HIGH")
        ]
        raise LabelerError(
            SAFETY_BLOCK, f"finish reason {reason}" + (f" ({', '.join(cats)})" if cats else ""), usage=usage
        )
    if reason == "MAX_TOKENS":
        raise LabelerError(
            MAX_TOKENS,
            f"the answer was cut at max_output_tokens={max_output_tokens}; raw answer: {truncate(text)}",
            usage=usage,
        )
    if reason not in ("STOP", "FINISH_REASON_UNSPECIFIED"):
        raise LabelerError(INVALID_OUTPUT, f"finish reason {reason}; raw answer: {truncate(text)}", usage=usage)
    return Answer(text=text, usage=usage, model=getattr(resp, "model_version", None) or model, finish_reason=reason)


def daily_quota_id(details: Any) -> Optional[str]:
    """The quotaId of a per-day QuotaFailure violation in a Google error body (a daily quota that ran
    out: retrying within the run is pointless), or None for per-minute limits."""
    err = details.get("error", details) if isinstance(details, dict) else None
    for d in (err or {}).get("details", []) or []:
        if isinstance(d, dict) and str(d.get("@type", "")).endswith("google.rpc.QuotaFailure"):
            for v in d.get("violations", []) or []:
                qid = str(v.get("quotaId", "")) if isinstance(v, dict) else ""
                if "PerDay" in qid:
                    return qid
    return None


def map_error(e: BaseException) -> LabelerError:
    """SDK/transport exception -> LabelerError with a stable reason and the server's retry hint."""
    from google.genai import errors as gerr

    if isinstance(e, gerr.APIError):
        code = int(e.code or 0)
        details = e.details
        hint = retry_info_delay(details)
        if hint is None:
            hint = retry_after_header(getattr(getattr(e, "response", None), "headers", None))
        msg = f"HTTP {code} {e.status or ''}: {e.message or ''}".strip()
        if code == 429:
            qid = daily_quota_id(details)
            if qid is not None:
                return LabelerError(QUOTA_EXHAUSTED, f"the daily quota {qid} of this key is used up ({msg})",
                                    fatal=True)
        elif code == 404 and "models/" in (e.message or "") and "not found" in (e.message or ""):
            return LabelerError(MODEL_NOT_FOUND, msg, fatal=True)
        bad_key = "API_KEY_INVALID" in json.dumps(details, default=str)  # read only after 429/5xx/408
        return status_error(code, msg, hint, server_codes=GEMINI_SERVER_CODES, auth=bad_key)
    mapped = transport_error(e)
    if mapped is not None:
        return mapped
    raise e


def make_client(cfg, api_key: str, timeout_s: float):
    """A google-genai client for the Gemini Developer API, without the SDK's hidden retries."""
    from google import genai
    from google.genai import types

    opts = types.HttpOptions(
        timeout=int(math.ceil(timeout_s * 1000)),
        retry_options=types.HttpRetryOptions(attempts=1),  # no hidden SDK retries
    )
    if cfg.base_url:
        opts.base_url = cfg.base_url
        opts.api_version = "v1beta"
    return genai.Client(api_key=api_key, vertexai=False, http_options=opts)


class GeminiLabeler(Labeler):
    kind = "gemini"

    def __init__(self, cfg, taxonomy, api_key: Optional[str] = None):
        super().__init__(cfg, taxonomy, api_key)
        if not api_key:
            raise UserError(
                f"labeler=gemini needs an API key: set the {cfg.api_key_env} environment variable "
                "or labeler.api_key_file=PATH (or use labeler=none)"
            )
        from google.genai import types

        self._types = types
        # the timeout is a backstop: the pool's timeout fires first
        self.client = make_client(cfg, api_key, cfg.timeout_s + 1.0)
        self._gen_configs: dict[int, Any] = {}
        self._uploads: dict[Path, Any] = {}
        self._upload_locks: dict[Path, asyncio.Lock] = {}

    # ------------------------------------------------------------ estimate

    def estimate_input(self, request: LabelRequest) -> dict[str, int]:
        est = {"text": text_tokens(self.prompt.system) + text_tokens(self.user_text(request))}
        if request.mode == "text":
            return est
        secs = request_duration(request) or 15.0  # unknown length: assume the longest segment
        if request.mode == "video":
            est["video"] = (math.ceil(secs) + 1) * FRAME_TOKENS[self.cfg.media_resolution]
        est["audio"] = math.ceil((secs + 1) * AUDIO_TOKENS_PER_S)
        return est

    # ------------------------------------------------------------ request

    def generation_config(self, sample: int = 0):
        """The request's GenerateContentConfig (built once per sample index: it never changes)."""
        cfg = self._gen_configs.get(sample)
        if cfg is None:
            cfg = self._gen_configs[sample] = self._generation_config(sample)
        return cfg

    def _generation_config(self, sample: int):
        t = self._types
        kwargs: dict[str, Any] = dict(
            system_instruction=self.prompt.system,
            temperature=self.cfg.temperature,
            max_output_tokens=self.cfg.max_output_tokens,
            response_mime_type="application/json",
            response_json_schema=self.schema.json_schema(),
        )
        seed = self.seed(sample)
        if seed is not None:
            kwargs["seed"] = seed
        if self.cfg.mode != "text":
            kwargs["media_resolution"] = _MEDIA_RESOLUTION[self.cfg.media_resolution]
        if self.cfg.thinking_budget is not None:
            kwargs["thinking_config"] = t.ThinkingConfig(thinking_budget=self.cfg.thinking_budget)
        return t.GenerateContentConfig(**kwargs)

    def _inline(self, path: Path) -> bool:
        return path.stat().st_size <= self.cfg.inline_max_mb * 1024 * 1024

    async def _media_part(self, path: Path):
        t = self._types
        mime = media_mime(path)
        if self._inline(path):
            small = path.stat().st_size < 2 * 1024 * 1024  # a speaker clip: no thread hop for a few 100 kB
            data = path.read_bytes() if small else await asyncio.to_thread(path.read_bytes)
            return t.Part.from_bytes(data=data, mime_type=mime)
        f = await self._upload(path, mime)
        return t.Part.from_uri(file_uri=f.uri, mime_type=mime)

    async def _upload(self, path: Path, mime: str):
        """Files API: upload once per segment (kept for retries and samples), wait until ACTIVE."""
        t = self._types
        lock = self._upload_locks.setdefault(path, asyncio.Lock())
        async with lock:
            f = self._uploads.get(path)
            if f is not None:
                return f
            f = await self.client.aio.files.upload(file=str(path), config=t.UploadFileConfig(mime_type=mime))
            delay = 0.5
            while getattr(f.state, "value", f.state) == "PROCESSING":
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 5.0)
                f = await self.client.aio.files.get(name=f.name)
            if getattr(f.state, "value", f.state) == "FAILED":
                raise LabelerError(BAD_REQUEST, f"the Files API could not process {path.name}: {f.error}")
            self._uploads[path] = f
            return f

    async def contents(self, request: LabelRequest):
        t = self._types
        parts = []
        media = request.media_path()
        if request.mode != "text" and media is not None:
            parts.append(await self._media_part(media))
        parts.append(t.Part.from_text(text=self.user_text(request)))
        return [t.Content(role="user", parts=parts)]

    async def generate(self, request: LabelRequest, sample: int = 0) -> Answer:
        try:
            contents = await self.contents(request)
            resp = await self.client.aio.models.generate_content(
                model=self.cfg.model, contents=contents, config=self.generation_config(sample)
            )
        except LabelerError:
            raise
        except Exception as e:  # noqa: BLE001 - mapped or re-raised
            raise map_error(e) from None
        return answer_from_response(resp, self.cfg.model, self.cfg.max_output_tokens)

    async def release(self, request: LabelRequest) -> None:
        media = request.media_path()
        if media is None:
            return
        f = self._uploads.pop(media, None)
        self._upload_locks.pop(media, None)
        if f is not None:
            await self.client.aio.files.delete(name=f.name)

    async def aclose(self) -> None:
        for path in list(self._uploads):
            f = self._uploads.pop(path)
            try:
                await self.client.aio.files.delete(name=f.name)
            except Exception:  # noqa: BLE001 - files expire after 48 h anyway
                pass
        try:
            await self.client.aio.aclose()
        except Exception:  # noqa: BLE001
            pass

    # ------------------------------------------------------------ batch API

    def request_json(self, request: LabelRequest, sample: int = 0) -> dict[str, Any]:
        """The GenerateContentRequest of one sample as Batch API JSON (camelCase, media inline)."""
        import base64

        parts: list[dict[str, Any]] = []
        media = request.media_path()
        if request.mode != "text" and media is not None:
            parts.append(
                {"inlineData": {"mimeType": media_mime(media), "data": base64.b64encode(media.read_bytes()).decode()}}
            )
        parts.append({"text": self.user_text(request)})
        gen: dict[str, Any] = {
            "temperature": self.cfg.temperature,
            "maxOutputTokens": self.cfg.max_output_tokens,
            "responseMimeType": "application/json",
            "responseJsonSchema": self.schema.json_schema(),
        }
        seed = self.seed(sample)
        if seed is not None:
            gen["seed"] = seed
        if self.cfg.mode != "text":
            gen["mediaResolution"] = _MEDIA_RESOLUTION[self.cfg.media_resolution]
        if self.cfg.thinking_budget is not None:
            gen["thinkingConfig"] = {"thinkingBudget": self.cfg.thinking_budget}
        return {
            "contents": [{"role": "user", "parts": parts}],
            "systemInstruction": {"parts": [{"text": self.prompt.system}]},
            "generationConfig": gen,
        }
