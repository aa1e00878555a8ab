"""The same speech twice: copies match on words, timing and voice; a repeated sentence or another
voice does not; the kept copy is the same whatever order the videos are committed in."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow.parquet as pq
import pytest

from mikupal.engine.commit import OutputDir
from mikupal.records import Payload, SourceVideo, SpeechSegment, WorkItem, Word, segment_id
from mikupal.speaker.duplicates import DuplicateRules, compare, first_copies, normalise, utterance

TEXT = "well I never thought we would actually win the whole thing tonight".split()
RNG = np.random.default_rng(3)
VOICE = RNG.standard_normal(256)
OTHER_VOICE = RNG.standard_normal(256)


def words(offset: float, jitter: float = 0.0, stretch: float = 1.0, seed: int = 0, text=TEXT) -> list[Word]:
    rng = np.random.default_rng(seed)
    out, t = [], 0.0
    for w in text:
        d = 0.18 + 0.03 * len(w)
        a = offset + t * stretch + rng.uniform(-jitter, jitter)
        out.append(Word(word=f" {w.capitalize() if w == 'well' else w}" + ("," if w == "thought" else ""),
                        start=round(a, 3), end=round(a + d * stretch, 3), probability=0.9))
        t += d + 0.06
    return out


def row(source: str, start: float, ws: list[Word], voice=VOICE, noise: float = 0.05) -> dict:
    vid = source.rsplit("/", 1)[-1].split(".")[0]
    emb = voice + noise * np.random.default_rng(int(start * 100)).standard_normal(256)
    return {"segment_id": segment_id(vid, start), "video_id": vid, "source": source, "start": start,
            "end": ws[-1].end, "words": [w.model_dump() for w in ws], "speaker_embedding": emb.tolist()}


def test_normalise_ignores_case_punctuation_and_accents():
    assert normalise(" Déjà,") == "deja" and normalise("...") == "" and normalise("Won't") == "wont"


def test_a_replayed_copy_matches_and_the_first_source_is_kept():
    orig = utterance(row("/in/a.mp4", 1.0, words(1.0)))
    reup = utterance(row("/in/b.mp4", 7.5, words(7.5, jitter=0.06, seed=1)))
    m = compare(reup, orig)
    assert m is not None and m.kept is orig and m.copy is reup
    assert m.words == len(TEXT) and m.timing_s <= 0.12 and m.voice > 0.9
    assert "same speech as a_000001000 (/in/a.mp4 1.00-" in m.message()
    # a clip cut from the middle of a longer video: fewer words, all of them in step
    part = utterance(row("/in/c.mp4", 0.2, words(0.2 - 0.24 * 2)[2:-1]))
    assert compare(orig, part) is not None


def test_a_repeated_sentence_another_voice_or_few_words_are_no_copy():
    orig = utterance(row("/in/a.mp4", 1.0, words(1.0)))
    again = utterance(row("/in/a.mp4", 20.0, words(20.0, stretch=1.15)))  # the same words, said again slower
    assert compare(orig, again) is None
    someone = utterance(row("/in/b.mp4", 1.0, words(1.0), voice=OTHER_VOICE))  # the same line in sync, another voice
    assert compare(orig, someone) is None
    short = utterance(row("/in/b.mp4", 1.0, words(1.0, text=TEXT[:3])))
    assert compare(short, utterance(row("/in/c.mp4", 1.0, words(1.0, text=TEXT[:3])))) is None
    other_words = utterance(row("/in/b.mp4", 1.0, words(1.0, text="a completely different sentence said here".split())))
    assert compare(orig, other_words) is None
    no_voice = utterance({**row("/in/b.mp4", 4.0, words(4.0)), "speaker_embedding": []})
    assert compare(orig, no_voice, DuplicateRules()) is not None  # words and timing alone, where no voice


def test_within_one_video_the_later_copy_goes():
    rows = [utterance(row("/in/comp.mp4", s, words(s))) for s in (30.0, 2.0, 60.0)]
    copies = first_copies(rows)
    assert set(copies) == {rows[0].segment_id, rows[2].segment_id}
    assert all(m.kept is rows[1] for m in copies.values())


def _item(root, source: str, start: float, ws: list[Word]) -> WorkItem:
    r = row(source, start, ws)
    vid = r["video_id"]
    audio = f"audio/{vid}/{r['segment_id']}.flac"
    (root / audio).parent.mkdir(parents=True, exist_ok=True)
    (root / audio).write_bytes(b"flac")
    seg = SpeechSegment(segment_id=r["segment_id"], video_id=vid, source=source, start=start, end=r["end"],
                        text="".join(w.word for w in ws).strip(), words=ws)
    video = SourceVideo(video_id=vid, source=source, path=source, size_bytes=1, duration=90.0, has_video=True,
                        has_audio=True)
    return WorkItem(source=source, path=source, video_id=vid, status="segment",
                    data=Payload(video=video, segment=seg, speaker_embedding=r["speaker_embedding"],
                                 audio_path=audio, speaker_boxes=[[0.0, 0.0, 10.0, 10.0]]))


VIDEOS = {
    "/in/a_original.mp4": [(1.0, words(1.0)), (12.0, words(12.0, text="and then the lights went out for good".split()))],
    "/in/b_reupload.mp4": [(5.0, words(5.0, jitter=0.05, seed=2))],
    "/in/c_compilation.mp4": [(0.5, words(0.5, jitter=0.05, seed=3)), (40.0, words(40.0, jitter=0.05, seed=4))],
}


def _run(root, order) -> tuple[set, dict]:
    out = OutputDir(root, duplicates=DuplicateRules())
    for source in order:
        vid = source.rsplit("/", 1)[-1].split(".")[0]
        out.commit_video(vid, [_item(root, source, s, ws) for s, ws in VIDEOS[source]])
    kept = set(out.read_segments().column("segment_id").to_pylist())
    rej = {r["item_id"]: r for r in out.read_rejects().to_pylist()}
    return kept, rej


@pytest.mark.parametrize("order", list(itertools.permutations(VIDEOS)))
def test_the_kept_copy_does_not_depend_on_the_commit_order(tmp_path, order):
    kept, rejects = _run(tmp_path, order)
    first = segment_id("a_original", 1.0)
    assert kept == {first, segment_id("a_original", 12.0)}
    copies = {segment_id("b_reupload", 5.0), segment_id("c_compilation", 0.5), segment_id("c_compilation", 40.0)}
    assert set(rejects) == copies
    for r in rejects.values():
        assert r["reason"] == "duplicate_segment" and r["stage"] == "dedup" and first in r["message"]
    for sid in copies:  # a copy's media leave with it
        assert not (tmp_path / "audio" / sid.rsplit("_", 1)[0] / f"{sid}.flac").exists()
    for key in ("b_reupload", "c_compilation"):  # markers and speakers agree with the rows
        out = OutputDir(tmp_path)
        [s] = [s for s in out.summaries() if s.key == key]
        assert s.kept == 0 and s.kept_seconds == pytest.approx(0.0) and s.speakers == []
        assert not (tmp_path / "segments" / f"{key}.parquet").exists()
    a = pq.read_table(tmp_path / "speakers" / "a_original.parquet").to_pylist()
    assert sum(sp["segments"] for sp in a) == 2


def test_a_resumed_run_indexes_what_is_committed(tmp_path):
    _run(tmp_path, ["/in/a_original.mp4"])
    out = OutputDir(tmp_path, duplicates=DuplicateRules())  # a new run on the same output
    out.commit_video("b_reupload", [_item(tmp_path, "/in/b_reupload.mp4", 5.0, VIDEOS["/in/b_reupload.mp4"][0][1])])
    assert [r["reason"] for r in out.read_rejects().to_pylist()] == ["duplicate_segment"]
    off = OutputDir(tmp_path / "off")
    off.commit_video("b_reupload", [_item(tmp_path / "off", "/in/b_reupload.mp4", 5.0, words(5.0))])
    assert off.read_rejects().num_rows == 0  # duplicates=None: no check
