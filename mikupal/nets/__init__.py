"""Network definitions for the pretrained face / active-speaker models we use.

Every network here is our own implementation; only the *parameter layout*
follows the published checkpoints so that their state_dicts load with
``strict=True`` after :func:`remap_state_dict`.

ASD networks share one calling convention::

    logits = net(mfcc, faces)   # mfcc [B, 4T, 13] float, faces [B, T, 112, 112] float 0..255
                                # -> logits [B, T, 2]; the speaking score is logits[..., 1]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

__all__ = ["remap_state_dict", "load_checkpoint"]


def remap_state_dict(
    state: Mapping[str, torch.Tensor],
    rename: Mapping[str, str],
    drop: Iterable[str] = (),
) -> dict[str, torch.Tensor]:
    """Rename key prefixes and drop unused ones.

    ``rename`` maps an old prefix to a new prefix (first match wins); keys
    starting with a prefix in ``drop`` are removed; other keys are kept as is.
    """
    drop = tuple(drop)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if drop and key.startswith(drop):
            continue
        for old, new in rename.items():
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


def load_checkpoint(path, map_location="cpu") -> dict[str, torch.Tensor]:
    """Load a plain tensor state_dict (unwrapping a ``{'state_dict': ...}`` holder)."""
    state = torch.load(path, map_location=map_location, weights_only=True)
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    return dict(state)
