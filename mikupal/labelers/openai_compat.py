"""Any OpenAI-compatible chat completions server through the `openai` client: OpenAI itself
(GPT-4o, the text-only MELT mode), vLLM or Ollama serving an open multimodal model locally.

Messages: the system prompt, then one user turn whose content parts are the media (first) and the
transcript text. JSON output through `response_format={"type": "json_schema", "strict": true}`.

Media per mode:
  text   no media (works everywhere).
  video  `labeler.video_transport=frames` (default): JPEG frames sampled at `frames_fps` (at most
         `max_frames`) as `image_url` data URLs (`detail: low` at media_resolution=low). Works with
         OpenAI vision models, vLLM and Ollama. The audio track is NOT sent: the voice only reaches
         the model through the transcript (use Gemini, or video_url, for the voice).
         `video_transport=video_url`: the MP4 itself, with its audio, as a
         `{"type": "video_url", "video_url": {"url": "data:video/mp4;base64,..."}}` part: vLLM's
         extension for video models (Qwen2.5-VL; Qwen2.5-Omni also hears the audio when the server
         runs with `--mm-processor-kwargs '{"use_audio_in_video": true}'`). OpenAI and Ollama reject it.
  audio  the vocals as an `input_audio` part (WAV, transcoded): OpenAI's audio models (gpt-4o-audio-preview,
         gpt-audio ...), vLLM audio and omni models (Qwen2-Audio, Qwen2.5-Omni, Qwen3-Omni).

What a server takes differs per model, and a request it refuses for its shape (a modality the
model does not take: vLLM's "At most 0 audio(s) may be provided", OpenAI's "This model does not
support image_url content" or "Invalid value: 'video_url'") fails every request alike: it is the
run-level `labeler_unsupported_input`, which stops the run at the first answer instead of
rejecting every segment. Two per-model adjustments are made here:
- OpenAI's audio models (gpt-*audio*) refuse Structured Outputs (`json_schema`): for them no
  `response_format` is sent; the system prompt carries the JSON Schema instead, and the schema
  check (with its retries) still holds the answer to it.
- `video_url` to a vLLM omni model (an id with "omni"): `mm_processor_kwargs: {use_audio_in_video:
  true}` rides along, so the model hears the clip's voice too (`labeler.use_audio_in_video`, null =
  that rule; vLLM's own extension, never sent to api.openai.com).

The SDK's retries are off (`max_retries=0`): `pool.LabelPool` is the only retry policy.
"""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path
from typing import Any, Optional

from .. import media
from ..errors import UserError
from .base import (
    BAD_REQUEST,
    CONNECTION_ERROR,
    INVALID_OUTPUT,
    MAX_TOKENS,
    MODEL_NOT_FOUND,
    QUOTA_EXHAUSTED,
    SAFETY_BLOCK,
    TIMEOUT,
    UNSUPPORTED_INPUT,
    Answer,
    LabelerError,
    LabelRequest,
    Labeler,
    Usage,
    request_duration,
    text_tokens,
    truncate,
)
from .http import retry_after_header, status_error

#: 400 messages that are about what the request carries, not about one clip: OpenAI's and vLLM's
UNSUPPORTED = re.compile(r"At most 0 (?:image|video|audio)|does not support (?:image_url|input_audio|video_url|audio_url|"
                         r"image|audio|video)|Invalid value: '(?:video_url|audio_url|input_audio|image_url)'|"
                         r"'json_schema' is not supported with this model|requires that either input content or "
                         r"output modality contain audio|is not a multimodal model", re.I)
IMAGE_TOKENS = {"low": 85, "medium": 255, "high": 765}  # GPT-4o: detail=low is 85 tokens per image
AUDIO_TOKENS_PER_S = 10  # gpt-4o-audio: about 10 tokens per second of input audio


def _frames_jpeg(path: Path, fps: float, max_frames: int) -> list[bytes]:
    """JPEG frames sampled evenly at `fps` (at most `max_frames`, spread over the clip)."""
    try:
        frames = media.jpeg_frames(path, fps, max_frames)
    except Exception as e:  # noqa: BLE001
        raise LabelerError(BAD_REQUEST, f"cannot decode the clip {path.name}: {e}") from None
    if not frames:
        raise LabelerError(BAD_REQUEST, f"the clip {path.name} has no video frames")
    return frames


