"""One run (the default engine) over every hostile input (tests/reliability/inputs.py): each good input is fully
processed, each bad one is exactly one reject row with its specific reason, nothing is dropped
silently, and the run returns normally (the CLI's exit 0)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from mikupal import media as M
from mikupal.config import compose
from mikupal.engine.commit import OutputDir
from mikupal.engine.run import run
from tests.reliability import harness, inputs


def _rows(out: Path):
    od = OutputDir(out)
    return od.read_segments().to_pylist(), od.read_rejects().to_pylist()


def _outcome(case: inputs.Case, root: Path, seg, rej) -> tuple[bool, str]:
    """(as expected?, what happened). A video-level reject (input, probe, VAD ...) must be the only
    one; an input whose utterances were all dropped (vision) has the expected segment reject."""
    src = inputs.source_of(root, case.entries[0])
    kept = [r for r in seg if r["source"] == src]
    mine = [r for r in rej if r["source"] == src]
    video_rej = [r for r in mine if harness.is_video_level(r)]
    seg_rej = sorted({(r["stage"], r["reason"]) for r in mine if not harness.is_video_level(r)})
    if kept and not video_rej:
        observed = f"kept {len(kept)} utterance{'s' * (len(kept) > 1)}"
    elif video_rej:
        observed = "; ".join(f"reject {r['stage']}/{r['reason']}" for r in video_rej)
    elif seg_rej:
        observed = "; ".join(f"reject {s}/{r} (its utterances)" for s, r in seg_rej)
    else:
        observed = "NOTHING (dropped silently)"
    if case.kept:
        return bool(kept) and not video_rej, observed
    if kept:
        return False, observed
    if video_rej:
        return len(video_rej) == 1 and (video_rej[0]["stage"], video_rej[0]["reason"]) in _pairs(case), observed
    return any(p in _pairs(case) for p in seg_rej), observed


def _pairs(case: inputs.Case) -> set[tuple[str, str]]:
    return {(case.stage, r) for r in case.reasons}


def test_every_hostile_input_has_its_outcome(hostile_run):
    h = hostile_run
    root, out, cases = h["root"], h["out"], h["cases"]
    seg, rej = _rows(out)
    failures = []
    for case in cases:
        ok, observed = _outcome(case, root, seg, rej)
        harness.record("inputs", case.id, case.title, case.expected, observed, ok)
        if not ok:
            failures.append(f"{case.id}: expected {case.expected}, observed {observed}")
    assert not failures, failures
    # nothing silent: every listed entry is accounted for, and the report counts each once
    sources = {inputs.source_of(root, e) for c in cases for e in c.entries}
    assert sources == {r["source"] for r in seg} | {r["source"] for r in rej}
    assert h["report"]["videos"] == len(sources)
    harness.record("inputs", "one_run", f"all {len(cases)} inputs in one run, default engine (list file)", "exit 0",
                   f"returned normally in {h['wall']:.0f} s", True, h["wall"])


def test_reject_messages_are_specific(hostile_run):
    seg, rej = _rows(hostile_run["out"])
    by_source = {r["source"]: r for r in rej if harness.is_video_level(r)}
    root = hostile_run["root"]
    dup = by_source[inputs.source_of(root, "../../files/same content, second name.mp4")]
    assert inputs.UNICODE_NAME in dup["message"]  # names the copy that was processed
    trunc = by_source[inputs.source_of(root, "../../files/truncated.mp4")]
    assert "mdat" in trunc["message"] and "bytes" in trunc["message"]
    for r in by_source.values():
        assert r["message"] and "\n" not in r["message"] and "Traceback" not in r["message"]


def _seg_of(seg, root, entry):
    src = inputs.source_of(root, entry)
    rows = sorted((r for r in seg if r["source"] == src), key=lambda r: r["start"])
    assert rows, entry
    return rows[0]


def _mean_box(row) -> np.ndarray:
    return np.asarray(row["speaker_boxes"], dtype=np.float64).mean(axis=0)


def test_rotated_video_boxes_are_in_displayed_pixels(hostile_run):
    """Stored sideways (700x960) with rotate=90: displayed it is vr_face1 padded to 960x700, so the
    speaker's boxes must be vr_face1's (the symlinked clip, same run), not transposed ones."""
    root = hostile_run["root"]
    v = M.probe(root / "files" / "rotated.mp4")
    assert v.rotation == 90 and (v.width, v.height) == (960, 700)
    seg, _ = _rows(hostile_run["out"])
    rot = _seg_of(seg, root, "../../files/rotated.mp4")
    ref = _seg_of(seg, root, str(root / "files" / "face1 via symlink.mp4"))
    boxes = np.asarray(rot["speaker_boxes"])
    assert boxes[:, [0, 2]].max() <= 960 + 1 and boxes[:, [1, 3]].max() <= 700 + 1
    diff = np.abs(_mean_box(rot) - _mean_box(ref))
    side = _mean_box(ref)[2] - _mean_box(ref)[0]
    ok = bool(diff.max() < 0.15 * side)
    harness.record("inputs", "rotated_boxes", "rotated video: boxes in displayed pixels",
                   "rotation 90, boxes = upright clip's", f"rotation {v.rotation}, max box offset {diff.max():.1f} px "
                   f"(face {side:.0f} px)", ok)
    assert ok, (diff, side)


def test_4k_boxes_are_in_source_pixels(hostile_run):
    """uhd: vr_face1 scaled by 2160/700 and centred at x + 840 in a 3840x2160 frame."""
    root = hostile_run["root"]
    seg, _ = _rows(hostile_run["out"])
    uhd = _seg_of(seg, root, "../../files/uhd_3840x2160.mp4")
    ref = _seg_of(seg, root, str(root / "files" / "face1 via symlink.mp4"))
    k = 2160 / 700
    expected = _mean_box(ref) * k + np.array([840, 0, 840, 0])
    diff = np.abs(_mean_box(uhd) - expected)
    assert diff.max() < 0.15 * (expected[2] - expected[0]), (diff, expected)


def test_two_audio_streams_use_the_default_one(hostile_run):
    seg, _ = _rows(hostile_run["out"])
    row = _seg_of(seg, hostile_run["root"], "../../files/two_audio.mp4")
    assert "weakness" in row["text"].lower()  # the default stream speaks; the first one is silent


def test_variable_frame_rate_boxes_at_25_fps(hostile_run):
    seg, _ = _rows(hostile_run["out"])
    row = _seg_of(seg, hostile_run["root"], "../../files/vfr.mp4")
    assert abs(len(row["speaker_boxes"]) - round((row["end"] - row["start"]) * 25)) <= 1


def test_unicode_source_is_kept_verbatim(hostile_run):
    seg, _ = _rows(hostile_run["out"])
    rows = [r for r in seg if r["source"].endswith(inputs.UNICODE_NAME)]
    assert rows and all(r["source"] == inputs.source_of(hostile_run["root"], "../../files/" + inputs.UNICODE_NAME)
                        for r in rows)


def test_long_silence_is_rejected_fast(hostile_run):
    """10 minutes of silence: rejected (no_speech) from its audio alone, never decoding video
    beyond probe's one frame, at well over 10x real time."""
    s = next(s for s in OutputDir(hostile_run["out"]).summaries() if s.source.endswith("silence_10min.mp4"))
    secs = sum(t.seconds for t in s.times)
    assert {t.stage for t in s.times} <= {"probe", "separate", "vad"}  # no ASR, no vision
    ok = secs < 60
    harness.record("inputs", "silence_speed", "10 min of silence: time to reject", "< 60 s (10x real time)",
                   f"{secs:.1f} s of stage time ({600 / max(secs, 1e-3):.0f}x real time)", ok, secs)
    assert ok, secs


@pytest.mark.slow
def test_hours_of_silence_are_rejected_fast(tmp_path, models_dir):
    """Two hours of silence, generated on demand: no_speech at over 10x real time."""
    src = inputs.silence(tmp_path / "silence_2h.mp4", 7200)
    out = tmp_path / "out"
    t0 = time.perf_counter()
    run(compose(harness.overrides(models_dir, out, src, "labeler=none", "engine=sequential")))
    wall = time.perf_counter() - t0
    rej = OutputDir(out).read_rejects().to_pylist()
    ok = [(r["stage"], r["reason"]) for r in rej] == [("vad", "no_speech")] and wall < 720
    harness.record("inputs", "silence_2h", "2 hours of silence (slow)", "reject vad/no_speech, < 720 s",
                   f"{'; '.join(r['stage'] + '/' + r['reason'] for r in rej)} in {wall:.0f} s", ok, wall)
    assert ok, (rej, wall)
