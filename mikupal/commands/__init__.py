"""One module per `mikupal` command: its arguments, the calls that do the work, what it prints.

`commands/<name>.py` holds `<name>_command(args) -> exit code` (run, label, evaluate, agreement,
report, models, export); `cli.py` only dispatches to them. The work itself lives in the packages
below (engine/, labelers/, evaluate/, dataset/); a command raises `UserError` for what the user can
fix, which the cli prints as one line (exit 2). `audio_frontend.py` is `python -m mikupal.audio`.
"""
