"""The labeler interface: one request per segment in, one annotation (or a reject reason) out.

A backend (`GeminiLabeler`, `OpenAICompatLabeler`) only knows how to turn a `LabelRequest` into
ONE HTTP exchange and report what came back (`Answer`) or what went wrong (`LabelerError` with a
stable reason). Everything around it (retries, backoff, rate limits, budget, validation,
self-consistency) lives in `pool.LabelPool`, so every backend gets the same policy.
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, Optional

from ..config import LabelerConfig
from ..errors import StageError, UserError
from ..records import EmotionAnnotation

Mode = Literal["video", "audio", "text"]
MODALITIES = ("text", "image", "video", "audio")

# stable reject reasons of the label stage
INVALID_OUTPUT = "labeler_invalid_output"
RATE_LIMITED = "labeler_rate_limited"
SERVER_ERROR = "labeler_server_error"
TIMEOUT = "labeler_timeout"
CONNECTION_ERROR = "labeler_connection_error"
SAFETY_BLOCK = "labeler_safety_block"
MAX_TOKENS = "labeler_max_tokens"
BAD_REQUEST = "labeler_bad_request"
AUTH_ERROR = "labeler_auth_error"
MODEL_NOT_FOUND = "labeler_model_not_found"  # the configured model is retired or unknown to the service
QUOTA_EXHAUSTED = "labeler_quota_exhausted"  # a daily (per-day) quota of the key ran out
UNSUPPORTED_INPUT = "labeler_unsupported_input"  # the model or server does not take what labeler.mode sends
MISSING_MEDIA = "labeler_missing_media"
BUDGET_EXHAUSTED = "budget_exhausted"
BATCH_MISSING = "labeler_batch_missing"
INTERNAL_ERROR = "stage_error"

#: failures that are about the run, not one segment: the first one stops the run (nothing of the
#: unfinished videos is committed; the re-run redoes them) instead of becoming per-segment rejects
RUN_LEVEL = frozenset({AUTH_ERROR, MODEL_NOT_FOUND, QUOTA_EXHAUSTED, UNSUPPORTED_INPUT})

RAW_TEXT_LIMIT = 2000  # characters of a bad answer kept in the reject message


@dataclass
class LabelRequest:
    """What the labeler sees of one segment. Paths are absolute (resolved against the output dir)."""

    segment_id: str
    transcript: str
    mode: Mode = "video"
    clip_path: Optional[Path] = None  # the speaker clip (MP4, face crop + separated vocals)
    audio_path: Optional[Path] = None  # the separated vocals (audio mode)
    context: list[str] = field(default_factory=list)  # earlier utterances of the dialogue (text mode)
    duration: float = 0.0  # seconds of media: sizes token estimates and the cost per kept hour

    def media_path(self) -> Optional[Path]:
        if self.mode == "video":
            return self.clip_path
        if self.mode == "audio":
            return self.audio_path
        return None


@dataclass
class Usage:
    """Billed tokens of one answer: input per modality (text/image/video/audio), output, thinking."""

    input_by_modality: dict[str, int] = field(default_factory=dict)
    output_tokens: int = 0  # the answer itself (Gemini candidates_token_count)
    thoughts_tokens: int = 0  # thinking tokens, billed as output

    @property
    def input_tokens(self) -> int:
        return sum(self.input_by_modality.values())

    @property
    def billed_output_tokens(self) -> int:
        return self.output_tokens + self.thoughts_tokens

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.billed_output_tokens

    def __add__(self, other: "Usage") -> "Usage":
        keys = set(self.input_by_modality) | set(other.input_by_modality)
        return Usage(
            {k: self.input_by_modality.get(k, 0) + other.input_by_modality.get(k, 0) for k in sorted(keys)},
            self.output_tokens + other.output_tokens,
            self.thoughts_tokens + other.thoughts_tokens,
        )


@dataclass
class Answer:
    """One completed exchange: the model's text (not yet validated) and what it cost."""

    text: str
    usage: Usage
    model: str
    finish_reason: str = "STOP"


