"""The real-footage benchmark's measures, manifest and fetch, without the footage (a loopback HTTP
server stands in for GitHub)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading

import pytest

from benchmarks.real_footage import manifest as mf
from benchmarks.real_footage import metrics as m
from benchmarks.real_footage.build import piece_turns
from benchmarks.real_footage.fetch import ChecksumError, fetch_entry
from benchmarks.real_footage.measure import language_report, ovrl_report, purity_report, yield_report

T = m.Turn


def test_purity_is_the_majority_speakers_share_of_the_reference_speech():
    turns = [T(0, 4, "a"), T(4, 5, "b"), T(10, 12, "b")]
    p = m.segment_purity(turns, 1.0, 5.0)  # 3 s of a, 1 s of b
    assert (p.speaker, p.share, p.speech_s) == ("a", 0.75, 4.0)
    assert m.segment_purity(turns, 6.0, 9.0).speaker is None  # no reference speech: not scored
    both = m.segment_purity([T(0, 2, "a"), T(1, 2, "b")], 0, 2)  # overlap counts once per speaker
    assert both.speech_s == 3.0 and both.share == pytest.approx(2 / 3)


def test_cluster_purity_and_completeness_over_seconds():
    # one person split over two ids: pure, incomplete
    assert m.cluster_scores([("s1", "a", 6.0), ("s2", "a", 2.0), ("s3", "b", 2.0)]) == (1.0, 0.8)
    # two people merged into one id: complete, impure
    assert m.cluster_scores([("s1", "a", 6.0), ("s1", "b", 4.0)]) == (0.6, 1.0)
    assert m.cluster_scores([]) == (0.0, 0.0)


def test_ovrl_of_a_low_quality_message_and_the_curve():
    assert m.parse_ovrl("dnsmos_ovrl 2.41 < 3.00") == 2.41
    assert m.parse_ovrl("dnsmos_sig 1.20 < 2.00") is None
    curve = m.ovrl_curve([(1.2, 2.0), (2.6, 3.0), (3.4, 5.0)])
    assert curve == {"1.0": 10.0, "1.5": 8.0, "2.0": 8.0, "2.5": 8.0, "3.0": 5.0, "3.5": 0.0}


def test_language_match_ignores_region_tags():
    assert m.language_matches("zh", ["zh"]) and m.language_matches("en", ["en-US"])
    assert not m.language_matches("en", ["zh"]) and not m.language_matches("", ["en"])


def _entry(name="a.mp4", kind="conversation", seconds=20.0, speakers=2, languages=("en",), turns=None):
    return mf.Entry(name=name, url="http://x/" + name, sha256="0" * 64, seconds=seconds, kind=kind,
                    languages=list(languages), speakers=speakers, video=True, license="MIT", turns=turns or {})


def _seg(start, end, sid="v_S0", lang="en", ovrl=None):
    return {"source": "/m/a.mp4", "start": start, "end": end, "speaker_id": sid, "language": lang,
            "language_probability": 0.9, "text": "t", "dnsmos_ovrl": ovrl}


def test_yield_counts_seconds_by_kind_and_reject_reason():
    e1, e2 = _entry(), _entry("b.mp4", kind="monologue", seconds=10.0, speakers=1)
    segs = {"a.mp4": [_seg(0, 4), _seg(5, 9)], "b.mp4": []}
    rejs = {"a.mp4": [{"stage": "quality", "reason": "low_quality", "start": 10.0, "end": 13.0, "message": ""},
                      {"stage": "asr", "reason": "too_short", "start": None, "end": None, "message": "a summary"}],
            "b.mp4": [{"stage": "probe", "reason": "no_video_stream", "start": None, "end": None, "message": ""}]}
    y = yield_report([e1, e2], segs, rejs)
    assert y["kept_s"] == 8.0 and y["kept_share"] == pytest.approx(8 / 30, abs=1e-4)
    assert y["by_kind"]["conversation"]["kept_share"] == 0.4
    assert y["kinds_without_segments"] == ["monologue"]
    assert y["rejected_s"] == {"probe/no_video_stream": 10.0, "quality/low_quality": 3.0}  # the summary counts 0
    assert y["not_speech_s"] == 30.0 - 8.0 - 13.0


def test_ovrl_report_joins_kept_scores_and_low_quality_messages():
    segs = {"a.mp4": [_seg(0, 4, ovrl=3.2)]}
    rejs = {"a.mp4": [{"stage": "quality", "reason": "low_quality", "start": 5.0, "end": 7.0,
                       "message": "dnsmos_ovrl 2.10 < 3.00"}]}
    r = ovrl_report([_entry()], segs, rejs)
    assert r["scored_s"] == 6.0 and r["seconds_at_floor"]["2.0"] == 6.0 and r["seconds_at_floor"]["3.0"] == 4.0
    assert r["seconds_at_floor_by_kind"]["conversation"]["3.0"] == 4.0 and r["kept_scored_s"] == 4.0
    assert ovrl_report([_entry()], {"a.mp4": [_seg(0, 4)]}, {"a.mp4": []})["measured"] is False


def test_purity_report_reads_the_turns_file(tmp_path):
    e = _entry(turns={"format": "inline", "segments": [[0, 5, "a"], [5, 10, "b"]]})
    mf.write_turns(mf.turns_path(tmp_path, e), mf.convert_turns(e.turns, None))
    segs = {"a.mp4": [_seg(0, 5, "v_S0"), _seg(4, 10, "v_S1"), _seg(5.5, 9, "v_S0")]}
    r = purity_report([e], segs, tmp_path)
    assert r["segments_scored"] == 3 and r["pure_share"] == pytest.approx(2 / 3, abs=1e-4)
    assert r["impure"][0]["start"] == 4 and r["id_completeness"] < 1.0


def test_language_report_counts_mismatches():
    e = _entry(languages=("zh",))
    r = language_report([e], {"a.mp4": [_seg(0, 3, lang="zh"), _seg(3, 6, lang="en")]})
    assert r["checked"] == 2 and r["mismatches"] == 1 and r["mismatched"][0]["detected"] == "en"


def test_turn_formats_convert_to_one_csv(tmp_path):
    rttm = "SPEAKER sample 1 6.690 0.430 <NA> <NA> speaker90 <NA> <NA>\nSPEAKER sample 1 7.550 0.800 <NA> <NA> speaker91 <NA> <NA>\n"
    assert mf.turns_from_rttm(rttm) == [T(6.69, 7.12, "speaker90"), T(7.55, 8.35, "speaker91")]
    pv = json.dumps({"tests": {"diarization_tests": [{"audio_file": "test.wav", "segments": [
        {"start_sec": 1.7, "end_sec": 3.9, "speaker_tag": 1}]}]}})
    assert mf.turns_from_picovoice(pv, "test.wav") == [T(1.7, 3.9, "1")]
    mf.write_turns(tmp_path / "t.csv", [T(2, 3, "b"), T(0, 1, "a")])
    assert mf.read_turns(tmp_path / "t.csv") == [T(0, 1, "a"), T(2, 3, "b")]
    assert mf.read_turns(tmp_path / "none.csv") is None


def test_the_committed_manifest_is_complete():
    entries = mf.load()
    by_name = {e.name: e for e in entries}
    assert len(by_name) == len(entries)
    for e in entries:
        assert e.seconds > 0 and e.languages and e.license
        if e.build:  # an edited dialogue: cut from fetched entries, its length the pieces' sum
            assert all(src in by_name and not by_name[src].build for src, _, _ in e.build)
            assert e.seconds == pytest.approx(piece_turns(e.build)[-1].end, abs=0.2)
        else:
            assert e.url.startswith("https://raw.githubusercontent.com/") and len(e.sha256) == 64
    assert {e.kind for e in entries if e.video} == set(mf.KINDS)


def test_edited_dialogue_turns_are_the_pieces_on_the_frame_grid():
    # 3.21 and 5.95 s fall between frames: cut at the nearest frame (3.20, 5.96)
    turns = piece_turns([["a.mp4", 0.0, 2.32], ["b.mp4", 1.28, 3.21], ["a.mp4", 2.4, 5.95]])
    assert turns == [T(0.0, 2.32, "a"), T(2.32, 4.24, "b"), T(4.24, 7.8, "a")]


@pytest.fixture
def served(tmp_path):
    """A loopback HTTP server over tmp_path/www (stands in for raw.githubusercontent.com)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield www, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_fetch_checks_sha256_writes_turns_and_skips_what_is_present(served, tmp_path):
    www, base = served
    (www / "clip.mp4").write_bytes(b"real media bytes")
    (www / "clip.rttm").write_text("SPEAKER clip 1 0.5 1.0 <NA> <NA> A <NA> <NA>\n")
    digest = hashlib.sha256(b"real media bytes").hexdigest()
    e = mf.Entry(name="clip.mp4", url=f"{base}/clip.mp4", sha256=digest, seconds=1.0, kind="conversation",
                 languages=["en"], speakers=1, video=True, license="MIT",
                 turns={"format": "rttm", "url": f"{base}/clip.rttm"})
    to = tmp_path / "media"
    assert fetch_entry(e, to) == "downloaded"
    assert (to / "clip.mp4").read_bytes() == b"real media bytes"
    assert mf.read_turns(to / "turns" / "clip.mp4.csv") == [T(0.5, 1.5, "A")]
    assert fetch_entry(e, to) == "present"
    (www / "clip.mp4").write_bytes(b"changed upstream")
    (to / "clip.mp4").unlink()
    with pytest.raises(ChecksumError):
        fetch_entry(e, to)
    assert not (to / "clip.mp4").exists() and not list(to.glob("*.part"))
