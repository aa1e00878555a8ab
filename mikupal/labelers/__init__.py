"""MLLM emotion labeling (MIKU-PAL): prompt, structured output, Gemini and OpenAI-compatible
backends, one request policy (rate limits, backoff, budget), cost accounting and the Batch API.

    from mikupal.labelers.session import LabelSession
    with LabelSession.open(cfg.labeler, load_taxonomy(cfg.taxonomy)) as session:  # backend, pool, limits, loop
        [result] = session.label([LabelRequest(segment_id, transcript, "video", clip_path=clip, duration=3.2)])

Every caller labels through a session (`session.py`): the pipeline stage, `mikupal label` and the
benchmarks set up the backend, its `LabelPool`, the limits and the event loop the same way.
Pipeline use: `mikupal.stages.label.LabelStage`; offline use: `mikupal label input=DIR`
(`mikupal.commands.label`; what to label: `relabel`, labeling it: `label_output`). Before any request:
`preflight.preflight` (key accepted, model served, price known). One budget, rate limit and stop
switch for a whole run across label workers: `budget.RunLimits`.

Modules: `base` (the interface and reasons), `factory` (`make_labeler`), `requests` (the one way to
build a `LabelRequest` and its context turns), `http` (retry hints, status and transport errors),
`gemini`, `openai_compat` (backends), `pool` (the request policy), `budget`, `pricing`, `schema`,
`prompt`, `batch`, `preflight`, `relabel`, `label_output`, `session` (what a caller holds).
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
