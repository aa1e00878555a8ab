"""`python -m mikupal.audio FILE [key=value ...]`: the audio front end on one file, for debugging.

An entry point, like `mikupal` itself: it only hands over to `commands/audio_frontend.py`, which
runs the probe, separate, vad and asr stages (the audio package itself knows no stage).
"""

import sys

from mikupal.commands.audio_frontend import main

if __name__ == "__main__":
    sys.exit(main())
