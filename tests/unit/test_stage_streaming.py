"""The streamed fan-out protocol: successors pass on as a stage yields them, a failure after some
of them still ends in a reject, and the writer commits a video once all of its items arrived."""

from __future__ import annotations

import pytest

from mikupal.config import compose
from mikupal.engine.collector import Collector, Progress
from mikupal.errors import StageError
from mikupal.records import SpeechSegment
from mikupal.records import Payload, WorkItem
from mikupal.stages.base import Stage


def _segment(k: int) -> SpeechSegment:
    return SpeechSegment(segment_id=f"v_{k:09d}", video_id="v", source="x.mp4", start=k * 3.0, end=k * 3.0 + 2.5, text="hi")


class FanOut(Stage):
    name = "fan"
    level = "video"
    fans_out = True

    def __init__(self, cfg, out, n: int, fail_after: int | None = None, error: Exception | None = None):
        super().__init__(cfg, out)
        self.n, self.fail_after, self.error = n, fail_after, error
        self.passed_on = 0  # how many successors the consumer had taken when the stage produced the next

    def process(self, item):
        for k in range(self.n):
            if self.fail_after is not None and k == self.fail_after:
                raise self.error or RuntimeError("boom")
            it = item.model_copy(deep=True)
            it.status, it.data.segment = "segment", _segment(k)
            if k > 0:
                it.rejects, it.times = [], []
            yield it


@pytest.fixture()
def cfg(tmp_path):
    return compose([f"output={tmp_path}"])


def _video() -> WorkItem:
    return WorkItem(source="x.mp4", video_id="v")


def test_successors_stream_and_only_the_last_knows_the_total(cfg, tmp_path):
    st = FanOut(cfg, tmp_path, 4)
    gen = st.iter_item(_video())
    first = next(gen)  # available before the stage has produced its last successor
    assert first.data.segment.segment_id == "v_000000000" and first.fanout_total == 0
    rest = list(gen)
    assert [i.fanout_total for i in [first] + rest] == [0, 0, 0, 4]
    assert [t.stage for i in [first] + rest for t in i.times] == ["fan"], "the stage's time rides once, on the last"


@pytest.mark.parametrize("error,reason", [(RuntimeError("boom"), "stage_error"), (StageError("bad_thing", "broken"), "bad_thing")])
def test_a_failure_after_some_successors_adds_one_reject_item(cfg, tmp_path, error, reason):
    out = list(FanOut(cfg, tmp_path, 5, fail_after=2, error=error).iter_item(_video()))
    assert [i.status for i in out] == ["segment", "segment", "dropped"]
    assert [i.fanout_total for i in out] == [0, 0, 3]
    assert out[-1].rejects[-1].reason == reason and out[-1].rejects[-1].stage == "fan"


def test_a_failure_before_any_successor_rejects_the_video(cfg, tmp_path):
    out = list(FanOut(cfg, tmp_path, 5, fail_after=0).iter_item(_video()))
    assert len(out) == 1 and out[0].status == "dropped" and out[0].fanout_total == 1


def test_a_stage_that_yields_nothing_loses_no_item(cfg, tmp_path):
    out = list(FanOut(cfg, tmp_path, 0).iter_item(_video()))
    assert len(out) == 1 and out[0].rejects[-1].reason == "lost_item"


class _Out:
    def __init__(self):
        self.committed: list[list[WorkItem]] = []

    def commit_video(self, key, items):
        from mikupal.committed import VideoSummary

        self.committed.append(items)
        return VideoSummary(key=key, video_id=key, source="x.mp4", kept=len(items))


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 0, 2, 1], [1, 3, 3, 0, 2]])
def test_collector_commits_when_all_arrived_in_any_order_once(cfg, tmp_path, order):
    items = list(FanOut(cfg, tmp_path, 4).iter_item(_video()))
    out = _Out()
    col = Collector(out, Progress(videos_total=1))
    for k in order:  # [1, 3, 3, ...]: a retried task passes an item on twice
        col.add(items[k].model_copy(deep=True))
    assert len(out.committed) == 1 and len(out.committed[0]) == 4
    assert sorted(i.data.segment.segment_id for i in out.committed[0]) == [f"v_{k:09d}" for k in range(4)]


def test_pool_workers_get_one_thread_per_whole_cpu():
    from mikupal.engine.plan import worker_threads

    assert worker_threads(0.5) == 1
    assert worker_threads(1) == 1
    assert worker_threads(4) == 4