def _wav_bytes(path: Path) -> bytes:
    """Any audio file -> 16-bit mono 16 kHz WAV bytes (what `input_audio` accepts)."""
    try:
        return media.wav_bytes(path, 16000)
    except Exception as e:  # noqa: BLE001
        raise LabelerError(BAD_REQUEST, f"cannot decode the audio {path.name}: {e}") from None


def map_error(e: BaseException) -> LabelerError:
    import openai

    if isinstance(e, openai.APITimeoutError):
        return LabelerError(TIMEOUT, "the request timed out", retryable=True)
    if isinstance(e, openai.APIConnectionError):
        return LabelerError(CONNECTION_ERROR, f"{type(e).__name__}: {e}", retryable=True)
    if isinstance(e, openai.APIStatusError):
        code = e.status_code
        hint = retry_after_header(e.response.headers if e.response is not None else None)
        body = e.body if isinstance(e.body, dict) else {}
        detail = body.get("message") or (body.get("error") or {}).get("message") if isinstance(body, dict) else None
        msg = f"HTTP {code}: {detail or e.message}"
        err_code = (body.get("error") or {}).get("code") if isinstance(body.get("error"), dict) else body.get("code")
        if code == 429 and err_code == "insufficient_quota":
            return LabelerError(QUOTA_EXHAUSTED, msg, fatal=True)
        if code == 404 and err_code == "model_not_found":
            return LabelerError(MODEL_NOT_FOUND, msg, fatal=True)
        if code == 400 and UNSUPPORTED.search(msg):
            return LabelerError(UNSUPPORTED_INPUT, f"{msg} (the model does not take what labeler.mode sends: choose "
                                "another labeler.mode, labeler.video_transport or a model that takes it)", fatal=True)
        return status_error(code, msg, hint)
    raise e


