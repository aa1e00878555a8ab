"""The local engine (the plan's workers as threads of one process) and `engine=auto`'s choice.

Stand-in stages keep these fast: a fan-out of a few utterances per video, and a pool of two
workers after it; the real stages run under it in the integration tests (the default engine)."""

from __future__ import annotations

import threading
import time

import pytest

from mikupal.config import Resources, compose
from mikupal.engine import local
from mikupal.engine.choice import resolved_kind
from mikupal.errors import USER_ERROR_REASON, ModelLoadError
from mikupal.records import Payload, SpeechSegment, WorkItem
from mikupal.stages.base import Stage


class Transcribe(Stage):
    """A fan-out holding a model: n utterances per video, passed on as they come."""

    name = "asr"
    level = "video"
    fans_out = True
    holds_model = True
    n = 5

    @property
    def resources(self) -> Resources:
        return Resources(num_cpus=0.25, workers=1)

    def process(self, item):
        for k in range(self.n):
            it = item.model_copy(deep=True)
            seg = SpeechSegment(segment_id=f"{item.video_id}_{k:09d}", video_id=item.video_id, source=item.source,
                                start=k * 3.0, end=k * 3.0 + 2.0, text="hi")
            it.status, it.data = "segment", Payload(segment=seg)
            if k > 0:
                it.rejects, it.times = [], []
            yield it
            time.sleep(0.01)


class Look(Stage):
    """A pool of two workers after the fan-out; says which thread did each item."""

    name = "vision"
    holds_model = True
    seen: dict[str, str] = {}
    broken = False

    @property
    def resources(self) -> Resources:
        return Resources(num_cpus=1, workers=2)

    def setup(self) -> None:
        if self.broken:
            raise ModelLoadError("vision stage could not load /models/x.onnx: truncated")

    def process(self, item):
        time.sleep(0.02)  # long enough that both workers get some
        Look.seen[item.data.segment.segment_id] = threading.current_thread().name
        yield item


@pytest.fixture()
def fake_stages(monkeypatch):
    classes = [Transcribe, Look]
    monkeypatch.setattr(local, "stage_classes", lambda cfg: classes)
    monkeypatch.setattr("mikupal.engine.plan.stage_classes", lambda cfg: classes)
    Look.seen = {}
    Look.broken = False
    return classes


def _videos(n: int) -> list[WorkItem]:
    return [WorkItem(source=f"v{i}.mp4", video_id=f"v{i}", group=i) for i in range(n)]


def test_every_utterance_goes_through_the_pool_and_comes_out_once(fake_stages, tmp_path):
    cfg = compose([f"output={tmp_path}", "engine=local", "engine.num_cpus=2"])
    out = list(local.stream(cfg, tmp_path, _videos(3)))
    ids = sorted(it.data.segment.segment_id for it in out)
    assert ids == sorted(f"v{i}_{k:09d}" for i in range(3) for k in range(Transcribe.n))
    assert all(it.status == "segment" and not it.rejects for it in out)
    assert len(set(Look.seen.values())) == 2, "both workers of the pool took items"
    # every stage's time rides on its items, as under Ray: the fan-out's on each video's last utterance
    last = [it for it in out if it.fanout_total]
    assert len(last) == 3 and all(t.stage == "asr" for it in last for t in it.times[:1])
    assert not [t for t in threading.enumerate() if t.name.startswith("mikupal-") and t.is_alive()
                and t.name != "mikupal-time-limits"], "the workers ended with the run"


def test_a_model_that_will_not_load_comes_back_on_the_items(fake_stages, tmp_path):
    """As a Ray worker does: the items carry the run's one-line error, which the driver raises."""
    Look.broken = True
    cfg = compose([f"output={tmp_path}", "engine=local", "engine.num_cpus=2"])
    out = list(local.stream(cfg, tmp_path, _videos(1)))
    assert out and all(it.rejects and it.rejects[-1].reason == USER_ERROR_REASON for it in out)
    assert "could not load /models/x.onnx" in out[0].rejects[-1].message


def test_a_bug_in_a_worker_ends_the_run_instead_of_hanging_it(fake_stages, tmp_path, monkeypatch):
    def broken_chain(stages, batch):
        raise RuntimeError("executor bug")

    monkeypatch.setattr(local, "chain", broken_chain)
    cfg = compose([f"output={tmp_path}", "engine=local", "engine.num_cpus=2"])
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="executor bug"):
        list(local.stream(cfg, tmp_path, _videos(2)))
    assert time.monotonic() - t0 < 10


def test_closing_the_stream_early_stops_the_workers(fake_stages, tmp_path):
    cfg = compose([f"output={tmp_path}", "engine=local", "engine.num_cpus=2"])
    gen = local.stream(cfg, tmp_path, _videos(20))
    next(gen)
    gen.close()  # what the driver does on a stop request or a run-level error
    time.sleep(0.5)
    assert not [t for t in threading.enumerate() if t.name.startswith("mikupal-") and t.is_alive()
                and t.name != "mikupal-time-limits"]


def test_auto_is_ray_with_a_cluster_or_gpus_and_local_otherwise(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    base = [f"output={tmp_path}"]
    assert compose(base).engine.kind == "auto"
    assert resolved_kind(compose(base)) == "local"
    assert resolved_kind(compose(base + ["engine.address=auto"])) == "ray"
    assert resolved_kind(compose(base + ["profile=gpu"])) == "ray"
    assert resolved_kind(compose(base + ["engine=sequential"])) == "sequential"
    assert resolved_kind(compose(base + ["engine=ray"])) == "ray"
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")  # what `ray job submit` sets for its entrypoint
    assert resolved_kind(compose(base)) == "ray"


class Probe(Stage):
    """A video-level task stage (two threads here): videos come out in whatever order they finish."""

    name = "probe"
    level = "video"

    @property
    def resources(self) -> Resources:
        return Resources(num_cpus=0.25, workers=1)

    def process(self, item):
        time.sleep(0.05 if int(item.video_id[1:]) % 2 == 0 else 0.001)  # the even ones finish late
        yield item


class Packing(Stage):
    """Takes three videos per call, as the ASR does when it packs short videos into shared windows."""

    name = "asr"
    level = "video"
    holds_model = True
    calls: list[list[str]] = []

    @property
    def resources(self) -> Resources:
        return Resources(num_cpus=0.25, workers=1, items_per_call=3)

    def iter_items(self, items):
        Packing.calls.append([it.video_id for it in items])
        yield from super().iter_items(items)

    def process(self, item):
        yield item


def test_a_call_of_several_videos_gets_its_group_whole_and_in_input_order(tmp_path, monkeypatch):
    """The packing's windows depend on the call's order: the same videos, in input order, every run."""
    classes = [Probe, Packing]
    monkeypatch.setattr(local, "stage_classes", lambda cfg: classes)
    monkeypatch.setattr("mikupal.engine.plan.stage_classes", lambda cfg: classes)
    Packing.calls = []
    videos = [WorkItem(source=f"v{i}.mp4", video_id=f"v{i}", group=i // 3) for i in range(6)]
    cfg = compose([f"output={tmp_path}", "engine=local", "engine.num_cpus=2", "engine.fuse_light_stages=false"])
    out = list(local.stream(cfg, tmp_path, videos))
    assert sorted(it.video_id for it in out) == [f"v{i}" for i in range(6)]
    assert sorted(Packing.calls) == [["v0", "v1", "v2"], ["v3", "v4", "v5"]]
