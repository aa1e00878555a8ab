"""Every path inside a mikupal output dir, named once.

    segments/<key>.parquet         kept utterances (DatasetSegment rows)
    rejects/<key>.parquet          dropped videos and segments, with stage, reason and span
    speakers/<key>.parquet         the video's speakers; speakers/<key>/<speaker_id>.jpg their faces
    global_speakers.parquet        per-video speakers linked across videos (end of each run)
    global_speakers/               the registry behind it: registry.json, voices.<gen>.parquet, index.<gen>.usearch
    audio/<video>/<segment>.flac   the utterance's vocals;  clips/<video>/<segment>.mp4 its speaker clip
    debug/<video>/<segment>.mp4    with dataset.debug_render
    labeler/                       cost.json, pending/<key>.parquet (label rejects, relabeled later)
    labels/<model>__<prompt>/      `mikupal label --relabel` results
    logs/                          each run's library log
    report.json, report.html       rebuilt from the files above after each run
    .state/done/<key>.json         commit markers (written last)
    .work/                         scratch media, removed after each commit
    .work/activity/<stage>.<pid>   what each worker is on now (the terminal's stage activity)
    .lock, .mikupal-output         the one-writer lock and the marker that keeps the folder out of inputs
"""

from __future__ import annotations

from pathlib import Path

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
GLOBAL_REGISTRY = "global_speakers"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
LOCK = ".lock"
MARKER = ".mikupal-output"

#: the folders a run writes: never read back as input
WRITTEN_DIRS = frozenset({SEGMENTS, REJECTS, SPEAKERS, GLOBAL_REGISTRY, AUDIO, CLIPS, DEBUG, LABELER, LABELS, LOGS, STATE, WORK})
#: the files a run writes at the output's top level
WRITTEN_FILES = frozenset({GLOBAL_SPEAKERS, REPORT_JSON, REPORT_HTML, LOCK, MARKER})

#: where `mikupal label` keeps segments whose labeling failed, to label again later
PENDING = f"{LABELER}/pending"
DONE = f"{STATE}/done"
ACTIVITY = f"{WORK}/activity"


class OutputPaths:
    """The paths of one output dir. `key` is a video's commit key (its content id)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    # per video
    def segments(self, key: str) -> Path:
        return self.root / SEGMENTS / f"{key}.parquet"

    def rejects(self, key: str) -> Path:
        return self.root / REJECTS / f"{key}.parquet"

    def speakers(self, key: str) -> Path:
        return self.root / SPEAKERS / f"{key}.parquet"

    def face_picture(self, key: str, speaker_id: str) -> str:
        """Relative to the root: it is stored in the speakers table."""
        return f"{SPEAKERS}/{key}/{speaker_id}.jpg"

    def pending(self, key: str) -> Path:
        return self.root / PENDING / f"{key}.parquet"

    def marker(self, key: str) -> Path:
        return self.root / DONE / f"{key}.json"

    # per segment (relative to the root: they are stored in the rows)
    @staticmethod
    def segment_media(video_id: str, segment_id: str) -> dict[str, str]:
        return {"audio": f"{AUDIO}/{video_id}/{segment_id}.flac", "clip": f"{CLIPS}/{video_id}/{segment_id}.mp4",
                "debug": f"{DEBUG}/{video_id}/{segment_id}.mp4"}

    # per run
    def dir(self, name: str) -> Path:
        """One of the folders above (SEGMENTS, REJECTS, PENDING, DONE ...)."""
        return self.root / name

    @property
    def cost(self) -> Path:
        return self.root / LABELER / "cost.json"

    @property
    def label_rejects(self) -> Path:
        """`mikupal label`: the segments still unlabeled after it, with their reasons."""
        return self.root / LABELER / "rejects.parquet"

    @property
    def batch_requests(self) -> Path:
        return self.root / LABELER / "batch_requests.jsonl"

    @property
    def batch_results(self) -> Path:
        return self.root / LABELER / "batch_results.jsonl"

    def labels(self, tag: str) -> Path:
        """`--relabel` output for one `<model>__<prompt>` tag."""
        return self.root / LABELS / tag

    @property
    def skipped_files(self) -> Path:
        return self.root / STATE / "skipped_files.json"

    def log(self, name: str) -> Path:
        return self.root / LOGS / name

    @property
    def work(self) -> Path:
        return self.root / WORK

    @property
    def activity(self) -> Path:
        """One small JSON file per stage worker: the item it is on (`stages/activity.py`)."""
        return self.root / ACTIVITY

    @property
    def global_speakers(self) -> Path:
        return self.root / GLOBAL_SPEAKERS

    @property
    def global_registry(self) -> Path:
        """The registry's manifest: which generation of its files is current, the next free ids."""
        return self.root / GLOBAL_REGISTRY / "registry.json"

    def global_voices(self, generation: int) -> Path:
        return self.root / GLOBAL_REGISTRY / f"voices.{generation}.parquet"

    def global_index(self, generation: int) -> Path:
        return self.root / GLOBAL_REGISTRY / f"index.{generation}.usearch"

    @property
    def report_json(self) -> Path:
        return self.root / REPORT_JSON

    @property
    def report_html(self) -> Path:
        return self.root / REPORT_HTML

    @property
    def lock(self) -> Path:
        return self.root / LOCK

    @property
    def output_marker(self) -> Path:
        return self.root / MARKER

    #: the folders whose interrupted writes (`*.tmp`) a run removes at start
    TMP_DIRS = (SEGMENTS, REJECTS, SPEAKERS, GLOBAL_REGISTRY, PENDING, DONE)
