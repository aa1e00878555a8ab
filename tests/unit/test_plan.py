"""The placement plan (`engine/plan.py`): a pure function of the configuration and the cluster's
CPUs and GPUs, so the GPU placements are tested for clusters this machine is not (1, 2 and 8
logical GPUs with 16 and 64 CPUs); one check reads a real Ray cluster's resources."""

from __future__ import annotations

import json

import pytest

from mikupal.config import compose
from mikupal.engine.plan import Cluster, make_plan, pool_size, render
from mikupal.errors import UserError


def _by_stage(plan):
    return {s.stage: s for s in plan.stages}


@pytest.fixture(scope="module")
def gpu_cfg():
    return compose(["profile=gpu", "labeler=none"])


@pytest.mark.parametrize("gpus", [1, 2, 8])
@pytest.mark.parametrize("cpus", [16, 64])
def test_gpu_plan_fits_and_shares_each_gpu(gpu_cfg, gpus, cpus):
    plan = make_plan(gpu_cfg, Cluster(cpus=cpus, gpus=gpus))
    plan.check_fits()  # every pool fits beside the tasks: Ray will not wait forever
    assert plan.pool_cpus + plan.task_cpus <= cpus + 1e-6
    stages = _by_stage(plan)
    gpu_pools = [s for s in plan.stages if s.num_gpus > 0]
    assert {s.stage for s in gpu_pools} == {"separate", "asr", "speaker", "quality", "vision"}
    for s in gpu_pools:
        assert s.actors and s.workers % gpus == 0, s  # the same number of workers on every GPU
        assert s.threads == max(1, int(s.num_cpus + 1e-9))
    per_gpu = sum(s.num_gpus * s.workers for s in gpu_pools) / gpus
    assert per_gpu <= 1.0 + 1e-9  # the stages share each GPU, never ask for more than it
    vision = stages["vision"]
    assert vision.items_per_call == 8  # utterances batched across one call (detection, ASD)
    per_gpu_cores = vision.num_cpus * vision.workers / gpus
    spare = (cpus - plan.task_cpus - sum(s.num_cpus * s.workers for s in plan.stages if s.actors and s is not vision)) / gpus
    assert per_gpu_cores == pytest.approx(spare, abs=0.02 * vision.workers / gpus)  # vision gets what the others leave
    if cpus / gpus >= 8:  # a well-fed GPU: at least 4 decode/detection cores (benchmarks/README.md: ~20x real time)
        assert per_gpu_cores >= 4 and vision.workers >= 4 * gpus
    assert vision.workers // gpus <= gpu_cfg.engine.max_workers_per_gpu
    assert stages["probe"].workers is None and not stages["probe"].actors and stages["vad"].num_gpus == 0


def test_the_eight_gpu_placement_is_printed(gpu_cfg):
    plan = make_plan(gpu_cfg, Cluster(cpus=64, gpus=8))
    text = render(plan)
    assert text.splitlines()[0].startswith("cluster: 64 CPUs, 8 GPUs")
    lines = {line.split()[0]: line for line in text.splitlines()[2:] if line and not line.startswith(("pools", "note"))}
    assert lines["vision"].split()[3:6] == ["32", "1.24", "0.05"]  # 4 per GPU, 1.24 CPUs, 0.05 GPU each
    assert "CUDAExecutionProvider" in lines["separate"] and "CUDAExecutionProvider" in lines["quality"]
    assert "ctranslate2 cuda float16" in lines["asr"] and "torch cuda" in lines["speaker"]
    assert any(n.startswith("vision: 4 workers per GPU") for n in plan.notes)
    assert json.loads(json.dumps(plan.to_dict()))["cluster"] == {"cpus": 64, "gpus": 8}


def test_a_cpu_starved_gpu_cluster_shrinks_the_gpu_pools_and_says_so(gpu_cfg):
    plan = make_plan(gpu_cfg, Cluster(cpus=16, gpus=8))
    plan.check_fits()
    stages = _by_stage(plan)
    assert stages["vision"].workers == 8 and stages["vision"].num_cpus >= 1  # one decode core per GPU at least
    assert stages["asr"].num_cpus < gpu_cfg.asr.resources.num_cpus
    assert any("scaled by" in n for n in plan.notes) and any("6x real time per GPU" in n for n in plan.notes)


