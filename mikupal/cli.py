"""The `mikupal` command: dispatch to `mikupal/commands/`, one line per user error (exit 2), never a traceback."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Callable

from .errors import UserError

USAGE = """usage: mikupal COMMAND [key=value ...]

commands:
  run        input=PATH output=DIR [overrides]   video(s) -> emotional speech dataset
             (-m/--multirun: sweep comma-separated values, e.g. -m asr.resources.workers=1,2)
             (--dry-run: show models present/missing and the stage plan, then stop)
  label      input=DIR [labeler=...] [--relabel]  label what an output needs: unlabeled and labeler-rejected
             segments (resumable); --relabel: all again, into labels/<model>__<prompt>/
  evaluate   predictions=PATH gold=PATH pred_column=NAME gold_column=NAME id_columns=[A,B] output=DIR
             or: dataset=meld split=test meld_dir=DIR clips=DIR [labeler=...] output=DIR (label, then score)
  agreement  runs=[A,B,...] id_columns=[...] pred_column=NAME output=DIR
  report     map=DIR [output=DIR]                emotion map (t-SNE) and label distribution plots
  export     input=OUT format=hf|lhotse|webdataset|list output=DIR [min_dnsmos=3 emotions=[..] speakers=[..]
             languages=[..] test_fraction=0.1 seed=0 shard_size=1000]   the dataset in a training toolkit's format
  plan       [overrides] [--cpus N --gpus N]     where each stage would run (workers, CPUs, GPUs, batch, provider)
             on the cluster the run would join, then exit (also: mikupal run ... --plan)
  models     [models_dir=DIR] [overrides]        which model files are present, which are missing
             (--labeler: the model ids the configured labeler service serves)

configuration: conf/ (groups: separation vad asr faces asd labeler engine profile), e.g.
  mikupal run input=clips/ output=out/ profile=cpu separation=none asr.model=tiny.en labeler=none
"""


#: each command's module under mikupal/commands/, holding `<name>_command(args) -> exit code`
COMMANDS = ("run", "label", "evaluate", "agreement", "report", "models", "export", "plan")


def command(name: str) -> Callable[[list[str]], int]:
    """The command's function, imported only when it is chosen (`mikupal --help` stays fast)."""
    module = importlib.import_module(f"{__package__}.commands.{name}")
    return getattr(module, f"{name}_command")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if argv else 2
    cmd, args = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"mikupal: unknown command '{cmd}' (one of: {', '.join(COMMANDS)}; see mikupal --help)", file=sys.stderr)
        return 2
    if any(a in ("-h", "--help") for a in args):
        print(USAGE, end="")
        return 0
    logging.basicConfig(level=os.environ.get("MIKUPAL_LOG_LEVEL", "WARNING"), format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(command(cmd)(args) or 0)
    except UserError as e:
        print(f"mikupal {cmd}: {e}", file=sys.stderr)
        return int(getattr(e, "exit_code", 2))  # 2, or 128 + signal for a run stopped by SIGTERM/SIGINT
    except KeyboardInterrupt:
        print(f"mikupal {cmd}: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
