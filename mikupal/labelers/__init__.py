"""MLLM emotion labeling (MIKU-PAL): prompt, structured output, Gemini and OpenAI-compatible
backends, one request policy (rate limits, backoff, budget), cost accounting and the Batch API.

    from mikupal.labelers import LabelPool, LabelRequest, make_labeler, read_api_key
    labeler = make_labeler(cfg.labeler, load_taxonomy(cfg.taxonomy), read_api_key(cfg.labeler))
    pool = LabelPool(labeler)
    result = await pool.label(LabelRequest(segment_id, transcript, "video", clip_path=clip, duration=3.2))

Pipeline use: `mikupal.stages.label.LabelStage`; offline use: `mikupal label input=DIR`
(`mikupal.commands.label`; what to label: `relabel`, labeling it: `label_output`). Before any request:
`preflight.preflight` (key accepted, model served, price known). One budget, rate limit and stop
switch for a whole run across label workers: `budget.RunLimits`.

Modules: `base` (the interface and reasons), `factory` (`make_labeler`), `requests` (the one way to
build a `LabelRequest` and its context turns), `http` (retry hints, status and transport errors),
`gemini`, `openai_compat` (backends), `pool` (the request policy), `budget`, `pricing`, `schema`,
`prompt`, `batch`, `preflight`, `relabel`, `label_output`.
"""

from .base import (
    Answer,
    LabelerError,
    LabelRequest,
    LabelResult,
    Labeler,
    Usage,
    read_api_key,
)
from .factory import make_labeler
from .pool import LabelPool
from .pricing import RunCost, cost_usd
from .prompt import Prompt, load_prompt
from .requests import context_turns, label_request
from .schema import InvalidOutput, OutputSchema, SampleLabel

__all__ = [
    "Answer",
    "InvalidOutput",
    "LabelPool",
    "LabelRequest",
    "LabelResult",
    "Labeler",
    "LabelerError",
    "OutputSchema",
    "Prompt",
    "RunCost",
    "SampleLabel",
    "Usage",
    "context_turns",
    "cost_usd",
    "label_request",
    "load_prompt",
    "make_labeler",
    "read_api_key",
]
