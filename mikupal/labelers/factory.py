"""The backend named by the config. Apart from `base.py`, which every backend imports: a factory
there would import the backends that import it back."""

from __future__ import annotations

from typing import Optional

from ..config import LabelerConfig
from ..errors import UserError
from .base import Labeler


def make_labeler(cfg: LabelerConfig, taxonomy, api_key: Optional[str] = None) -> Labeler:
    """The backend named by `cfg.kind` (`none` has no labeler: the caller skips labeling)."""
    if cfg.kind == "gemini":
        from .gemini import GeminiLabeler

        return GeminiLabeler(cfg, taxonomy, api_key)
    if cfg.kind == "openai":
        from .openai_compat import OpenAICompatLabeler

        return OpenAICompatLabeler(cfg, taxonomy, api_key)
    raise UserError(f"labeler={cfg.kind} has no backend (labeler=none skips labeling)")
