"""The request policy shared by every backend: bounded concurrency, RPM/TPM limits, retries with
exponential backoff and jitter (honouring the server's retry hints), a per-request timeout,
answer validation with re-asks, self-consistency samples and a hard budget.

Every segment handed to `LabelPool.label` ends as exactly one `LabelResult`: an annotation, or a
stable reject reason with a message. Retries are bounded per sample:
`1 + max_retries` exchanges for transient faults (429, 5xx, timeouts, connection errors) plus
`invalid_retries` re-asks for answers that fail validation. The SDKs' own retries are off, so this
is the only retry policy.

Budget (`labeler.max_usd`) and rate limits (`requests_per_minute`, `tokens_per_minute`) are the
run's, not the pool's: `budget.RunLimits`, shared by every label worker of the run. Before each
exchange the pool reserves a pessimistic cost (estimated input tokens + `max_output_tokens` at
output price) and settles the actual cost afterwards; once no request fits the budget any more,
every remaining segment is rejected with `budget_exhausted`, and none is sent.

A run-level failure (`base.RUN_LEVEL`: a rejected key, a retired model, a used-up daily quota)
halts the run's limits: no worker sends another request, and every remaining segment carries that
reason, which stops the run (`engine.collector`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterable, Optional

from ..config import LabelerConfig
from ..records import EmotionAnnotation, EmotionIntensity, NonverbalEvent
from .base import (
    BUDGET_EXHAUSTED,
    INTERNAL_ERROR,
    INVALID_OUTPUT,
    MISSING_MEDIA,
    TIMEOUT,
    Answer,
    LabelerError,
    LabelRequest,
    LabelResult,
    Labeler,
    Usage,
    truncate,
)
from .budget import LimitsClient
from .pricing import RunCost, add_usd, cost_usd
from .schema import InvalidOutput, SampleLabel, aggregate

log = logging.getLogger("mikupal.labelers")

Sleep = Callable[[float], Awaitable[None]]


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: uniform in [d/2, d], d = min(cap, base * 2**attempt)."""
    d = min(cap, base * (2**attempt))
    return rng.uniform(d / 2, d)


@dataclass
class _Sample:
    label: Optional[SampleLabel] = None
    reason: Optional[str] = None
    message: str = ""
    usage: Usage = field(default_factory=Usage)
    usd: Optional[float] = 0.0  # None: no price known
    attempts: int = 0
    model: str = ""


@dataclass
class _Tries:
    """What is left of one sample's retries: transient faults, re-asks for invalid answers."""

    transient: int
    invalid: int
    retry: int = 0  # retries made so far (the backoff's exponent)


def make_annotation(
    labels: list[SampleLabel], names: list[str], *, usage: Usage, usd: float, model: str, prompt_version: str
) -> EmotionAnnotation:
    """The segment's annotation from its validated samples (see `schema.aggregate`)."""
    mean, chosen, agreement = aggregate(labels, names)
    return EmotionAnnotation(
        emotions=[EmotionIntensity(name=n, intensity=round(v, 6)) for n, v in mean.items()],
        primary_emotion=chosen.primary,
        rationale=chosen.rationale,
        face_analysis=chosen.face_analysis,
        voice_analysis=chosen.voice_analysis,
        text_analysis=chosen.text_analysis,
        labeler_model=model,
        prompt_version=prompt_version,
        input_tokens=usage.input_tokens,
        output_tokens=usage.billed_output_tokens,
        input_tokens_by_modality=[
            EmotionIntensity(name=m, intensity=float(t)) for m, t in sorted(usage.input_by_modality.items())
        ],
        cost_usd=usd,
        samples=len(labels),
        agreement=agreement,
        nonverbal_events=[NonverbalEvent(event=e, start=a, end=b) for e, a, b in chosen.nonverbal_events],
        perceived_gender=chosen.gender,
        perceived_age=chosen.age,
        accent=chosen.accent,
        caption=chosen.caption,
    )


def _outcome(reason: str) -> str:
    return reason.removeprefix("labeler_")


