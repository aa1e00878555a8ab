"""Cost: billed tokens per modality times the price table (USD per 1M tokens) of the config.

    usd = sum(input_tokens[m] * price[m] for m in text/image/video/audio) / 1e6
          + (output_tokens + thoughts_tokens) * price.output / 1e6          (x batch_discount in batch mode)

Per segment: `EmotionAnnotation.cost_usd` (all its samples and retried attempts).
Per run: `RunCost.usd`, every billed answer, those of rejected segments included.
Per kept hour: run USD / hours of labeled (kept) audio, i.e. what one hour of dataset cost.

A model without a price entry has unknown costs: `cost_usd` is None (never 0.0), and so are the
run's `usd` and per-hour figures; `labelers.preflight` warns and names `labeler.prices.<id>`.
Several label workers each keep a `RunCost`; `RunCost.merged` sums their `to_dict()` reports
into the one the driver writes to `labeler/cost.json`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

from .. import atomic
from ..config import Price
from .base import Usage


def add_usd(a: Optional[float], b: Optional[float]) -> Optional[float]:
    """Sum of two costs; unknown (None) when either is."""
    return None if a is None or b is None else a + b


def cost_usd(usage: Usage, price: Optional[Price], discount: float = 1.0) -> Optional[float]:
    """USD for one answer's usage (None without a price). Unknown modalities (e.g. DOCUMENT) are
    priced as text."""
    if price is None:
        return None
    total = 0.0
    for modality, tokens in usage.input_by_modality.items():
        rate = getattr(price, modality, None) if modality in ("text", "image", "video", "audio") else None
        total += tokens * (price.text if rate is None else rate)
    total += usage.billed_output_tokens * price.output
    return total / 1e6 * discount


@dataclass
class RunCost:
    """What one labeling run spent and produced; `to_dict()` is the report."""

    model: str = ""
    requests: int = 0  # HTTP exchanges sent
    outcomes: Counter = field(default_factory=Counter)  # per exchange: ok, rate_limited, invalid_output ...
    usage: Usage = field(default_factory=Usage)
    usd: float = 0.0  # of the priced answers
    priced: bool = True  # False once an answer without a price was billed: `usd` is then unknown
    segments_labeled: int = 0
    segments_rejected: Counter = field(default_factory=Counter)  # reason -> segments
    kept_seconds: float = 0.0  # media seconds of the labeled segments

    def add_attempt(self, outcome: str, usage: Optional[Usage] = None, usd: Optional[float] = 0.0) -> None:
        self.requests += 1
        self.outcomes[outcome] += 1
        if usage is not None:
            self.usage = self.usage + usage
        if usd is None:
            self.priced = False
        else:
            self.usd += usd

    def add_segment(self, ok: bool, duration: float = 0.0, reason: Optional[str] = None) -> None:
        if ok:
            self.segments_labeled += 1
            self.kept_seconds += max(0.0, duration)
        else:
            self.segments_rejected[reason or "unknown"] += 1

    @property
    def kept_hours(self) -> float:
        return self.kept_seconds / 3600.0

    @property
    def total_usd(self) -> Optional[float]:
        return self.usd if self.priced else None

    @property
    def usd_per_kept_hour(self) -> Optional[float]:
        """Run USD per hour of labeled audio; None before anything was kept, or without a price."""
        return self.usd / self.kept_hours if self.kept_seconds > 0 and self.priced else None

    @property
    def usd_per_segment(self) -> Optional[float]:
        return self.usd / self.segments_labeled if self.segments_labeled and self.priced else None

    @classmethod
    def merged(cls, reports: list[dict[str, Any]], model: str = "") -> "RunCost":
        """One RunCost from the `to_dict()` reports of several workers (their sums)."""
        out = cls(model=model)
        for d in reports:
            out.model = out.model or d.get("model", "")
            out.requests += int(d.get("requests", 0))
            out.outcomes.update(d.get("outcomes", {}))
            out.usage = out.usage + Usage(dict(d.get("input_tokens_by_modality", {})), int(d.get("output_tokens", 0)),
                                          int(d.get("thoughts_tokens", 0)))
            if d.get("usd") is None:
                out.priced = False
            else:
                out.usd += float(d["usd"])
            out.segments_labeled += int(d.get("segments_labeled", 0))
            out.segments_rejected.update(d.get("segments_rejected", {}))
            out.kept_seconds += float(d.get("kept_seconds", 0.0))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "requests": self.requests,
            "outcomes": dict(sorted(self.outcomes.items())),
            "input_tokens_by_modality": dict(sorted(self.usage.input_by_modality.items())),
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "thoughts_tokens": self.usage.thoughts_tokens,
            "usd": round(self.usd, 8) if self.priced else None,
            "segments_labeled": self.segments_labeled,
            "segments_rejected": dict(sorted(self.segments_rejected.items())),
            "kept_seconds": round(self.kept_seconds, 3),
            "usd_per_segment": None if self.usd_per_segment is None else round(self.usd_per_segment, 8),
            "usd_per_kept_hour": None if self.usd_per_kept_hour is None else round(self.usd_per_kept_hour, 6),
        }

    def summary(self) -> str:
        per_hour = self.usd_per_kept_hour
        rejected = sum(self.segments_rejected.values())
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.segments_rejected.items()))
        return (
            f"labeled {self.segments_labeled} segments ({self.kept_seconds / 60:.1f} min), rejected {rejected}"
            + (f" ({reasons})" if reasons else "")
            + f"; {self.requests} requests, {self.usage.input_tokens} input + "
            f"{self.usage.billed_output_tokens} output tokens, "
            + (f"${self.usd:.4f}" if self.priced else "cost unknown (no price)")
            + (f", ${per_hour:.2f} per kept hour" if per_hour is not None else "")
        )

    def write_json(self, path: str | os.PathLike) -> None:
        """Atomically write the report (tmp + rename)."""
        atomic.write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
