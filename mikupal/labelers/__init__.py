"""MLLM emotion labeling (MIKU-PAL): prompt, structured output, Gemini and OpenAI-compatible
backends, one request policy (rate limits, backoff, budget), cost accounting and the Batch API.

    from mikupal.labelers import LabelPool, LabelRequest, make_labeler, read_api_key
    labeler = make_labeler(cfg.labeler, load_taxonomy(cfg.taxonomy), read_api_key(cfg.labeler))
    pool = LabelPool(labeler)
    result = await pool.label(LabelRequest(segment_id, transcript, "video", clip_path=clip, duration=3.2))

Pipeline use: `mikupal.stages.label.LabelStage`; offline use: `mikupal label input=DIR`
(`mikupal.labelers.command.label_command`, what to label: `relabel`). Before any request:
`preflight.preflight` (key accepted, model served, price known). One budget, rate limit and stop
switch for a whole run across label workers: `budget.RunLimits`.
"""

from .base import (
    Answer,
    LabelerError,
    LabelRequest,
    LabelResult,
    Labeler,
    Usage,
    make_labeler,
    read_api_key,
)
from .pool import LabelPool
from .pricing import RunCost, cost_usd
from .prompt import Prompt, load_prompt
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
    "cost_usd",
    "load_prompt",
    "make_labeler",
    "read_api_key",
]
