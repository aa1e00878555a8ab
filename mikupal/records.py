"""Typed records that travel between stages and land in Parquet.

Each record is a pydantic model; its Arrow schema is derived from the model's annotations
(`arrow_schema(Model)`), so a column's type is written down once and Parquet is always typed,
never pickled. Mappings such as category -> intensity are stored as list<struct<name, intensity>>
because HF `datasets` cannot load Arrow map columns.
"""

from __future__ import annotations

import types
import typing
from functools import lru_cache
from typing import Annotated, Any, Iterable, Literal, Optional, Sequence, TypeVar, Union

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

M = TypeVar("M", bound="Record")

#: a float stored as Arrow float32 (embeddings: half the bytes, all the precision they have)
Float32 = Annotated[float, "float32"]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @classmethod
    def arrow_schema(cls) -> pa.Schema:
        return arrow_schema(cls)

    @classmethod
    def to_table(cls: type[M], rows: Iterable[M]) -> pa.Table:
        schema = cls.arrow_schema()
        return pa.Table.from_pylist([r.model_dump(mode="python") for r in rows], schema=schema)

    @classmethod
    def from_table(cls: type[M], table: pa.Table) -> list[M]:
        names = set(cls.model_fields)
        return [cls.model_validate({k: v for k, v in row.items() if k in names}) for row in table.to_pylist()]


# ---------------------------------------------------------------- pydantic -> arrow

_SCALARS: dict[Any, pa.DataType] = {
    str: pa.string(),
    int: pa.int64(),
    float: pa.float64(),
    bool: pa.bool_(),
    bytes: pa.binary(),
}


def _arrow_type(annotation: Any) -> tuple[pa.DataType, bool]:
    """Map one annotation to (arrow type, nullable)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base, *meta = typing.get_args(annotation)
        return (pa.float32(), False) if "float32" in meta else _arrow_type(base)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported union {annotation!r}")
        return _arrow_type(args[0])[0], True
    if origin is typing.Literal:
        return pa.string(), False
    if origin in (list, tuple) or annotation in (list, tuple):
        args = typing.get_args(annotation)
        item = args[0] if args else str
        return pa.list_(_arrow_type(item)[0]), False
    if annotation in _SCALARS:
        return _SCALARS[annotation], False
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return pa.struct(_fields(annotation)), False
    raise TypeError(f"no Arrow type for {annotation!r}")


def _fields(model: type[BaseModel]) -> list[pa.Field]:
    hints = typing.get_type_hints(model, include_extras=True)
    out = []
    for name in model.model_fields:
        typ, nullable = _arrow_type(hints[name])
        out.append(pa.field(name, typ, nullable=nullable))
    return out


@lru_cache(maxsize=None)
def arrow_schema(model: type[BaseModel]) -> pa.Schema:
    return pa.schema(_fields(model))


# ---------------------------------------------------------------- records


class StreamInfo(Record):
    index: int
    kind: str  # "video" | "audio" | "subtitle" | "data"
    codec: Optional[str] = None
    duration: Optional[float] = None
    width: Optional[int] = None
    height: Optional[int] = None
    fps: Optional[float] = None
    sample_rate: Optional[int] = None
    channels: Optional[int] = None


class SourceVideo(Record):
    """One input file, as probed. `video_id` is a content hash, so a renamed copy is the same video."""

    video_id: str
    source: str  # the path as the user gave it
    path: str  # resolved absolute path
    size_bytes: int
    duration: float
    streams: list[StreamInfo] = Field(default_factory=list)
    has_video: bool = False
    has_audio: bool = False
    width: Optional[int] = None  # displayed size (after rotation)
    height: Optional[int] = None
    fps: Optional[float] = None
    rotation: int = 0
    format_name: Optional[str] = None


class Word(Record):
    """One ASR word in source seconds. `word` is whisper's own token text: in spaced scripts it
    carries its leading space (" hello"), in scripts written without spaces (Chinese, Japanese,
    Thai) it carries none, so `join_words` gives the right text for both."""

    word: str
    start: float
    end: float
    probability: float


def join_words(words: Sequence[Word]) -> str:
    """The text of a run of words, exactly as whisper spaced them: every segment's `text`."""
    return "".join(w.word for w in words).strip()


class SpeechRegion(Record):
    """A VAD region in source seconds, with its SNR estimate before and after separation."""

    start: float
    end: float
    snr_db_before: Optional[float] = None
    snr_db_after: Optional[float] = None