class LabelerError(StageError):
    """One failed exchange. `retryable` errors go through backoff; `fatal` ones stop all requests
    (a bad API key fails every segment the same way: no point sending the rest)."""

    def __init__(
        self,
        reason: str,
        message: str = "",
        *,
        retryable: bool = False,
        retry_after: Optional[float] = None,
        usage: Optional[Usage] = None,
        fatal: bool = False,
    ):
        super().__init__(reason, message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.usage = usage
        self.fatal = fatal


@dataclass
class LabelResult:
    """The end of one segment: an annotation, or the reason it has none. Never neither."""

    segment_id: str
    annotation: Optional[EmotionAnnotation] = None
    reason: Optional[str] = None
    message: str = ""
    attempts: int = 0  # HTTP exchanges made for this segment (all samples, all retries)
    cost_usd: Optional[float] = 0.0  # spent on this segment, failed attempts included; None = no price known
    seconds: float = 0.0  # wall time from the request to its result (the stage's time of the segment)

    @property
    def ok(self) -> bool:
        return self.annotation is not None


def truncate(text: str, limit: int = RAW_TEXT_LIMIT) -> str:
    """Keep the head and the tail of a long text: where a JSON answer broke is usually at the end."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    return f"{text[:head]} ...[{len(text) - limit} chars cut]... {text[-tail:]}"


def media_mime(path: Path) -> str:
    ext = path.suffix.lower()
    return {
        ".mp4": "video/mp4",
        ".mov": "video/quicktime",
        ".webm": "video/webm",
        ".wav": "audio/wav",
        ".flac": "audio/flac",
        ".mp3": "audio/mp3",
        ".m4a": "audio/aac",
        ".aac": "audio/aac",
        ".ogg": "audio/ogg",
        ".opus": "audio/ogg",
    }.get(ext, "application/octet-stream")


def request_duration(request: "LabelRequest") -> float:
    if request.duration > 0:
        return request.duration
    from ..media import duration_seconds

    return duration_seconds(request.media_path())


def text_tokens(text: str) -> int:
    """A conservative token estimate for text (about 4 characters per token in English)."""
    return math.ceil(len(text) / 3.5) + 4


def read_api_key(cfg: LabelerConfig) -> Optional[str]:
    """The key from `api_key_file` or the `api_key_env` variable. The value is never logged."""
    if cfg.api_key_file:
        path = Path(os.path.expanduser(cfg.api_key_file))
        try:
            key = path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise UserError(f"labeler.api_key_file: cannot read {path}: {e.strerror}") from None
        if not key:
            raise UserError(f"labeler.api_key_file: {path} is empty")
        return key
    key = os.environ.get(cfg.api_key_env, "").strip()
    return key or None


class Labeler(ABC):
    """One backend. Subclasses implement `generate` (one request, no retries) and `estimate_input`."""

    kind: ClassVar[str]

    def __init__(self, cfg: LabelerConfig, taxonomy, api_key: Optional[str] = None):
        from .prompt import load_prompt
        from .schema import OutputSchema

        self.cfg = cfg
        self.taxonomy = taxonomy
        self.prompt = load_prompt(cfg.prompt_version, taxonomy, cfg.mode)
        self.schema = OutputSchema(taxonomy, cfg.mode, delivery=self.prompt.delivery)
        self._api_key = api_key

    @property
    def model(self) -> str:
        return self.cfg.model

    @property
    def secrets(self) -> list[str]:
        """Strings that must never reach a log, a reject message or a file."""
        return [self._api_key] if self._api_key else []

    def seed(self, sample: int) -> Optional[int]:
        """Each self-consistency sample gets its own seed (seed + index)."""
        return None if self.cfg.seed is None else self.cfg.seed + sample

    def user_text(self, request: LabelRequest) -> str:
        return self.prompt.user_text(request.transcript, request.context, request.duration)

    @abstractmethod
    async def generate(self, request: LabelRequest, sample: int = 0) -> Answer:
        """Send one request and return the raw answer, or raise `LabelerError`. Never retries."""

    @abstractmethod
    def estimate_input(self, request: LabelRequest) -> dict[str, int]:
        """Input tokens per modality, an upper-ish estimate made before sending (rate limits, budget)."""

    async def release(self, request: LabelRequest) -> None:
        """Free per-segment server resources (uploaded files) once all its samples are done."""

    async def aclose(self) -> None:
        """Close connections."""
