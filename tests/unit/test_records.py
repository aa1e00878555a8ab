import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mikupal.records import (
    ALL_RECORDS,
    DatasetSegment,
    EmotionAnnotation,
    EmotionIntensity,
    FaceTrack,
    GlobalSpeaker,
    NonverbalEvent,
    Prosody,
    RegistryVoice,
    Reject,
    SourceVideo,
    Speaker,
    SpeechRegion,
    SpeechSegment,
    StreamInfo,
    VoiceSuspect,
    VoiceWindows,
    Word,
    segment_id,
)
from mikupal.records import Payload, WorkItem

WORDS = [Word(word=" hello", start=1.0, end=1.4, probability=0.9), Word(word=" world", start=1.5, end=2.0, probability=0.8)]
EMO = [EmotionIntensity(name="Joy", intensity=0.7), EmotionIntensity(name="Calmness", intensity=0.1)]

SAMPLES = {
    StreamInfo: StreamInfo(index=0, kind="video", codec="h264", duration=6.1, width=700, height=700, fps=30.0),
    SourceVideo: SourceVideo(
        video_id="abc", source="a b/ü.mp4", path="/x/a b/ü.mp4", size_bytes=10, duration=6.13,
        streams=[StreamInfo(index=1, kind="audio", codec="aac", sample_rate=44100, channels=2)],
        has_video=True, has_audio=True, width=700, height=700, fps=30.0, rotation=90,
    ),
    Word: WORDS[0],
    SpeechRegion: SpeechRegion(start=0.5, end=3.0, snr_db_before=8.0, snr_db_after=20.0),
    SpeechSegment: SpeechSegment(segment_id=segment_id("abc", 1.0), video_id="abc", source="a.mp4", start=1.0, end=2.0,
                                 text="hello world", language="en", language_probability=0.99, words=WORDS),
    FaceTrack: FaceTrack(track_id=3, frames=[0, 1], boxes=[[1.0, 2.0, 30.0, 40.0], [1.5, 2.0, 30.0, 41.0]],
                         detection_scores=[0.9, 0.8], asd_scores=[1.2, -0.3]),
    EmotionIntensity: EMO[0],
    EmotionAnnotation: EmotionAnnotation(emotions=EMO, primary_emotion="Joy", rationale="smiles", labeler_model="m",
                                         input_tokens=100, output_tokens=20, cost_usd=0.001,
                                         input_tokens_by_modality=[EmotionIntensity(name="VIDEO", intensity=80)],
                                         nonverbal_events=[NonverbalEvent(event="laughter", start=0.25, end=0.75)],
                                         perceived_gender="female", perceived_age="30s", accent="unsure",
                                         caption="She laughs softly."),
    Prosody: Prosody(f0_median_hz=180.5, f0_median_semitones=10.23, f0_range_hz=80.0, f0_range_semitones=7.5,
                     f0_mean_hz=182.0, f0_std_hz=20.0, f0_std_semitones=2.5, voiced_fraction=0.5, syllables=12,
                     speech_seconds=2.5, syllables_per_second=4.8, loudness_lufs=-23.5, peak_dbfs=-3.0,
                     vocals_snr_db=41.5),
    NonverbalEvent: NonverbalEvent(event="sigh", start=1.0, end=1.5),
    RegistryVoice: RegistryVoice(label=3, key="abc", speaker_id="abc_S1", video_id="abc", global_speaker_id="G2",
                                 embedding=[0.5, -0.5]),
    Reject: Reject(item_id="abc_000001000", video_id="abc", source="a.mp4", stage="vision", reason="no_face", start=1.0, end=2.0),
    DatasetSegment: DatasetSegment(
        segment_id="abc_000001000", video_id="abc", source="a.mp4", start=1.0, end=2.0, duration=1.0, text="hello world",
        language="en", words=WORDS, audio_path="audio/abc/abc_000001000.flac", clip_path="clips/abc/abc_000001000.mp4",
        sample_rate=44100, speaker_boxes=[[1.0, 2.0, 3.0, 4.0]], asd_score=1.5, emotions=EMO, primary_emotion="Joy",
        speaker_id="abc_S1", speaker_embedding=[0.5, -0.25, 0.125], f0_median_hz=120.0, syllables_per_second=5.0,
        loudness_lufs=-20.0, pitch_bin="low-pitch", nonverbal_events=[NonverbalEvent(event="gasp", start=0.1, end=0.2)],
        caption="A man speaks.", caption_source="measured",
    ),
    # float32 columns: values exact in 32 bits, so the round trip compares equal
    VoiceSuspect: VoiceSuspect(start=4.2, end=4.9, similarity=0.41, doubt=0.58, sure=True, words=2),
    VoiceWindows: VoiceWindows(starts=[1.0, 1.5], ends=[2.5, 3.0], embeddings=[[0.5, 0.25], [0.75, -0.5]], speech=[True, False]),
    Speaker: Speaker(speaker_id="abc_S1", video_id="abc", source="a.mp4", segments=2, seconds=7.5, embedding=[0.5, 0.5],
                     face_crop_path="speakers/abc/abc_S1.jpg"),
    GlobalSpeaker: GlobalSpeaker(speaker_id="abc_S1", video_id="abc", global_speaker_id="G1"),
    RegistryVoice: RegistryVoice(label=3, key="abc", speaker_id="abc_S1", video_id="abc", global_speaker_id="G1", embedding=[0.5, 0.75]),
}