class SpeechSegment(Record):
    """One utterance candidate: transcript and word timings in source seconds."""

    segment_id: str
    video_id: str
    source: str
    start: float
    end: float
    text: str
    language: str = ""
    language_probability: float = 0.0
    words: list[Word] = Field(default_factory=list)
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0
    snr_db: Optional[float] = None


class FaceTrack(Record):
    """A face followed over consecutive 25 fps frames of one segment, with its ASD score per frame."""

    track_id: int
    frames: list[int]  # frame index within the segment at 25 fps
    boxes: list[list[float]]  # [x1, y1, x2, y2] in source pixels, one per frame
    detection_scores: list[float] = Field(default_factory=list)
    asd_scores: list[float] = Field(default_factory=list)


class FaceEnds(Record):
    """Where, when and in what shot a segment's speaking face was first and last seen: identity
    continues a face track across the pause between two utterances (`speaker/identity.py`)."""

    first_time: float  # source seconds of the first frame the track is on
    last_time: float
    first_box: list[float]  # [x1, y1, x2, y2] in source pixels
    last_box: list[float]
    first_look: list[Float32]  # coarse HSV histogram of that whole frame (`vision/track.py:frame_look`)
    last_look: list[Float32]


class VoiceWindows(Record):
    """Voice embeddings of sliding windows over one utterance, in source seconds."""

    starts: list[float] = Field(default_factory=list)
    ends: list[float] = Field(default_factory=list)
    embeddings: list[list[Float32]] = Field(default_factory=list)
    speech: list[bool] = Field(default_factory=list)  # the window is mostly voice (its embedding means something)


class VoiceSuspect(Record):
    """A word-bounded stretch of an utterance whose voice may not be the rest's (`speaker/turns.py`):
    the vision stage asks the faces, and cuts there when they confirm it (or, when they cannot
    tell, when the voice alone is `sure`)."""

    start: float  # source seconds: the first word's start
    end: float  # the last word's end
    similarity: float  # its voice against the rest of the utterance's
    doubt: float  # the threshold it fell under (its length's, raised where the words look like a turn)
    sure: bool  # below the length's sure threshold: another voice even if no face can tell
    words: int = 0


class Prosody(Record):
    """How one kept segment is said, measured on its dataset audio (`audio/prosody.py`): pitch
    (Hz, and semitones re 100 Hz), speaking rate, loudness, peak and SNR. None where the audio
    has too little of what a figure needs (no voiced frames for pitch, under 0.4 s for LUFS)."""

    f0_median_hz: Optional[float] = None
    f0_median_semitones: Optional[float] = None  # re 100 Hz
    f0_range_hz: Optional[float] = None  # 5th to 95th percentile of the voiced frames
    f0_range_semitones: Optional[float] = None
    f0_mean_hz: Optional[float] = None  # dataspeech's utterance_pitch_mean
    f0_std_hz: Optional[float] = None  # dataspeech's utterance_pitch_std
    f0_std_semitones: Optional[float] = None  # pitch variation, gender-neutral
    voiced_fraction: float = 0.0  # share of 10 ms frames with a pitch
    syllables: int = 0
    speech_seconds: float = 0.0  # union of the word intervals (pauses excluded)
    syllables_per_second: Optional[float] = None  # syllables / speech_seconds
    loudness_lufs: Optional[float] = None  # ITU-R BS.1770-4 integrated loudness
    peak_dbfs: Optional[float] = None  # sample peak
    vocals_snr_db: Optional[float] = None  # word frames over the quietest tenth of the frames


class NonverbalEvent(Record):
    """A sound that is not a word, heard in a segment: `event` from `labelers.schema.NONVERBAL_EVENTS`,
    times in seconds from the segment's start."""

    event: str
    start: float
    end: float


class EmotionIntensity(Record):
    name: str
    intensity: float


CAPTION_LABELER = "labeler"  # caption_source of a caption the labeler wrote
CAPTION_MEASURED = "measured"  # caption_source of one made from the measured bins (`audio/describe.py`)


