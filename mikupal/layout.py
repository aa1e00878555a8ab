"""Every path inside a mikupal output dir, named once.

    segments/<key>.parquet         kept utterances (DatasetSegment rows)
    rejects/<key>.parquet          dropped videos and segments, with stage, reason and span
    speakers/<key>.parquet         the video's speakers; speakers/<key>/<speaker_id>.jpg their faces
    global_speakers.parquet        per-video speakers linked across videos (end of each run)
    audio/<video>/<segment>.flac   the utterance's vocals;  clips/<video>/<segment>.mp4 its speaker clip
    debug/<video>/<segment>.mp4    with dataset.debug_render
    labeler/                       cost.json, pending/<key>.parquet (label rejects, relabeled later)
    labels/<model>__<prompt>/      `mikupal label --relabel` results
    logs/                          each run's library log
    report.json, report.html       rebuilt from the files above after each run
    .state/done/<key>.json         commit markers (written last)
    .work/                         scratch media, removed after each commit
    .lock, .mikupal-output         the one-writer lock and the marker that keeps the folder out of inputs
"""

from __future__ import annotations

SEGMENTS = "segments"
REJECTS = "rejects"
SPEAKERS = "speakers"
AUDIO = "audio"
CLIPS = "clips"
DEBUG = "debug"
LABELER = "labeler"
LABELS = "labels"
LOGS = "logs"
STATE = ".state"
WORK = ".work"

GLOBAL_SPEAKERS = "global_speakers.parquet"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
LOCK = ".lock"
MARKER = ".mikupal-output"

#: the folders a run writes: never read back as input
WRITTEN_DIRS = frozenset({SEGMENTS, REJECTS, SPEAKERS, AUDIO, CLIPS, DEBUG, LABELER, LABELS, LOGS, STATE, WORK})
#: the files a run writes at the output's top level
WRITTEN_FILES = frozenset({GLOBAL_SPEAKERS, REPORT_JSON, REPORT_HTML, LOCK, MARKER})
