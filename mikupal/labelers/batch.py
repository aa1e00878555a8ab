"""Gemini Batch API: write the requests as JSONL now, ingest the results JSONL later (half price).

Requests file, one line per segment sample (key = segment_id, or `segment_id#i` with samples > 1):

    {"key": "<segment_id>", "request": {"contents": [...], "systemInstruction": {...},
                                        "generationConfig": {...}}}

The request is the same GenerateContentRequest the live path sends (camelCase JSON, media inline
as base64). Submit it, for example with google-genai:

    f = client.files.upload(file="batch_requests.jsonl", config={"mime_type": "jsonl"})
    job = client.batches.create(model="gemini-3.8-flash", src=f.name)
    # when job.state == JOB_STATE_SUCCEEDED:
    open("batch_results.jsonl", "wb").write(client.files.download(file=job.dest.file_name))

Results file, one line per request: `{"key": ..., "response": GenerateContentResponse}` or
`{"key": ..., "error": {"code": ..., "message": ...}}`. Ingesting validates every answer like the
live path and prices it with `labeler.batch_discount`; a request without a result line is
rejected with `labeler_batch_missing`, never dropped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Optional

from .. import atomic
from .base import (
    AUTH_ERROR,
    BAD_REQUEST,
    BATCH_MISSING,
    INVALID_OUTPUT,
    RATE_LIMITED,
    SERVER_ERROR,
    LabelerError,
    LabelRequest,
    LabelResult,
    Usage,
    truncate,
)
from .pool import make_annotation
from .pricing import RunCost, cost_usd
from .schema import InvalidOutput, SampleLabel


def batch_key(segment_id: str, sample: int, samples: int) -> str:
    return segment_id if samples == 1 else f"{segment_id}#{sample}"


def write_requests(path: str | os.PathLike, labeler, requests: Iterable[LabelRequest]) -> int:
    """Write the Batch API JSONL (atomically); return the number of lines."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    k = labeler.cfg.samples
    n = 0
    with atomic.replacing(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for req in requests:
            for i in range(k):
                line = {"key": batch_key(req.segment_id, i, k), "request": labeler.request_json(req, i)}
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
                n += 1
    return n


def read_results(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """key -> result line. Unparseable lines are skipped (their requests end as batch_missing)."""
    out: dict[str, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict) and "key" in obj:
                out[str(obj["key"])] = obj
    return out


def _error_reason(err: Any) -> LabelerError:
    code = int(err.get("code", 0) or 0) if isinstance(err, dict) else 0
    msg = f"batch error {code}: {err.get('message', '') if isinstance(err, dict) else err}"
    if code == 429:
        return LabelerError(RATE_LIMITED, msg)
    if code >= 500:
        return LabelerError(SERVER_ERROR, msg)
    if code in (401, 403):
        return LabelerError(AUTH_ERROR, msg)
    return LabelerError(BAD_REQUEST, msg)


def _sample(line: Optional[dict[str, Any]], labeler, discount: float, stats: RunCost, duration: float = 0.0):
    """One result line -> (SampleLabel or None, usage, usd, reason, message, model)."""
    from google.genai import types

    from .gemini import answer_from_response

    if line is None:
        return None, Usage(), 0.0, BATCH_MISSING, "no result line for this request in the batch results", ""
    if "error" in line or "response" not in line:
        e = _error_reason(line.get("error", "no response"))
        stats.add_attempt(e.reason.removeprefix("labeler_"))
        return None, Usage(), 0.0, e.reason, e.message, ""
    try:
        resp = types.GenerateContentResponse.model_validate(line["response"])
    except Exception as e:  # noqa: BLE001
        stats.add_attempt("invalid_output")
        return None, Usage(), 0.0, INVALID_OUTPUT, f"unreadable response: {truncate(str(e), 300)}", ""
    try:
        answer = answer_from_response(resp, labeler.cfg.model, labeler.cfg.max_output_tokens)
    except LabelerError as e:
        usage = e.usage or Usage()
        usd = cost_usd(usage, labeler.cfg.price(), discount)
        stats.add_attempt(e.reason.removeprefix("labeler_"), usage, usd)
        return None, usage, usd, e.reason, e.message, ""
    usd = cost_usd(answer.usage, labeler.cfg.price(), discount)
    try:
        label: SampleLabel = labeler.schema.parse(answer.text, duration=duration)
    except InvalidOutput as e:
        stats.add_attempt("invalid_output", answer.usage, usd)
        return None, answer.usage, usd, INVALID_OUTPUT, f"{e}; raw answer: {truncate(answer.text)}", answer.model
    stats.add_attempt("ok", answer.usage, usd)
    return label, answer.usage, usd, None, "", answer.model


def ingest_results(
    path: str | os.PathLike,
    labeler,
    requests: Iterable[LabelRequest],
    stats: Optional[RunCost] = None,
) -> list[LabelResult]:
    """Validate and price the batch results of `requests` (one LabelResult per request, in order)."""
    cfg = labeler.cfg
    stats = stats if stats is not None else RunCost(model=cfg.model)
    lines = read_results(path)
    k = cfg.samples
    out: list[LabelResult] = []
    for req in requests:
        labels, models = [], []
        usage, usd = Usage(), 0.0
        first_fail: Optional[tuple[str, str]] = None
        for i in range(k):
            label, u, c, reason, message, model = _sample(lines.get(batch_key(req.segment_id, i, k)), labeler,
                                                          cfg.batch_discount, stats, req.duration)
            usage, usd = usage + u, usd + c
            if label is not None:
                labels.append(label)
                models.append(model)
            elif first_fail is None:
                first_fail = (reason or BATCH_MISSING, message)
        if labels:
            ann = make_annotation(labels, labeler.schema.names, usage=usage, usd=usd,
                                  model=models[0] or cfg.model, prompt_version=cfg.prompt_version)
            res = LabelResult(req.segment_id, annotation=ann, attempts=k, cost_usd=usd)
        else:
            assert first_fail is not None
            res = LabelResult(req.segment_id, reason=first_fail[0], message=first_fail[1], attempts=k, cost_usd=usd)
        stats.add_segment(res.ok, req.duration, res.reason)
        out.append(res)
    return out

