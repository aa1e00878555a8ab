"""Every reason code a reject row can carry, what it means, and what a re-run does with it.

Three kinds:

* **final**: about the item's own data (no face, too short, a clip the service blocked). The video
  is committed as done; a re-run skips it.
* **retried**: about nothing in the data (a crash, a lost worker, a full disk, a flaky or unpaid
  labeler). The video is committed with `final=False` and the next run redoes it, so a resumed run
  ends equal to one that never met the fault.
* **run-level**: about the run (the labeler's key, model or daily quota). The driver stops the run
  on the first one and commits nothing more; they never reach `rejects/`.

`tests/unit/test_reasons.py` checks that every reason written in the code is listed here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    code: str
    meaning: str
    retried: bool = False
    run_level: bool = False


_ALL = [
    # inputs and probe
    Reason("missing_file", "the input path does not exist"),
    Reason("not_a_file", "the input path is not a regular file"),
    Reason("empty_file", "the input file has no bytes"),
    Reason("truncated_file", "the container ends before its declared size"),
    Reason("unreadable_container", "not a media file FFmpeg can open"),
    Reason("media_unreadable", "the media cannot be decoded"),
    Reason("no_video_stream", "audio only: no face to see"),
    Reason("no_audio_stream", "video only: no voice to hear"),
    Reason("zero_duration", "the file holds no time"),
    Reason("duplicate_content", "the same content as another input (same video id)"),
    Reason("inside_output_dir", "a list entry that lies inside a mikupal output dir"),
    Reason("not_media", "a file in an input folder that is not media (report skipped_files)"),
    # audio front end
    Reason("separation_failed", "vocal separation failed on this file"),
    Reason("audio_decode_failed", "the audio stream cannot be decoded"),
    Reason("empty_audio", "the audio stream holds no samples"),
    Reason("no_speech", "no speech found (VAD), or whisper heard none"),
    Reason("too_short", "a speech stretch shorter than the shortest utterance"),
    Reason("music", "whisper heard music, not words"),
    Reason("low_confidence", "whisper's confidence, or the speaker's ASD evidence, is too low"),
    Reason("language_not_allowed", "a language outside segment.languages"),
    Reason("language_mismatch", "speech in another language than the ASR model transcribes (e.g. Mandarin for a *.en model)"),
    Reason("unsplittable", "one word longer than segment.max_seconds"),
    Reason("no_transcript", "transcribed speech that no word covers"),
    # speakers
    Reason("speaker_change", "a stretch between changes of speaker too short to keep, or the pause at a change"),
    Reason("overlapping_speech", "two voices (or two faces speaking) at once"),
    # vision
    Reason("no_segment", "a segment-level stage got a whole video"),
    Reason("no_audio", "a segment reached the prosody stage without its dataset audio"),
    Reason("video_decode_failed", "no video frame in the utterance's time range"),
    Reason("no_face", "no face (big enough, on screen long enough) in the utterance"),
    Reason("face_too_small", "every face is smaller than faces.min_face_px"),
    Reason("no_active_speaker", "no visible face is seen speaking: the voice is off screen"),
    Reason("overlapping_speakers", "two faces speak the utterance with about the same evidence"),
    # commit
    Reason("duplicate_segment", "the same speech as a kept segment of this input (re-upload, re-cut, compilation)"),
    # quality
    Reason("low_quality", "a DNSMOS score below its quality.min_* threshold"),
    # labeler: about the segment
    Reason("labeler_safety_block", "the service blocked this clip's content"),
    Reason("labeler_missing_media", "the clip or audio to label is not there"),
    Reason("labeler_bad_request", "the service refused the request for this clip"),
    Reason("labeler_max_tokens", "the answer ran past labeler.max_output_tokens"),
    Reason("labeler_batch_missing", "a Batch API answer file lacks this segment"),
    Reason("labeler_preflight", "the check before the run could not reach the service (the run does not start)"),
    # labeler: transient, redone by the next run
    Reason("labeler_rate_limited", "429 after every retry", retried=True),
    Reason("labeler_server_error", "5xx after every retry", retried=True),
    Reason("labeler_timeout", "no answer in labeler.timeout_s after every retry", retried=True),
    Reason("labeler_connection_error", "the service could not be reached", retried=True),
    Reason("labeler_invalid_output", "the answers never matched the schema", retried=True),
    Reason("budget_exhausted", "labeler.max_usd was reached before this segment", retried=True),
    # labeler: about the run
    Reason("labeler_auth_error", "the key is missing or refused", retried=True, run_level=True),
    Reason("labeler_model_not_found", "the model is not (or no longer) served", retried=True, run_level=True),
    Reason("labeler_quota_exhausted", "the daily quota is used up", retried=True, run_level=True),
    Reason("labeler_unsupported_input", "the model refuses what labeler.mode sends (a modality, structured output)",
           retried=True, run_level=True),
    # evaluation (benchmark predictions tables)
    Reason("missing_clip", "a benchmark utterance whose clip is not there"),
    # engine
    Reason("stage_error", "a stage raised: a bug or a fault, not the data", retried=True),
    Reason("out_of_memory", "a stage ran out of memory", retried=True),
    Reason("worker_lost", "the worker process died", retried=True),
    Reason("disk_full", "the output disk is full (the run stops)", retried=True),
    Reason("timeout", "one stage took longer than engine.item_timeout_s + item_timeout_per_media_s"),
    Reason("lost_item", "a stage returned nothing for an item"),
    Reason("user_error", "a run-level error raised inside a worker: the driver stops the run with its line"),
    Reason("dropped_without_reason", "an item dropped with no reason (a bug: never silent)"),
]

REASONS: dict[str, Reason] = {r.code: r for r in _ALL}
#: a video with such a reject is committed as not final: the next run redoes it
RETRY_REASONS = frozenset(r.code for r in _ALL if r.retried)
#: the driver stops the run on the first such reject (it is never committed)
RUN_LEVEL_REASONS = frozenset(r.code for r in _ALL if r.run_level)


def is_retried(code: str) -> bool:
    return code in RETRY_REASONS