class EmotionAnnotation(Record):
    """What the labeler said about one segment, with what it cost."""

    emotions: list[EmotionIntensity]  # one entry per category of the configured taxonomy
    primary_emotion: str
    rationale: str = ""
    face_analysis: str = ""
    voice_analysis: str = ""
    text_analysis: str = ""
    labeler_model: str = ""
    prompt_version: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    input_tokens_by_modality: list[EmotionIntensity] = Field(default_factory=list)  # name=modality, intensity=tokens
    cost_usd: Optional[float] = 0.0  # None: the model has no price (labeler.prices.<id>)
    samples: int = 1
    agreement: Optional[float] = None  # self-consistency over `samples` answers
    # how it is said (prompt v2 on, audio and video modes): None where the prompt did not ask
    nonverbal_events: list[NonverbalEvent] = Field(default_factory=list)
    perceived_gender: Optional[str] = None  # female | male | unsure
    perceived_age: Optional[str] = None  # child | teen | 20s ... 70+ | unsure
    accent: Optional[str] = None  # a few words, or "unsure"
    caption: Optional[str] = None  # one or two sentences on the delivery

    def row_columns(self) -> dict[str, Any]:
        """The `DatasetSegment` columns this annotation fills, as plain values (segments/ rows, the
        rows `mikupal label` rewrites, labels/ files). The one annotation -> row mapping."""
        return {
            "emotions": [{"name": e.name, "intensity": float(e.intensity)} for e in self.emotions],
            "primary_emotion": self.primary_emotion,
            "rationale": self.rationale,
            "face_analysis": self.face_analysis,
            "voice_analysis": self.voice_analysis,
            "text_analysis": self.text_analysis,
            "emotion_agreement": self.agreement,
            "labeler_model": self.labeler_model,
            "prompt_version": self.prompt_version,
            "input_tokens": int(self.input_tokens),
            "output_tokens": int(self.output_tokens),
            "cost_usd": None if self.cost_usd is None else float(self.cost_usd),
            "nonverbal_events": [e.model_dump() for e in self.nonverbal_events],
            "perceived_gender": self.perceived_gender,
            "perceived_age": self.perceived_age,
            "accent": self.accent,
            **({"caption": self.caption, "caption_source": CAPTION_LABELER} if self.caption else {}),
        }


class Reject(Record):
    """A dropped video or segment: where (stage) and why (stable reason code)."""

    item_id: str
    video_id: str
    source: str
    stage: str
    reason: str
    message: str = ""
    start: Optional[float] = None
    end: Optional[float] = None

    @classmethod
    def span(cls, video_id: str, source: str, stage: str, reason: str, message: str, start: float, end: float) -> "Reject":
        """A stretch [start, end) of a video that never became an utterance (id as a segment's would be)."""
        return cls(item_id=segment_id(video_id, start), video_id=video_id, source=source, stage=stage, reason=reason,
                   message=message, start=start, end=end)


class DatasetSegment(Record):
    """One row of `segments/`: the dataset contract users and later stages rely on."""

    segment_id: str
    video_id: str
    source: str
    start: float
    end: float
    duration: float
    text: str
    language: str
    language_probability: float = 0.0
    avg_logprob: Optional[float] = None  # whisper's mean token log-probability: how sure the transcript is (export filter)
    words: list[Word]
    audio_path: str  # relative to the output dir
    clip_path: str  # relative to the output dir
    sample_rate: int
    speaker_boxes: list[list[float]]  # [x1, y1, x2, y2] source pixels, one per 25 fps frame
    asd_score: float
    speaking_fraction: float = 0.0
    speaker_id: str = ""  # one person in one video: <video_id>_S<k>
    speaker_embedding: list[Float32] = Field(default_factory=list)  # unit-length voice embedding (GE2E, 256)
    snr_db: Optional[float] = None
    dnsmos_sig: Optional[float] = None  # DNSMOS P.835 (1-5) of the utterance's vocals; None = quality.kind=none
    dnsmos_bak: Optional[float] = None
    dnsmos_ovrl: Optional[float] = None
    dnsmos_p808: Optional[float] = None  # DNSMOS P.808 MOS (1-5)
    # measured on the dataset audio (`Prosody`, `audio/prosody.py`); null with prosody.kind=none
    f0_median_hz: Optional[float] = None
    f0_median_semitones: Optional[float] = None  # re 100 Hz
    f0_range_hz: Optional[float] = None  # 5th-95th percentile of voiced frames
    f0_range_semitones: Optional[float] = None
    f0_mean_hz: Optional[float] = None
    f0_std_hz: Optional[float] = None
    f0_std_semitones: Optional[float] = None
    voiced_fraction: Optional[float] = None
    syllables: Optional[int] = None
    speech_seconds: Optional[float] = None  # union of the word intervals
    syllables_per_second: Optional[float] = None  # per second of speech (pauses excluded)
    loudness_lufs: Optional[float] = None  # ITU-R BS.1770-4 integrated
    peak_dbfs: Optional[float] = None  # sample peak
    vocals_snr_db: Optional[float] = None
    # dataspeech-style words for them (`audio/describe.py`); pitch relative to perceived_gender
    pitch_bin: Optional[str] = None
    pitch_variation_bin: Optional[str] = None
    speaking_rate_bin: Optional[str] = None
    loudness_bin: Optional[str] = None
    noise_bin: Optional[str] = None
    emotions: list[EmotionIntensity] = Field(default_factory=list)
    primary_emotion: Optional[str] = None
    rationale: Optional[str] = None
    face_analysis: Optional[str] = None
    voice_analysis: Optional[str] = None
    text_analysis: Optional[str] = None
    emotion_agreement: Optional[float] = None
    labeler_model: Optional[str] = None
    prompt_version: Optional[str] = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Optional[float] = 0.0  # None: the labeler's model has no price (labeler.prices.<id>)
    nonverbal_events: list[NonverbalEvent] = Field(default_factory=list)  # times from the segment's start
    perceived_gender: Optional[str] = None
    perceived_age: Optional[str] = None
    accent: Optional[str] = None
    caption: Optional[str] = None  # how the line is said, one or two sentences
    caption_source: Optional[str] = None  # "labeler" (the model wrote it) | "measured" (from the bins)


