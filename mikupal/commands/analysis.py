"""What the analysis commands (evaluate, agreement, report) share: a strict `key=value` argument
model, one JSON object on stdout (and in `output=DIR`), and data problems as one-line user errors."""

from __future__ import annotations

import functools
import json
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..errors import UserError


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


def comma_list(v: Any) -> Any:
    """`runs=a,b` as well as `runs=[a,b]`."""
    return [x.strip() for x in v.split(",") if x.strip()] if isinstance(v, str) else v


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def emit(result: dict[str, Any], output: Optional[str], filename: str) -> None:
    """Print `result` as JSON; with `output`, also write it there as `filename`."""
    text = json.dumps(result, indent=2, default=_json_default, allow_nan=False)
    if output:
        out = Path(output).expanduser()
        out.mkdir(parents=True, exist_ok=True)
        (out / filename).write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def user_errors(fn: Callable[..., int]) -> Callable[..., int]:
    """Data problems found while running (missing file, column, bad CSV) become UserError."""

    @functools.wraps(fn)
    def wrapper(overrides: Sequence[str]) -> int:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # sklearn/statsmodels warnings must not mix into the JSON
                return fn(overrides)
        except (ValueError, FileNotFoundError) as e:
            raise UserError(str(e)) from None

    return wrapper
