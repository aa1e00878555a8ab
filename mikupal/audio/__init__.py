"""Audio front end: vocal separation, VAD, transcription with word timestamps, utterance cutting.

Each piece works on plain arrays/files and typed records, and runs alone for debugging:
`mikupal audio FILE [key=value ...]` (commands/audio_frontend.py) runs probe -> separate -> vad -> asr on one file.
"""

from .segmentation import cut_utterances
from .separation import VocalSeparator
from .transcribe import RegionTranscript, Transcriber, WhisperSegment
from .vad import detect, snr_db, speech_regions

__all__ = [
    "VocalSeparator",
    "speech_regions",
    "detect",
    "snr_db",
    "Transcriber",
    "RegionTranscript",
    "WhisperSegment",
    "cut_utterances",
]
