"""The `mikupal` command: dispatch to `mikupal/commands/`, one line per user error (exit 2), never a traceback."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Callable

from .errors import UserError

USAGE = """usage: mikupal COMMAND [key=value ...]      mikupal COMMAND --help: its keys, defaults and an example

commands:
  run         input=PATH output=DIR [overrides]   video(s) -> emotional speech dataset (re-run to resume)
  label       input=DIR [labeler=...] [--relabel]  label what an output still needs
  export      input=DIR format=hf|parler|lhotse|webdataset|list output=DIR [filters]   the dataset for a toolkit
  report      input=DIR                           rebuild report.json and report.html
  plan        [overrides] [--cpus N --gpus N]   where each stage would run (workers, CPUs, GPUs, batch, provider), then exit
  models      [models_dir=DIR] [overrides]        the model files a run needs: present, missing or broken
  evaluate    predictions=... gold=... | dataset=meld ...   accuracy against a benchmark's labels
  agreement   runs=[A,B,...]                      how far repeated labeling runs agree
  emotion-map input=DIR                           t-SNE emotion map and label distribution plots
  audio       FILE [overrides]                    the audio front end on one file, one JSON line per segment (debugging)

  mikupal --version

example (offline, CPU, no labeler):
  mikupal run input=examples/ output=out/ profile=cpu separation=none asr.model=tiny.en labeler=none
"""


#: command name -> its module under mikupal/commands/, holding `<module>_command(args) -> exit code` and `HELP`
COMMANDS = {"run": "run", "label": "label", "export": "export", "report": "report", "models": "models",
            "evaluate": "evaluate", "agreement": "agreement", "emotion-map": "emotion_map", "audio": "audio_frontend",
            "plan": "plan"}


def _module(name: str):
    """The command's module, imported only when it is chosen (`mikupal --help` stays fast)."""
    return importlib.import_module(f"{__package__}.commands.{COMMANDS[name]}")


def command(name: str) -> Callable[[list[str]], int]:
    return getattr(_module(name), f"{COMMANDS[name]}_command")


def command_help(name: str) -> str:
    from .commands.help import render

    return render(_module(name).HELP)


def version() -> str:
    from . import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["--version"], ["-V"]):
        print(f"mikupal {version()}")
        return 0
    if argv[:1] == ["help"] and len(argv) > 1 and argv[1] in COMMANDS:
        argv = [argv[1], "--help"]
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if argv else 2
    cmd, args = argv[0], argv[1:]
    if cmd not in COMMANDS:
        import difflib

        near = difflib.get_close_matches(cmd, list(COMMANDS), n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        print(f"mikupal: unknown command '{cmd}'{hint} (one of: {', '.join(COMMANDS)}; see mikupal --help)", file=sys.stderr)
        return 2
    if any(a in ("-h", "--help") for a in args):
        print(command_help(cmd), end="")
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