def test_a_cluster_too_small_is_one_line():
    plan = make_plan(compose(["profile=gpu", "labeler=none"]), Cluster(cpus=4, gpus=8))
    with pytest.raises(UserError, match="the stage pools need .* CPUs"):
        plan.check_fits()
    with pytest.raises(UserError, match="GPUs but the cluster has 2 and 0"):
        make_plan(compose(["profile=gpu"]), Cluster(cpus=2, gpus=0)).check_fits()


def test_cpu_profile_places_as_before():
    cfg = compose(["labeler=none"])
    stages = _by_stage(make_plan(cfg, Cluster(cpus=2)))
    assert stages["vision"].workers == 2 and stages["vision"].num_cpus == 0.5 and stages["vision"].num_gpus == 0
    assert stages["asr"].workers == 1 and stages["asr"].execution.endswith("ctranslate2 cpu int8")
    assert not stages["vad"].actors and all(s.num_gpus == 0 for s in stages.values())
    assert "CPUExecutionProvider" in stages["quality"].execution
    # a GPU stage with a fixed number of workers per GPU
    res = cfg.asr.resources.model_copy(update={"workers": "auto", "num_gpus": 0.5, "workers_per_gpu": 2})
    assert pool_size(res, Cluster(cpus=16, gpus=4)) == 8


def test_plan_reads_the_ray_cluster_it_joins(ray_session, capsys):
    """The real-Ray check: `mikupal plan` on the session's Ray (2 CPUs, no GPU) plans for exactly that."""
    from mikupal.commands.plan import plan_command

    resources = ray_session.cluster_resources()
    assert Cluster.of_ray() == Cluster(cpus=resources["CPU"], gpus=resources.get("GPU", 0.0))
    assert plan_command(["labeler=none", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cluster"] == {"cpus": resources["CPU"], "gpus": resources.get("GPU", 0.0)}
    assert ray_session.is_initialized()  # a joined cluster is left as it was


def test_light_stages_share_a_worker_on_the_cpu_profile():
    """Consecutive stages of one level that each ask under a core, no GPU and one worker run in one
    worker (tasks with tasks, actors with actors): the pools' CPUs and the tasks' need stay as they
    were, and every stage keeps its own line in the plan."""
    cfg = compose(["labeler=none", "separation=none"])
    plan = make_plan(cfg, Cluster(cpus=2))
    groups = [[plan.stages[i].stage for i in g.stages] for g in plan.workers]
    assert groups == [["probe", "separate", "vad"], ["asr"], ["speaker", "quality"], ["vision"], ["prosody"]]
    by = {g.placed.stage: g.placed for g in plan.workers}
    assert not by["probe+separate+vad"].actors and by["probe+separate+vad"].num_cpus == 0.25  # a task: its largest ask
    shared = by["speaker+quality"]
    assert shared.actors and shared.workers == 1 and shared.num_cpus == 0.375 and shared.threads == 1
    assert "CPUExecutionProvider" in shared.execution and "torch cpu" in shared.execution
    unfused = make_plan(compose(["labeler=none", "separation=none", "engine.fuse_light_stages=false"]), Cluster(cpus=2))
    assert [len(g.stages) for g in unfused.workers] == [1] * len(unfused.stages)
    assert (plan.pool_cpus, plan.task_cpus) == (unfused.pool_cpus, unfused.task_cpus)
    assert any(n.startswith("speaker+quality: one worker") for n in plan.notes)
    assert json.loads(json.dumps(plan.to_dict()))["workers"][2]["stages"] == ["speaker", "quality"]


def test_stages_given_a_gpu_a_core_or_more_workers_keep_their_own(gpu_cfg):
    plan = make_plan(gpu_cfg, Cluster(cpus=16, gpus=1))
    assert all(len(g.stages) == 1 for g in plan.workers if plan.stages[g.stages[0]].actors)
    cfg = compose(["labeler=none", "speaker.resources.workers=2"])
    names = [g.placed.stage for g in make_plan(cfg, Cluster(cpus=4)).workers]
    assert "speaker" in names and "quality" in names
