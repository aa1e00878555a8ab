"""The same items give the same committed files, whatever order the workers finished them in, and
the ASR decodes without sampling unless asked to (the sources of run-to-run differences)."""

from __future__ import annotations

import random

import numpy as np
import pyarrow.parquet as pq

from mikupal.config import compose
from mikupal.engine.commit import OutputDir
from mikupal.records import Payload, Reject, SpeechSegment, WorkItem


def _items(vid: str = "vid") -> list[WorkItem]:
    """One video's items as they reach the writer: utterances with voices (two people, two of them
    alike enough that the clustering's order matters), a dropped one, span rejects."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=256), rng.normal(size=256)
    voices = [a, a + 0.9 * b, b, a + 0.05 * rng.normal(size=256), b + 0.9 * a, a]
    items = []
    for i, v in enumerate(voices):
        seg = SpeechSegment(segment_id=f"{vid}_{i * 5000:09d}", video_id=vid, source=f"{vid}.mp4", start=i * 5.0,
                            end=i * 5.0 + 3.0, text=f"utterance {i}")
        it = WorkItem(source=f"{vid}.mp4", video_id=vid, status="segment", fanout_total=len(voices) if i == 5 else 0,
                      data=Payload(segment=seg, speaker_embedding=(v / np.linalg.norm(v)).astype(np.float32).tolist(),
                                   speaker_boxes=[[10.0, 10.0, 50.0, 50.0]]))
        it.rejects.append(Reject.span(vid, f"{vid}.mp4", "asr", "no_transcript", "pause", i * 5.0 + 3.0, i * 5.0 + 5.0))
        if i == 2:
            it.reject("quality", "low_quality", "dnsmos_ovrl 2.41 < 3.00")
        items.append(it)
    return items


def _files(root) -> dict[str, list[dict]]:
    out = {}
    for sub in ("segments", "rejects", "speakers"):
        for f in sorted((root / sub).glob("*.parquet")):
            out[f"{sub}/{f.name}"] = pq.read_table(f).to_pylist()
    return out


def test_commit_is_the_same_whatever_order_the_items_arrive_in(tmp_path):
    reference = None
    for k in range(4):
        items = _items()
        random.Random(k).shuffle(items)
        root = tmp_path / f"out{k}"
        OutputDir(root).commit_video("vid", items)
        files = _files(root)
        assert files["segments/vid.parquet"] and files["rejects/vid.parquet"] and files["speakers/vid.parquet"]
        if reference is None:
            reference = files
        assert files == reference, f"order {k} committed different files"


def test_asr_decodes_without_sampling_by_default():
    assert compose([]).asr.temperature == [0.0]
    assert compose(["profile=cpu"]).asr.temperature == [0.0]
    assert compose(["asr.temperature=[0.0,0.2,0.4]"]).asr.temperature == [0.0, 0.2, 0.4]


def _summary(out: OutputDir, vid: str, duration: float, final: bool = True) -> None:
    from mikupal.committed import VideoSummary

    out.marker(vid).parent.mkdir(parents=True, exist_ok=True)
    out.marker(vid).write_text(VideoSummary(key=vid, video_id=vid, source=f"{vid}.mp4", duration=duration,
                                            final=final).model_dump_json())


def test_a_resumed_run_plans_whole_groups_with_placeholders_for_committed_long_videos(tmp_path):
    """Groups of items_per_call videos in input order: a group with nothing left is skipped; in
    one with an unfinished video, committed short videos (their text depends on the group) are
    redone, and a committed long one is a placeholder that keeps the group's shape."""
    from mikupal.engine.collector import Progress
    from mikupal.engine.inputs import InputSet
    from mikupal.engine.run import _plan

    cfg = compose(["asr.resources.items_per_call=3", "asr.pack=true"])  # packing: a short video's text depends on its group
    out = OutputDir(tmp_path / "out")
    inputs = InputSet(videos=[(f"v{i}.mp4", f"/in/v{i}.mp4", f"v{i}") for i in range(8)])
    for vid, duration in [("v0", 5.0), ("v1", 4.0), ("v2", 6.0), ("v3", 5.0), ("v5", 45.0), ("v6", 3.0)]:
        _summary(out, vid, duration)
    _summary(out, "v7", 4.0, final=False)  # a transient failure: redone
    progress = Progress(videos_total=8)
    todo = _plan(cfg, out, inputs, collector=None, progress=progress)
    assert [(it.video_id, it.group, it.status) for it in todo] == [
        ("v3", 1, "video"), ("v4", 1, "video"), ("v5", 1, "placeholder"),  # v3 short: redone with v4
        ("v6", 2, "video"), ("v7", 2, "video"),
    ]
    assert progress.videos_done == 4  # v0-v2 and the placeholder v5
    assert not out.marker("v3").exists() and out.marker("v5").exists()


def test_without_packing_a_committed_short_video_is_not_redone(tmp_path):
    """asr.pack off (the default): no video's text depends on another's, so videos are not grouped
    (one per call, whatever `items_per_call` says) and a committed one is not planned again."""
    from mikupal.engine.collector import Progress
    from mikupal.engine.inputs import InputSet
    from mikupal.engine.run import _plan

    out = OutputDir(tmp_path / "out")
    inputs = InputSet(videos=[(f"v{i}.mp4", f"/in/v{i}.mp4", f"v{i}") for i in range(3)])
    _summary(out, "v0", 5.0)
    todo = _plan(compose(["asr.resources.items_per_call=3"]), out, inputs, collector=None, progress=Progress(videos_total=3))
    assert [(it.video_id, it.group, it.status) for it in todo] == [("v1", -1, "video"), ("v2", -1, "video")]
    assert out.marker("v0").exists()


def test_one_video_per_call_plans_as_before(tmp_path):
    from mikupal.engine.collector import Progress
    from mikupal.engine.inputs import InputSet
    from mikupal.engine.run import _plan

    cfg = compose(["asr.resources.items_per_call=1"])
    out = OutputDir(tmp_path / "out")
    _summary(out, "v1", 5.0)
    todo = _plan(cfg, out, InputSet(videos=[(f"v{i}.mp4", f"/in/v{i}.mp4", f"v{i}") for i in range(3)]), None,
                 Progress(videos_total=3))
    assert [(it.video_id, it.group, it.status) for it in todo] == [("v0", -1, "video"), ("v2", -1, "video")]


def test_a_batch_spanning_two_groups_is_worked_on_group_by_group(caplog):
    """Ray Data bundles a video-level stage's batch from consecutive rows (rows in input order): one
    group. Should it ever bundle across groups, each group still gets a call of its own, and the
    log says so."""
    from mikupal.engine.calls import calls as _calls

    calls = []

    class Stage:
        name, level = "asr", "video"

        def iter_items(self, items):
            calls.append([it.video_id for it in items])
            yield from items

    batch = WorkItem.to_table([WorkItem(source=f"{v}.mp4", video_id=v, group=g) for v, g in [("a", 0), ("b", 0), ("c", 1)]])
    with caplog.at_level("WARNING"):
        assert [it.video_id for it in _calls(Stage(), batch)] == ["a", "b", "c"]
    assert calls == [["a", "b"], ["c"]] and "2 groups" in caplog.text
    calls.clear()
    list(_calls(Stage(), WorkItem.to_table([WorkItem(source="d.mp4", video_id="d", group=2)])))
    assert calls == [["d"]]
