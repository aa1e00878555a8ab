"""Batching across the utterances of one call (`vision/batching.py`): the calls of threads working
side by side are merged into batched model passes, and the vision stage gives the same answers
batched (`items_per_call` 4, the utterances in threads) as one utterance at a time, on CPU."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mikupal.stages.side_by_side import side_by_side
from mikupal.vision.batching import BatchedEncoders, Gather


def test_gather_merges_the_calls_of_threads_working_side_by_side():
    gather = Gather(max_wait_s=5.0)  # long: only "everyone is waiting" may flush
    seen: list[list[int]] = []

    def square_all(xs):
        seen.append(list(xs))
        return [x * x for x in xs]

    def work(x):
        time.sleep(0.01 * x)  # arrive at different times
        first = gather.run("sq", square_all, x)
        second = gather.run("sq", square_all, first + 1)
        return first, second

    out = dict(side_by_side(work, [1, 2, 3, 4], gather))
    assert out == {i: (x * x, (x * x + 1) ** 2) for i, x in enumerate([1, 2, 3, 4])}
    assert [sorted(b) for b in seen] == [[1, 2, 3, 4], [2, 5, 10, 17]]  # two passes, all four in each
    assert gather.batches["sq"] == [4, 4]


def test_gather_does_not_wait_long_for_a_thread_busy_elsewhere():
    gather = Gather(max_wait_s=0.05)
    busy = threading.Event()

    def work(x):
        if x == 0:
            busy.wait(2.0)  # holds no model call: the others must not wait for it
            return gather.run("q", lambda xs: xs, x)
        r = gather.run("q", lambda xs: xs, x)
        if x == 2:
            busy.set()
        return r

    t = time.perf_counter()
    assert sorted(v for _, v in side_by_side(work, [0, 1, 2], gather)) == [0, 1, 2]
    assert time.perf_counter() - t < 1.5


def test_side_by_side_times_out_and_passes_errors_on():
    stop = threading.Event()

    def work(x):
        if x == "slow":
            stop.wait(5)
        if x == "bad":
            raise ValueError("bad")
        return x

    got = dict(side_by_side(work, ["ok", "slow"], Gather(), timeout_s=0.5))
    stop.set()
    assert got[0] == "ok" and isinstance(got[1], TimeoutError)
    with pytest.raises(ValueError, match="bad"):  # a stage's own errors are rejects already: anything else stops
        list(side_by_side(work, ["ok", "bad"], Gather()))


def test_batched_encoders_equal_one_call_each():
    import torch

    from mikupal.nets.light_asd import LightASD
    from mikupal.vision.asd import ActiveSpeakerModel

    torch.manual_seed(0)
    model = ActiveSpeakerModel(LightASD().eval(), "light-asd", runtime="onnx", threads=1)
    rng = np.random.default_rng(0)
    faces = [torch.from_numpy(rng.integers(0, 255, (1, t, 112, 112)).astype(np.float32)) for t in (25, 25, 40, 25)]
    mfcc = [torch.from_numpy(rng.standard_normal((1, 4 * t, 13)).astype(np.float32)) for t in (25, 25, 40, 25)]
    alone = [(model.encoders.encode_visual(v), model.encoders.encode_audio(a)) for v, a in zip(faces, mfcc)]
    gather = Gather(max_wait_s=5.0)
    batched = BatchedEncoders(model.encoders, gather)
    out = dict(side_by_side(lambda k: (batched.encode_visual(faces[k]), batched.encode_audio(mfcc[k])), range(4), gather))
    for k in range(4):
        for got, want in zip(out[k], alone[k]):
            assert got.shape == want.shape
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)
    assert sorted(gather.batches["asd_visual"]) == [4]  # one pass, two shapes in it (25 x3, 40)


# ---------------------------------------------------------------- the stage, batched and not


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", *args], check=True, timeout=120)


@pytest.fixture(scope="module")
def stages(tmp_path_factory, models_dir):
    from mikupal.config import compose
    from mikupal.stages.vision import VisionStage

    root = tmp_path_factory.mktemp("vision_batching")
    models = root / "models"
    models.mkdir()
    for k in ("yunet", "light-asd", "ge2e"):  # ge2e: the stage's voice check of short turns
        if not (models_dir / k).exists():
            pytest.skip(f"{k} weights absent")
        os.symlink((models_dir / k).resolve(), models / k)
    base = [f"models_dir={models}", "profile=cpu", "engine.threads=1", "asd.precision=fp32"]  # fp32: the encoders a GPU runs
    one = VisionStage(compose(base), root / "one", threads=1)
    four = VisionStage(compose(base + ["+faces.resources.items_per_call=4"]), root / "four", threads=1)
    return one, four


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not on PATH")
def test_vision_batched_equals_one_at_a_time(stages, media, tmp_path):
    """Four utterances per call (one of two faces, so ASD scores every frame of both) give the same
    speakers, boxes and ASD scores as each alone."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
    from test_vision import make_item

    from mikupal.records import WorkItem

    one, four = stages
    two_faces = tmp_path / "two_faces.mp4"
    c1, c2 = str(media / "vr_face1.mp4"), str(media / "vr_face2.mp4")
    _ffmpeg("-i", c1, "-i", c2, "-filter_complex", "[0:v]fps=25,scale=-2:480,setsar=1[l];[1:v]fps=25,scale=-2:480,setsar=1[r];"
            "[l][r]hstack=inputs=2:shortest=1[v]", "-map", "[v]", "-map", "0:a", "-c:v", "libx264", "-preset",
            "ultrafast", "-c:a", "aac", "-t", "5", str(two_faces))
    paths = [media / "vr_face1.mp4", media / "vr_face3.mp4", two_faces, media / "vr_face4.mp4"]
    items = [make_item(p, tmp_path / "work") for p in paths]
    alone = {}
    for it in items:
        for out in one.run_item(it.model_copy(deep=True)):
            alone[out.item_id] = out
    assert four.items_per_call == 4
    batched = {out.item_id: out for out in WorkItem.from_table(four.run_batch(WorkItem.to_table(items)))}
    assert batched.keys() == alone.keys() and len(alone) >= 4
    assert four.batching is not None and max(four.batching.batches["detect"]) > 1  # really batched
    assert max(four.batching.batches["asd_visual"]) > 1
    for key, a in alone.items():
        b = batched[key]
        assert (a.status, [r.reason for r in a.rejects]) == (b.status, [r.reason for r in b.rejects]), key
        if a.status == "dropped":
            continue
        da, db = a.data, b.data
        assert da.speaker_track == db.speaker_track
        np.testing.assert_allclose(np.asarray(da.speaker_boxes), np.asarray(db.speaker_boxes), atol=1e-6)
        assert da.asd_score == pytest.approx(db.asd_score, abs=1e-3)
        assert da.speaking_fraction == pytest.approx(db.speaking_fraction, abs=1e-6)