def test_every_record_has_a_sample():
    assert set(SAMPLES) == set(ALL_RECORDS)


@pytest.mark.parametrize("cls", ALL_RECORDS, ids=lambda c: c.__name__)
def test_round_trip_through_parquet(cls, tmp_path):
    rec = SAMPLES[cls]
    table = cls.to_table([rec, rec])
    assert table.schema == cls.arrow_schema()
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    back = pq.read_table(path)
    assert back.schema.equals(cls.arrow_schema())
    assert cls.from_table(back) == [rec, rec]


def test_no_map_or_binary_blob_columns():
    """HF datasets cannot load Arrow map columns; nothing is stored as pickled bytes."""

    def walk(t):
        assert not pa.types.is_map(t) and not pa.types.is_binary(t)
        if pa.types.is_list(t):
            walk(t.value_type)
        if pa.types.is_struct(t):
            for f in t:
                walk(f.type)

    for cls in ALL_RECORDS + (WorkItem,):
        for field in cls.arrow_schema():
            walk(field.type)


def test_work_item_round_trip():
    it = WorkItem(source="a.mp4", video_id="abc", status="segment",
                  data=Payload(segment=SAMPLES[SpeechSegment], annotation=SAMPLES[EmotionAnnotation]))
    it.reject("vision", "no_face", "none found")
    assert WorkItem.from_table(WorkItem.to_table([it])) == [it]
    assert it.status == "dropped" and it.rejects[0].start == 1.0


def test_work_item_keeps_the_engine_protocol_apart_from_the_payload():
    """The engine's columns are the item's own; what the stages carry is one `data` struct, and
    face tracks (only tests and debug renders read them) do not travel at all."""
    schema = WorkItem.arrow_schema()
    assert set(schema.names) == {"source", "path", "video_id", "status", "group", "fanout_total", "origin_id", "share",
                                 "rejects", "times", "data"}
    payload = schema.field("data").type
    assert pa.types.is_struct(payload) and "segment" in [f.name for f in payload]
    assert "tracks" not in [f.name for f in payload]


def test_pieces_own_their_payload():
    seg = SAMPLES[SpeechSegment]
    it = WorkItem(source="a.mp4", video_id="abc", status="segment", data=Payload(segment=seg))
    a, b = it.pieces([seg.model_copy(update={"segment_id": "abc_1", "end": 1.5}),
                      seg.model_copy(update={"segment_id": "abc_2", "start": 1.5})], [])
    a.data.clip_path = "clips/a.mp4"
    assert b.data.clip_path is None and it.data.clip_path is None
    assert (a.item_id, b.item_id, a.origin, b.origin) == ("abc_1", "abc_2", seg.segment_id, seg.segment_id)


def test_segment_id_is_stable():
    assert segment_id("v", 1.2346) == "v_000001235" == segment_id("v", 1.23451)
