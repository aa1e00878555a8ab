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
