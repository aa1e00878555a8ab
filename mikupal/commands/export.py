"""`mikupal export input=OUT format=hf|lhotse|webdataset|list output=DIR [filters]`: a finished output
dir in a training toolkit's format (`dataset/export.py` has the filters, the split and the writers).
Prints the format, the output and the segments per split as one JSON line."""

from __future__ import annotations

import json
from typing import Sequence

from ..config import parse_overrides
from ..dataset.export import ExportArgs, export


def export_command(args: Sequence[str]) -> int:
    summary = export(parse_overrides(args, ExportArgs))
    print(json.dumps({k: summary[k] for k in ("format", "output")}
                     | {"segments": {n: s["segments"] for n, s in summary["splits"].items()}}))
    return 0
