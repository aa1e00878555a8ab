"""Mixed-emotion intensities out of a table, whatever shape they were stored in:

- an `emotions` column of list<struct<name, intensity>> (the `segments/` contract), a dict
  name -> intensity, or a JSON string of either (CSV exports);
- one `emotion_<name>` column per category.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import numpy as np
import pandas as pd

DEFAULT_COLUMN = "emotions"
PREFIX = "emotion_"
_NOT_CATEGORIES = {"agreement"}  # emotion_agreement is a score of the segment, not a category


def _cell(value: Any) -> dict[str, float]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return {}
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return {}
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"intensities are not JSON: {value[:80]!r}") from None
    if isinstance(value, dict):
        if "name" in value and "intensity" in value:
            return {str(value["name"]): float(value["intensity"])}
        return {str(k): float(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple, np.ndarray)):
        out: dict[str, float] = {}
        for entry in value:
            if isinstance(entry, dict):
                out[str(entry["name"])] = float(entry["intensity"])
            else:
                name, intensity = entry
                out[str(name)] = float(intensity)
        return out
    raise ValueError(f"cannot read intensities from a {type(value).__name__}")


def intensity_frame(df: pd.DataFrame, column: Optional[str] = None) -> Optional[pd.DataFrame]:
    """Rows of `df` x categories (first-seen order), 0.0 where a category is absent; None if `df` has none."""
    if column is None and DEFAULT_COLUMN in df.columns:
        column = DEFAULT_COLUMN
    if column is not None:
        if column not in df.columns:
            raise ValueError(f"no intensity column {column!r} (has: {list(df.columns)})")
        dicts = [_cell(v) for v in df[column].tolist()]
        names: dict[str, None] = {}
        for d in dicts:
            names.update(dict.fromkeys(d))
        if not names:
            return None
        matrix = np.array([[d.get(n, 0.0) for n in names] for d in dicts], dtype=float).reshape(len(dicts), len(names))
        return pd.DataFrame(matrix, index=df.index, columns=list(names))
    wide = [
        c
        for c in df.columns
        if isinstance(c, str)
        and c.startswith(PREFIX)
        and c[len(PREFIX) :] not in _NOT_CATEGORIES
        and pd.api.types.is_numeric_dtype(df[c])
    ]
    if not wide:
        return None
    out = df[wide].astype(float).fillna(0.0)
    out.columns = [c[len(PREFIX) :] for c in wide]
    return out