class LabelPool:
    """Labels segments through one backend under the config's policy. Use from one event loop."""

    def __init__(
        self,
        labeler: Labeler,
        cfg: Optional[LabelerConfig] = None,
        *,
        stats: Optional[RunCost] = None,
        rng: Optional[random.Random] = None,
        sleep: Sleep = asyncio.sleep,
        limits: Optional[LimitsClient] = None,
    ):
        self.labeler = labeler
        self.cfg = cfg or labeler.cfg
        self.price = self.cfg.price()
        self.stats = stats or RunCost(model=self.cfg.model)
        self.limits = limits or LimitsClient.private(self.cfg)
        self._sem = asyncio.Semaphore(self.cfg.requests_in_flight)
        self._rng = rng or random.Random()
        self._sleep = sleep  # backoff waits (tests pass a recorder)
        self._fatal: Optional[LabelerError] = None
        #: the first exchange goes alone: a refusal that every request would meet (a bad key, a
        #: modality the model does not take) stops the run before `requests_in_flight` more go out
        self._opened = asyncio.Event()
        self._probing = False
        self._secrets = [s for s in labeler.secrets if s]
        self.in_flight = 0
        self.max_in_flight = 0
        if self.cfg.samples > 1 and self.cfg.temperature == 0:
            log.warning("labeler.samples=%d at temperature 0: the samples differ only by their seed; "
                        "raise labeler.temperature for a meaningful agreement score", self.cfg.samples)

    # ------------------------------------------------------------ helpers

    def redact(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return text

    # ------------------------------------------------------------ public

    async def label_many(
        self, requests: Iterable[LabelRequest], on_result: Optional[Callable[[LabelResult], None]] = None
    ) -> list[LabelResult]:
        """Label concurrently (at most `requests_in_flight` at once); results in input order."""

        async def one(req: LabelRequest) -> LabelResult:
            res = await self.label(req)
            if on_result is not None:
                on_result(res)
            return res

        return list(await asyncio.gather(*(one(r) for r in requests)))

    async def label(self, request: LabelRequest) -> LabelResult:
        """One segment: k samples, each retried under the policy; never raises."""
        t0 = time.perf_counter()
        try:
            result = await self._label(request)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a bug on one segment must not lose it
            log.exception("labeling %s failed unexpectedly", request.segment_id)
            result = LabelResult(request.segment_id, reason=INTERNAL_ERROR,
                                 message=self.redact(f"{type(e).__name__}: {e}"))
        self.stats.add_segment(result.ok, request.duration, result.reason)
        result.seconds = time.perf_counter() - t0
        return result

    async def _label(self, request: LabelRequest) -> LabelResult:
        media = request.media_path()
        if request.mode != "text" and (media is None or not media.is_file()):
            what = "clip" if request.mode == "video" else "audio"
            return LabelResult(request.segment_id, reason=MISSING_MEDIA,
                               message=f"{request.mode} mode needs the {what} file, not found: {media}")
        try:
            samples = await asyncio.gather(*(self._sample(request, i) for i in range(self.cfg.samples)))
        finally:
            try:
                await self.labeler.release(request)
            except Exception as e:  # noqa: BLE001 - cleanup must not turn a label into a reject
                log.warning("could not release server resources of %s: %s", request.segment_id, self.redact(str(e)))
        usage = Usage()
        for s in samples:
            usage = usage + s.usage
        usd: Optional[float] = 0.0
        for s in samples:
            usd = add_usd(usd, s.usd)
        attempts = sum(s.attempts for s in samples)
        good = [s for s in samples if s.label is not None]
        if not good:
            first = samples[0]
            return LabelResult(request.segment_id, reason=first.reason, message=first.message,
                               attempts=attempts, cost_usd=usd)
        ann = make_annotation(
            [s.label for s in good],  # type: ignore[misc]
            self.labeler.schema.names,
            usage=usage,
            usd=usd,
            model=good[0].model or self.cfg.model,
            prompt_version=self.cfg.prompt_version,
        )
        return LabelResult(request.segment_id, annotation=ann, attempts=attempts, cost_usd=usd)

    async def _sample(self, request: LabelRequest, index: int) -> _Sample:
        """One self-consistency sample: exchanges until a valid answer, or a reason to stop."""
        out = _Sample()
        tries = _Tries(transient=self.cfg.max_retries, invalid=self.cfg.invalid_retries)
        est_in = self.labeler.estimate_input(request)
        est_tokens = sum(est_in.values())
        est_usd = cost_usd(Usage(dict(est_in), self.cfg.max_output_tokens, 0), self.price)
        while True:
            got = await self._attempt(request, index, out, est_usd, est_tokens)
            if got is None:  # stopped before sending: out says why
                return out
            answer, error, actual_usd = got
            if answer is not None:
                if self._accept(request, out, answer, actual_usd, tries):
                    return out
                continue
            assert error is not None
            message = await self._note_error(request, error, actual_usd)
            if error.reason == INVALID_OUTPUT and tries.invalid > 0:
                tries.invalid -= 1
                continue
            delay = await self._retry_delay(request, out, error, message, tries)
            if delay is None:  # gave up: out says why
                return out
            await self._sleep(delay)

    async def _attempt(self, request: LabelRequest, index: int, out: _Sample, est_usd: Optional[float],
                       est_tokens: int) -> Optional[tuple[Optional[Answer], Optional[LabelerError], Optional[float]]]:
        """One exchange once a concurrency slot and the run's limits allow it; None (and the reason
        in `out`) when none may be sent: a fatal error, a halted run, the budget spent."""
        first = not self._opened.is_set() and not self._probing
        if first:
            self._probing = True
        elif not self._opened.is_set():
            await self._opened.wait()
        try:
            return await self._attempt_in_slot(request, index, out, est_usd, est_tokens)
        finally:
            if first:
                self._opened.set()

    async def _attempt_in_slot(self, request: LabelRequest, index: int, out: _Sample, est_usd: Optional[float],
                               est_tokens: int) -> Optional[tuple[Optional[Answer], Optional[LabelerError], Optional[float]]]:
        async with self._sem:
            if self._fatal is not None:  # checked once a slot is ours: no request after a fatal error
                out.reason, out.message = self._fatal.reason, self._fatal.message
                return None
            grant = await self.limits.acquire(est_usd, est_tokens)
            if grant.status == "halted":  # another worker met a run-level failure
                out.reason, out.message = grant.reason, grant.message
                return None
            if grant.status == "exhausted":
                out.reason = BUDGET_EXHAUSTED
                out.message = f"{grant.message}; no request sent for this segment"
                return None
            return await self._exchange(request, index, out, grant.ticket, est_tokens)

    def _accept(self, request: LabelRequest, out: _Sample, answer: Answer, actual_usd: Optional[float],
                tries: "_Tries") -> bool:
        """Validate an answer into `out.label`; False: invalid, ask again; True: done (labeled, or
        invalid once too often: `out` says why)."""
        out.model = answer.model
        try:
            out.label = self.labeler.schema.parse(answer.text, duration=request.duration)
            self.stats.add_attempt("ok", answer.usage, actual_usd)
            return True
        except InvalidOutput as e:
            self.stats.add_attempt(_outcome(INVALID_OUTPUT), answer.usage, actual_usd)
            if tries.invalid > 0:
                tries.invalid -= 1
                log.info("%s: invalid answer (%s), asking again", request.segment_id, e)
                return False
            out.reason = INVALID_OUTPUT
            out.message = self.redact(
                f"{e} after {self.cfg.invalid_retries + 1} answers; raw answer: {truncate(answer.text)}"
            )
            return True

    async def _note_error(self, request: LabelRequest, error: LabelerError, actual_usd: Optional[float]) -> str:
        """Count a failed exchange; a fatal one halts every worker of the run. The redacted message."""
        self.stats.add_attempt(_outcome(error.reason), error.usage, actual_usd)
        message = self.redact(error.message)
        if error.fatal:
            self._fatal = LabelerError(error.reason, message)
            await self.limits.halt(error.reason, message)
            log.error("%s: %s; stopping all requests", request.segment_id, message)
        return message

    async def _retry_delay(self, request: LabelRequest, out: _Sample, error: LabelerError, message: str,
                           tries: "_Tries") -> Optional[float]:
        """Seconds to wait before retrying a failed exchange (the server's hint, else backoff), or
        None when it is not retried (`out` then says why)."""
        cfg = self.cfg
        if not error.retryable or error.fatal:
            out.reason, out.message = error.reason, message
            return None
        if tries.transient <= 0:
            out.reason = error.reason
            out.message = f"{message} (gave up after {cfg.max_retries + 1} attempts)"
            return None
        hint = error.retry_after
        if hint is not None and hint > cfg.backoff_max_s:
            out.reason = error.reason
            out.message = f"{message} (server asks to retry in {hint:g}s > labeler.backoff_max_s)"
            return None
        if hint is not None:
            delay = hint * self._rng.uniform(1.0, 1.2)
            await self.limits.pause(hint)
        else:
            delay = backoff_delay(tries.retry, cfg.backoff_base_s, cfg.backoff_max_s, self._rng)
        tries.transient -= 1
        tries.retry += 1
        log.info("%s: %s, retry %d/%d in %.2fs", request.segment_id, error.reason, tries.retry, cfg.max_retries, delay)
        return delay

    async def _exchange(self, request: LabelRequest, index: int, out: _Sample, ticket: int, est_tokens: int
                        ) -> tuple[Optional[Answer], Optional[LabelerError], Optional[float]]:
        """One HTTP exchange under a granted reservation, settled with what it really cost."""
        answer: Optional[Answer] = None
        error: Optional[LabelerError] = None
        actual_usd: Optional[float] = 0.0
        used_tokens: Optional[int] = None
        try:
            out.attempts += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                answer = await asyncio.wait_for(self.labeler.generate(request, index), self.cfg.timeout_s)
            except asyncio.TimeoutError:
                error = LabelerError(TIMEOUT, f"no answer within labeler.timeout_s={self.cfg.timeout_s}s",
                                     retryable=True)
            except LabelerError as e:
                error = e
            finally:
                self.in_flight -= 1
            used = answer.usage if answer is not None else (error.usage if error is not None else None)
            if used is not None:
                actual_usd = cost_usd(used, self.price)
                out.usage = out.usage + used
                out.usd = add_usd(out.usd, actual_usd)
                used_tokens = used.input_tokens
        finally:
            await self.limits.settle(ticket, actual_usd, used_tokens)
        return answer, error, actual_usd
