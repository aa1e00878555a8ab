"""One module per `mikupal` command: its arguments, the calls that do the work, what it prints.

`commands/<module>.py` holds `<module>_command(args) -> exit code` and its `HELP` (`help.py`: the
page `mikupal COMMAND --help` prints, defaults read from where they live); `cli.COMMANDS` maps each
command name to its module (`emotion-map` -> emotion_map, `audio` -> audio_frontend), and `cli.py`
only dispatches. The work itself lives in the packages below (engine/, labelers/, evaluate/,
dataset/, report/); a command raises `UserError` for what the user can fix, which the cli prints as
one line (exit 2).
"""
