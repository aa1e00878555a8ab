"""Where the packaged configuration lives, for source checkouts and installed wheels alike."""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def conf_dir() -> Path:
    """The Hydra config dir: $MIKUPAL_CONF_DIR, the wheel's bundled copy, or the checkout's conf/."""
    env = os.environ.get("MIKUPAL_CONF_DIR")
    if env:
        return Path(env).expanduser().resolve()
    bundled = _PKG / "conf"
    if bundled.is_dir():
        return bundled
    return _PKG.parent / "conf"


def prompts_dir() -> Path:
    return _PKG / "labelers" / "prompts"
