"""One budget and one rate limit for the whole run: three label actors through real Ray Data, each
with its own pool, share the run's `RunLimits` actor; the fake Gemini server sees every request."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mikupal.config import compose  # noqa: E402
from mikupal.engine.commit import OutputDir  # noqa: E402
from mikupal.engine.ray_pipeline import _actor_class, _Secrets  # noqa: E402
from mikupal.labelers.budget import LIMITS_ENV, SharedLimits  # noqa: E402
from mikupal.records import SpeechSegment  # noqa: E402
from mikupal.report.summary import build_report  # noqa: E402
from mikupal.records import Payload, WorkItem  # noqa: E402
from mikupal.layout import OutputPaths  # noqa: E402
from mikupal.stages.label import LabelStage  # noqa: E402
from tests.fakes import FakeGemini, make_clip  # noqa: E402

KEY = "AIza-shared-budget-key"
ACTORS = 3


def items(n: int, videos: int = 6) -> list[WorkItem]:
    out = []
    per = n // videos
    for i in range(n):
        vid = f"v{i // per}"
        sid = f"{vid}_{i:09d}"
        seg = SpeechSegment(segment_id=sid, video_id=vid, source=f"{vid}.mp4", start=i * 10.0, end=i * 10.0 + 2.0,
                            text=f"utterance #{i:03d}# of the shared budget test")
        out.append(WorkItem(source=f"{vid}.mp4", video_id=vid, status="segment", fanout_total=per, data=Payload(segment=seg, clip_path="clips/c.mp4", audio_path=f"audio/{sid}.flac")))
    return out


def label_through_ray(cfg, out_dir: Path, work: list[WorkItem]) -> list[WorkItem]:
    """The label stage as the Ray engine runs it: an actor pool of ACTORS, secrets in the constructor."""
    import ray

    ds = ray.data.from_arrow([WorkItem.to_table([it]) for it in work])
    secrets = _Secrets({k: v for k, v in (("GEMINI_API_KEY", KEY), (LIMITS_ENV, _env(LIMITS_ENV)))})
    ds = ds.map_batches(_actor_class((LabelStage,)), fn_constructor_args=(cfg, str(out_dir), secrets), batch_size=4,
                        batch_format="pyarrow", concurrency=ACTORS, num_cpus=0.25)
    return [it for b in ds.iter_batches(batch_size=None, batch_format="pyarrow") for it in WorkItem.from_table(b)]


def _env(name: str) -> str:
    import os

    return os.environ[name]


@pytest.fixture()
def run_dir(tmp_path):
    make_clip(tmp_path / "clips" / "c.mp4", seconds=1.0)
    return tmp_path


def test_three_actors_share_one_budget_and_the_report_equals_the_segments(ray_session, run_dir, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    n, cap = 60, 0.05
    with FakeGemini(api_key=KEY) as srv:
        cfg = compose(["labeler=gemini", f"labeler.base_url={srv.url}", f"labeler.max_usd={cap}",
                       "labeler.requests_in_flight=4", "labeler.requests_per_minute=100000",
                       f"labeler.resources.workers={ACTORS}"])
        shared = SharedLimits(cfg.labeler, use_ray=True)
        try:
            out = label_through_ray(cfg, run_dir, items(n))
            state = shared.state()
            cost = shared.write_cost(OutputPaths(run_dir).cost)
        finally:
            shared.close()
        sent = sum(srv.counts.values())
    assert sorted(o.item_id for o in out) == sorted(i.item_id for i in items(n))  # none lost, none doubled
    labeled = [o for o in out if o.data.annotation is not None]
    exhausted = [o for o in out if o.rejects and o.rejects[0].reason == "budget_exhausted"]
    assert len(labeled) + len(exhausted) == n and 0 < len(labeled) < n
    # one budget for the run: a per-actor budget would have let ~3x the cap through
    assert state["spent"] <= cap + 1e-12 and state["sent"] == sent
    assert sum(o.data.annotation.cost_usd for o in labeled) <= cap
    on_disk = json.loads((OutputPaths(run_dir).cost).read_text())
    assert on_disk["requests"] == sent and cost is not None  # merged from every actor, written once
    assert on_disk["segments_labeled"] == len(labeled)
    assert on_disk["segments_rejected"] == {"budget_exhausted": len(exhausted)}
    assert on_disk["usd"] == pytest.approx(sum(o.data.annotation.cost_usd for o in labeled), abs=1e-6)
    # commit the videos as the driver does: report.json's cost is the sum of the segments' costs
    od = OutputDir(run_dir)
    by_video: dict[str, list[WorkItem]] = {}
    for o in out:
        by_video.setdefault(o.video_id, []).append(o)
    for vid, its in by_video.items():
        od.commit_video(vid, its)
    report = build_report(od, 1.0, set(by_video))
    seg = od.read_segments()
    assert report["cost_usd"] == pytest.approx(sum(seg.column("cost_usd").to_pylist()), abs=1e-6)  # rounded to 6 places
    pending = list((run_dir / "labeler" / "pending").glob("*.parquet"))  # the rejected ones, kept to relabel
    assert sum(pq.read_metadata(p).num_rows for p in pending) == len(exhausted)


def test_requests_per_minute_hold_across_actors(ray_session, run_dir, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    rpm, n = 600, 36  # 10 per second (one second of burst): 36 requests need >= 2.6 s in all
    with FakeGemini(api_key=KEY) as srv:
        cfg = compose(["labeler=gemini", f"labeler.base_url={srv.url}", "labeler.requests_in_flight=8",
                       f"labeler.requests_per_minute={rpm}", f"labeler.resources.workers={ACTORS}"])
        shared = SharedLimits(cfg.labeler, use_ray=True)
        try:
            out = label_through_ray(cfg, run_dir, items(n))
        finally:
            shared.close()
        times = sorted(e["t"] for e in srv.log if e["outcome"] == "ok")
    assert len(times) == n and all(o.data.annotation is not None for o in out)
    rate, burst = rpm / 60, rpm / 60
    # The server sees arrival times, not grant times: an actor's first request also opens its HTTP
    # connection, so the burst can arrive late and share a 1 s window with the next second's grants.
    # Allow half a second of transit jitter; per-actor limiters would put all 36 in the first window.
    transit_s = 0.5
    for i, t in enumerate(times):  # any 1 s window: at most rate * (1 s + jitter) + the burst (+1 for clock skew)
        in_window = sum(1 for u in times[i:] if u < t + 1.0)
        assert in_window <= rate * (1.0 + transit_s) + burst + 1, (i, in_window)
    assert times[-1] - times[0] >= (n - burst) / rate - 0.3
