"""`mikupal report input=DIR`: rebuild report.json and report.html of an output dir from what its
commits wrote (`report/`), e.g. after `mikupal label` or an upgrade that changed the page. The run's
own figures (wall time, speed, stage times, config) are kept from the report it replaces. The
emotion map is `mikupal emotion-map`."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..config import parse_overrides
from ..errors import UserError
from .analysis import Args
from .help import CommandHelp


class ReportArgs(Args):
    input: str  # a mikupal output dir


HELP = CommandHelp(
    usage="mikupal report input=DIR",
    what="""Rebuild DIR/report.json and DIR/report.html from the committed files (the run's wall time,
speed and config are kept from the previous report). Takes the output's lock, like a run.""",
    keys=[("input", "a mikupal output dir")],
    model=ReportArgs,
    examples=["mikupal report input=out/"],
)


def report_command(overrides: Sequence[str]) -> int:
    if any(o.split("=", 1)[0].lstrip("+") == "map" for o in overrides):
        raise UserError("the emotion map is its own command now: mikupal emotion-map input=DIR")
    args = parse_overrides(overrides, ReportArgs)
    root = Path(args.input).expanduser()
    from ..committed import CommittedOutput
    from ..engine.lock import OutputLock
    from ..report.summary import rebuild_report

    out = CommittedOutput(root)
    if not root.is_dir():
        raise UserError(f"input is not a folder: {root}")
    if not out.summaries():
        raise UserError(f"{root} holds no committed video (is it a mikupal output dir? run `mikupal run` first)")
    with OutputLock(root, "report"):
        report = rebuild_report(out)
    n = report["videos"]
    print(f"rebuilt {out.paths.report_html} from {n} committed video{'s' * (n != 1)}")
    return 0