class Speaker(Record):
    """One row of `speakers/`: a person of one video, over the segments kept of them."""

    speaker_id: str
    video_id: str
    source: str
    segments: int
    seconds: float
    embedding: list[Float32]  # the mean of the segments' voice embeddings, unit length
    face_crop_path: Optional[str] = None  # relative to the output dir


class GlobalSpeaker(Record):
    """One row of `global_speakers.parquet`: which per-video speakers sound like one person."""

    speaker_id: str
    video_id: str
    global_speaker_id: str


class RegistryVoice(Record):
    """One row of the global speaker registry (`global_speakers/voices.<generation>.parquet`): a
    per-video speaker, the global id it was given (never changed after), and its mean voice."""

    label: int  # its key in the nearest-neighbour index (-1: no voice, not indexed)
    key: str  # the video's commit key: which speakers/<key>.parquet it came from
    speaker_id: str
    video_id: str
    global_speaker_id: str  # "G<k>"; "" for a speaker without a voice
    embedding: list[Float32]


# ---------------------------------------------------------------- the item that flows between stages


class StageTime(Record):
    stage: str
    seconds: float
    gpus: str = ""  # the GPUs the worker was given (CUDA_VISIBLE_DEVICES under Ray), for placement checks


class Payload(Record):
    """What the stages know about a video or an utterance: each stage reads what earlier ones
    wrote and adds its own. The engine never reads it; only the commit turns it into rows. What
    only tests or debug renders need (face tracks, frames) stays in the worker that made it."""

    video: Optional[SourceVideo] = None  # probe
    vocals_path: Optional[str] = None  # full-band vocals (dataset rate), under the work dir (separate)
    analysis_path: Optional[str] = None  # 16 kHz mono analysis audio, under the work dir (separate)
    speech_seconds: float = 0.0  # vad
    regions: list[SpeechRegion] = Field(default_factory=list)  # vad; an utterance keeps the ones it overlaps
    segment: Optional[SpeechSegment] = None  # asr: the utterance (None before the fan-out)
    voice: Optional[VoiceWindows] = None  # speaker: window embeddings over the utterance
    speaker_embedding: list[Float32] = Field(default_factory=list)  # speaker: the mean voice
    voice_suspects: list[VoiceSuspect] = Field(default_factory=list)  # speaker: possible short turns, for vision
    dnsmos_sig: Optional[float] = None  # quality
    dnsmos_bak: Optional[float] = None
    dnsmos_ovrl: Optional[float] = None
    dnsmos_p808: Optional[float] = None
    speaker_track: Optional[int] = None  # vision
    speaker_face: str = ""  # vision: "<decoded utterance>#<track>": pieces of one decode with the same speaking face share it
    speaker_boxes: list[list[float]] = Field(default_factory=list)
    asd_score: Optional[float] = None
    speaking_fraction: Optional[float] = None
    other_faces: list[list[float]] = Field(default_factory=list)  # median boxes of the other faces on screen
    speaker_ends: Optional[FaceEnds] = None  # vision: the speaking face's first and last frame (identity's track continuity)
    audio_path: Optional[str] = None  # vision: dataset audio, relative to the output dir
    clip_path: Optional[str] = None  # vision: the speaker clip the labeler sees, relative to the output dir
    prosody: Optional[Prosody] = None  # prosody: measured pitch, rate, loudness, SNR of the dataset audio
    annotation: Optional[EmotionAnnotation] = None  # label


