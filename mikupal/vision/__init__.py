"""Everything the vision stage (`mikupal.stages.vision.VisionStage`, a thin adapter) does.

* `faces`: face detectors (YuNet, S3FD) behind one interface
* `track`: shot cuts, detection schedule, IoU tracking with gap filling and smoothing -> FaceTrack
* `crops`: 112 px grayscale face crops, the ASD models' input
* `asd`: MFCC features and one scoring interface over Light-ASD, LR-ASD and TalkNet (offset search included)
* `search`: the decoded utterance, how much of which faces ASD scores, and who speaks (`SpeakerSearch`)
* `timeline`: per-frame ASD read as turns: changes of speaker and two faces speaking at once
* `attribution`: tracks + ASD scores -> the utterance's speaker or a reject reason
* `clip`: the speaker clip, the dataset audio and the debug render
* `steps`: seconds per step, for the benchmarks
"""

from .attribution import REASONS, Attribution, attribute, attribute_with, scored_windows, speaker_boxes
from .clip import relative_paths, speaker_frames, write_speaker_clip
from .track import detection_frames, frame_look, shot_cuts, track_faces

__all__ = [
    "REASONS",
    "Attribution",
    "attribute",
    "attribute_with",
    "scored_windows",
    "speaker_boxes",
    "relative_paths",
    "speaker_frames",
    "write_speaker_clip",
    "detection_frames",
    "shot_cuts",
    "frame_look",
    "track_faces",
]
