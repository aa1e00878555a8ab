"""Vision helpers of the vision stage (`mikupal.stages.vision.VisionStage`).

* `track`: shot cuts, detection schedule, IoU tracking with gap filling and smoothing -> FaceTrack
* `attribution`: tracks + ASD scores -> the utterance's speaker or a reject reason
* `clip`: the speaker clip, the dataset audio and the debug render
"""

from .attribution import REASONS, Attribution, attribute, attribute_with, scored_windows, speaker_boxes
from .clip import relative_paths, speaker_frames, write_speaker_clip
from .track import detection_frames, shot_cuts, track_faces

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
    "track_faces",
]
