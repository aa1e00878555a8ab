"""`mikupal export input=OUT format=hf|lhotse|webdataset|list output=DIR [filters]`: a finished output
dir in a training toolkit's format (`dataset/export.py` has the filters, the split and the writers).
Prints the format, the output and the segments per split as one JSON line."""

from __future__ import annotations

import json
from typing import Sequence

from ..config import parse_overrides
from ..dataset.export import ExportArgs, export
from .help import CommandHelp

HELP = CommandHelp(
    usage="mikupal export input=OUT format=hf|lhotse|webdataset|list output=DIR [filters]",
    what="""A finished output dir in a training toolkit's format. Filters combine with AND; with
test_fraction the split is by global speaker (no person on both sides). DIR/export.json records the
filters and, per split, the segments, seconds and speakers.""",
    keys=[("input", "a mikupal output dir"), ("format", "hf | lhotse | webdataset | list"),
          ("output", "a new folder (not a file, not the input)"),
          ("min_dnsmos", "keep DNSMOS OVRL >= this (unscored segments fail it)"),
          ("emotions", "keep these primary emotions, e.g. [joy,amusement]"),
          ("speakers", "keep these speakers (global ids G<k>, or per-video ids)"),
          ("languages", "keep these languages, e.g. [en]"),
          ("test_fraction", "share of the seconds held out, by speaker"), ("seed", "the split's seed"),
          ("shard_size", "webdataset: segments per tar shard")],
    model=ExportArgs,
    examples=["mikupal export input=out/ format=hf output=ds/ min_dnsmos=3.2 test_fraction=0.1"],
)


def export_command(args: Sequence[str]) -> int:
    summary = export(parse_overrides(args, ExportArgs))
    print(json.dumps({k: summary[k] for k in ("format", "output")}
                     | {"segments": {n: s["segments"] for n, s in summary["splits"].items()}}))
    return 0