class WorkItem(Record):
    """A video (before the ASR fan-out) or one utterance of it (after): the engine's protocol
    (identity, status, completeness, rejects, times), with what the stages carry in `data`.

    A rejected item becomes `status="dropped"` with a `Reject` attached; later stages pass it
    through untouched, so it still reaches the writer and lands in `rejects/`: nothing is lost."""

    @property
    def passes_through(self) -> bool:
        """Stages leave it as it is: dropped (it travels to the writer) or a placeholder."""
        return self.status in ("dropped", "placeholder")

    source: str  # the input path as given
    path: str = ""  # the resolved absolute path (workers may run elsewhere than the driver's cwd)
    video_id: str = ""
    # "placeholder": a committed video that only keeps its place in its call's group (below); every
    # stage passes it on untouched and the writer ignores it
    status: Literal["video", "segment", "dropped", "placeholder"] = "video"
    # the group of videos a stage taking several per call gets together: the run's inputs in order,
    # `items_per_call` at a time, the same in every run (-1: no group)
    group: int = -1
    fanout_total: int = 1  # items this video became at the fan-out: the writer commits when all arrived
    # an utterance a later stage split into pieces: each piece carries its utterance's id and its
    # share of it (1/k of its parent's share), so the writer knows when every piece has arrived
    origin_id: str = ""
    share: float = 1.0
    rejects: list[Reject] = Field(default_factory=list)
    times: list[StageTime] = Field(default_factory=list)
    data: Payload = Field(default_factory=Payload)

    @property
    def item_id(self) -> str:
        seg = self.data.segment
        return seg.segment_id if seg else self.video_id or self.source

    @property
    def origin(self) -> str:
        """The id of the utterance this item is (a piece of)."""
        return self.origin_id or self.item_id

    def pieces(self, segments: list[SpeechSegment], rejects: list[Reject]) -> list["WorkItem"]:
        """This utterance cut into `segments` (each its own item from here on), with the stretches
        cut away as `rejects` riding on the first piece. No segment left: this item, dropped with
        exactly those span rejects (their seconds are the whole account of it)."""
        if not segments:
            self.rejects.extend(rejects)
            self.status = "dropped"
            return [self]
        origin, share = self.origin, self.share / len(segments)
        return [self.model_copy(update={"data": self.data.model_copy(update={"segment": seg}), "origin_id": origin,
                                        "share": share, "rejects": list(self.rejects) + list(rejects) if k == 0 else [],
                                        "times": list(self.times) if k == 0 else []})
                for k, seg in enumerate(segments)]

    def span_reject(self, stage: str, reason: str, message: str, start: float, end: float) -> Reject:
        """A reject row for a stretch [start, end) of this video that never became an utterance."""
        return Reject.span(self.video_id, self.source, stage, reason, message, start, end)

    def reject(self, stage: str, reason: str, message: str = "") -> "WorkItem":
        """Drop this item with a reason; it still travels to the writer."""
        seg = self.data.segment
        self.rejects.append(Reject(item_id=self.item_id, video_id=self.video_id, source=self.source, stage=stage,
                                   reason=reason, message=message or reason, start=seg.start if seg else None,
                                   end=seg.end if seg else None))
        self.status = "dropped"
        return self


ALL_RECORDS: tuple[type[Record], ...] = (
    StreamInfo,
    SourceVideo,
    Word,
    SpeechRegion,
    SpeechSegment,
    FaceTrack,
    Prosody,
    NonverbalEvent,
    EmotionIntensity,
    EmotionAnnotation,
    Reject,
    DatasetSegment,
    VoiceWindows,
    VoiceSuspect,
    Speaker,
    GlobalSpeaker,
    RegistryVoice,
)


def segment_id(video_id: str, start: float) -> str:
    """Stable id: the video's content hash plus the start in milliseconds."""
    return f"{video_id}_{int(round(start * 1000)):09d}"