class OpenAICompatLabeler(Labeler):
    kind = "openai"

    def __init__(self, cfg, taxonomy, api_key: Optional[str] = None):
        super().__init__(cfg, taxonomy, api_key)
        if not api_key and not cfg.base_url:
            raise UserError(
                f"labeler=openai needs an API key for api.openai.com: set {cfg.api_key_env} or "
                "labeler.api_key_file=PATH (a local server needs labeler.base_url=http://HOST:PORT/v1)"
            )
        from openai import AsyncOpenAI

        # local servers (vLLM, Ollama) ignore the key, but the client insists on one
        self.client = AsyncOpenAI(
            api_key=api_key or "not-needed", base_url=cfg.base_url, max_retries=0, timeout=cfg.timeout_s + 1.0
        )
        self._official = not cfg.base_url or "api.openai.com" in cfg.base_url

    @property
    def structured_output(self) -> bool:
        """OpenAI's audio models refuse a `json_schema` response format: the prompt carries the format."""
        return re.match(r"gpt-(?:[\w.]+-)*audio", self.cfg.model.lower()) is None

    @property
    def audio_in_video(self) -> bool:
        """Ask a vLLM omni model to hear the video_url clip's audio (`labeler.use_audio_in_video`)."""
        if self._official or self.cfg.mode != "video" or self.cfg.video_transport != "video_url":
            return False
        wanted = self.cfg.use_audio_in_video
        return "omni" in self.cfg.model.lower() if wanted is None else bool(wanted)

    def estimate_input(self, request: LabelRequest) -> dict[str, int]:
        est = {"text": text_tokens(self.prompt.system) + text_tokens(self.user_text(request))}
        if request.mode == "text":
            return est
        secs = request_duration(request) or 15.0
        if request.mode == "video":
            if self.cfg.video_transport == "frames":
                n = min(self.cfg.max_frames, math.ceil(secs * self.cfg.frames_fps) + 1)
                est["image"] = n * IMAGE_TOKENS[self.cfg.media_resolution]
            else:  # a local video model: ~ Gemini-like frame tokens, generous
                est["video"] = (math.ceil(secs) + 1) * 300
                est["audio"] = math.ceil((secs + 1) * 32)
        else:
            est["audio"] = math.ceil((secs + 1) * 32)
        return est

    def _media_parts(self, request: LabelRequest) -> list[dict[str, Any]]:
        media = request.media_path()
        if request.mode == "text" or media is None:
            return []
        if request.mode == "audio":
            data = base64.b64encode(_wav_bytes(media)).decode()
            return [{"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}]
        if self.cfg.video_transport == "video_url":
            data = base64.b64encode(media.read_bytes()).decode()
            return [{"type": "video_url", "video_url": {"url": f"data:video/mp4;base64,{data}"}}]
        detail = "low" if self.cfg.media_resolution == "low" else "high"
        return [
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(j).decode(),
                                                "detail": detail}}
            for j in _frames_jpeg(media, self.cfg.frames_fps, self.cfg.max_frames)
        ]

    def system_text(self) -> str:
        """The prompt; without Structured Outputs, with the answer's JSON Schema spelled out."""
        if self.structured_output:
            return self.prompt.system
        schema = json.dumps(self.schema.json_schema(), indent=1)
        return f"{self.prompt.system}\n\nYour answer is one JSON object valid against this JSON Schema:\n```json\n{schema}\n```"

    def messages(self, request: LabelRequest) -> list[dict[str, Any]]:
        content = self._media_parts(request) + [{"type": "text", "text": self.user_text(request)}]
        return [{"role": "system", "content": self.system_text()}, {"role": "user", "content": content}]

    def request_kwargs(self, request: LabelRequest, sample: int = 0) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(model=self.cfg.model, messages=self.messages(request), temperature=self.cfg.temperature)
        if self.structured_output:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "emotion_annotation", "strict": True, "schema": self.schema.json_schema()},
            }
        if self.audio_in_video:
            kwargs["extra_body"] = {"mm_processor_kwargs": {"use_audio_in_video": True}}
        # api.openai.com wants max_completion_tokens; vLLM/Ollama understand max_tokens
        kwargs["max_completion_tokens" if self._official else "max_tokens"] = self.cfg.max_output_tokens
        seed = self.seed(sample)
        if seed is not None:
            kwargs["seed"] = seed
        return kwargs

    async def generate(self, request: LabelRequest, sample: int = 0) -> Answer:
        import asyncio

        try:
            if request.mode == "text":
                kwargs = self.request_kwargs(request, sample)
            else:  # decoding frames / transcoding audio: off the event loop
                kwargs = await asyncio.to_thread(self.request_kwargs, request, sample)
            resp = await self.client.chat.completions.create(**kwargs)
        except LabelerError:
            raise
        except Exception as e:  # noqa: BLE001 - mapped or re-raised
            raise map_error(e) from None
        return self.answer(resp)

    def answer(self, resp: Any) -> Answer:
        u = resp.usage
        usage = Usage()
        if u is not None:
            audio = int(getattr(getattr(u, "prompt_tokens_details", None), "audio_tokens", None) or 0)
            prompt = int(u.prompt_tokens or 0)
            by = {"text": max(0, prompt - audio)}
            if audio:
                by["audio"] = audio
            # completion_tokens already include reasoning tokens: no separate thoughts count
            usage = Usage(input_by_modality=by, output_tokens=int(u.completion_tokens or 0))
        if not resp.choices:
            raise LabelerError(INVALID_OUTPUT, "the answer has no choices", usage=usage)
        choice = resp.choices[0]
        msg = choice.message
        text = (msg.content or "") if msg is not None else ""
        refusal = getattr(msg, "refusal", None) if msg is not None else None
        reason = choice.finish_reason or "stop"
        if reason == "content_filter" or refusal:
            raise LabelerError(SAFETY_BLOCK, f"finish reason {reason}" + (f": {refusal}" if refusal else ""),
                               usage=usage)
        if reason == "length":
            raise LabelerError(
                MAX_TOKENS,
                f"the answer was cut at max tokens={self.cfg.max_output_tokens}; raw answer: {truncate(text)}",
                usage=usage,
            )
        return Answer(text=text, usage=usage, model=resp.model or self.cfg.model, finish_reason=reason)

    async def aclose(self) -> None:
        try:
            await self.client.close()
        except Exception:  # noqa: BLE001
            pass