def test_a_started_stage_caps_numpys_blas_pool_at_its_threads(cfg, tmp_path):
    """OpenBLAS's idle threads spin: a worker's stage caps the pool at the worker's threads."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    if not blas_threads():
        pytest.skip("no BLAS library loaded")
    with threadpool_limits(limits=2, user_api="blas"):  # restored afterwards for the other tests
        assert set(blas_threads()) == {2}
        stage = FanOut(cfg, str(tmp_path), n=1)
        stage.threads = 1
        stage.start()
        assert set(blas_threads()) == {1}


class Slow(Stage):
    name = "slow"

    def __init__(self, cfg, out, work_s: float):
        super().__init__(cfg, out)
        self.work_s = work_s

    def process(self, item):
        import time

        t = time.monotonic()
        while time.monotonic() - t < self.work_s:  # Python-level work: interruptible
            sum(range(1000))
        yield item


def test_an_item_over_its_time_limit_is_rejected_with_timeout(tmp_path):
    cfg = compose([f"output={tmp_path}", "engine.item_timeout_s=0.3", "engine.item_timeout_per_media_s=0"])
    out = list(Slow(cfg, tmp_path, 5.0).iter_item(_video()))
    assert len(out) == 1 and out[0].status == "dropped"
    r = out[0].rejects[-1]
    assert r.reason == "timeout" and "slow" in r.message and "engine.item_timeout_s" in r.message
    assert out[0].times[-1].seconds < 2.0, "stopped at the limit, not after the whole work"


def test_the_limit_scales_with_the_item_and_can_be_off(tmp_path):
    seg = _video().model_copy(update={"data": Payload(segment=_segment(0)), "status": "segment"})  # 2.5 s of media
    cfg = compose([f"output={tmp_path}", "engine.item_timeout_s=0.1", "engine.item_timeout_per_media_s=0.4"])
    assert Slow(cfg, tmp_path, 0)._time_limit_s(seg) == pytest.approx(1.1)
    assert list(Slow(cfg, tmp_path, 0.5).iter_item(seg))[0].status == "segment"  # 0.5 s < 1.1 s
    off = compose([f"output={tmp_path}", "engine.item_timeout_s=0", "engine.item_timeout_per_media_s=0"])
    assert Slow(off, tmp_path, 0)._time_limit_s(seg) is None


def test_the_alarm_never_fires_in_the_consumers_code(cfg, tmp_path):
    """While a streamed successor is handed on, the alarm is off: the consumer is never interrupted.
    The deadline is wall-clock, so the stage's next piece of work finds it passed."""
    import time

    cfg = compose([f"output={tmp_path}", "engine.item_timeout_s=0.5", "engine.item_timeout_per_media_s=0"])
    gen = FanOut(cfg, tmp_path, 3).iter_item(_video())
    first = next(gen)
    time.sleep(0.8)  # the consumer is slow: no StageError is raised here
    rest = list(gen)
    assert first.status == "segment"
    # the clock kept running (0.8 s > 0.5 s) so the next piece of work finds the deadline passed
    assert rest[-1].rejects and rest[-1].rejects[-1].reason == "timeout"


def test_a_worker_thread_gets_its_time_limit_too(tmp_path):
    """The local engine's workers are threads: the limit reaches them through the watchdog, with
    the same reject, and a thread within its limit is never interrupted."""
    import threading

    cfg = compose([f"output={tmp_path}", "engine.item_timeout_s=0.3", "engine.item_timeout_per_media_s=0"])
    got: dict[str, list] = {}

    def work(name: str, seconds: float) -> None:
        got[name] = list(Slow(cfg, tmp_path, seconds).iter_item(_video()))

    threads = [threading.Thread(target=work, args=("slow", 5.0)), threading.Thread(target=work, args=("quick", 0.05))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    slow, quick = got["slow"], got["quick"]
    assert len(slow) == 1 and slow[0].status == "dropped"
    r = slow[0].rejects[-1]
    assert r.reason == "timeout" and "slow" in r.message and "engine.item_timeout_s" in r.message
    assert slow[0].times[-1].seconds < 2.0, "stopped at the limit, not after the whole work"
    assert quick[0].status == "video" and not quick[0].rejects


def test_the_sequential_engine_passes_a_groups_first_video_down_the_chain_before_the_next_is_split(cfg, tmp_path, monkeypatch):
    """A group of videos shares one fan-out call, but each utterance goes down the later stages as
    it comes: the first video's utterances are done (and can commit) before the second is split."""
    from mikupal.config import Resources
    from mikupal.engine import sequential

    log: list[str] = []

    class Split(FanOut):
        resources = Resources(num_cpus=1, items_per_call=2)

        def __init__(self, cfg, out, threads=None):
            super().__init__(cfg, out, n=2)

        def process(self, item):
            log.append(f"split {item.video_id}")
            yield from super().process(item)

    class Score(Stage):
        name = "score"
        level = "segment"

        def __init__(self, cfg, out, threads=None):
            super().__init__(cfg, out)

        def process(self, item):
            log.append(f"score {item.video_id}")
            yield item

    from mikupal.engine import stages as engine_stages

    monkeypatch.setattr(sequential, "stage_classes", lambda cfg: [Split, Score])
    monkeypatch.setattr(engine_stages, "stage_classes", lambda cfg: [Split, Score])
    assert sequential.video_group_size(cfg) == 2
    videos = [WorkItem(source=f"{v}.mp4", video_id=v, group=0) for v in ("a", "b")]
    out = list(sequential.stream(cfg, tmp_path, videos))
    assert len(out) == 4
    assert log.index("score a") < log.index("split b"), log
