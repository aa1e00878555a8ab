"""Where each stage runs, decided once: actors or tasks, pool sizes, CPUs and GPUs per worker,
math-library threads, batch sizes and execution providers.

The Ray executor builds its dataset from this plan and `mikupal plan` prints it; neither decides
anything of its own, and neither names a stage: every figure comes from what a stage declares
(`holds_model`, `resources`, `items_per_call`, `model_batch`, `execution`, `cpu_cost`) and from
the cluster's CPUs and GPUs. `make_plan` is a pure function of the configuration and a `Cluster`,
so the placement for any cluster (8 GPUs, 64 CPUs) is tested without one.

On a GPU cluster, a pool with `workers: auto` gets `workers_per_gpu` workers per GPU. One whose
`workers_per_gpu` is "auto" (the vision pool under `profile=gpu`: it decodes 720p video and detects
faces on the CPU to feed its GPU models) is elastic: it gets the CPUs the other pools and the tasks
leave, per GPU, in workers of at least its `num_cpus` each (at most `engine.max_workers_per_gpu`,
then more threads per worker), its `num_gpus` (its share of each GPU) split among them. When the
cluster is too small even for one such worker per GPU, the GPU pools' CPU asks shrink to fit, and
the plan says so. CPU asks are Ray's bookkeeping: what a worker really uses is its threads.

Light stages share a worker (`worker_groups`, `engine.fuse_light_stages`): consecutive stages of one
level that each ask under one core, no GPU and a single worker (or run as tasks), one item per
call, run in one worker, one after another on each item. On a laptop each such stage was a process
of its own holding a slice of a core, with its own imports, idle polling and Ray Data operator;
where a profile gives a stage a GPU, a core or more workers, it keeps its own pool.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Optional

from ..config import Resources, RunConfig
from ..errors import UserError
from ..stages.base import Stage
from .stages import stage_classes


@dataclass(frozen=True)
class Cluster:
    """The logical resources the run may place its workers on."""

    cpus: float
    gpus: float = 0.0

    @classmethod
    def of_ray(cls) -> "Cluster":
        """What the Ray cluster this process joined has (after `init_ray`)."""
        import ray

        total = ray.cluster_resources()
        return cls(cpus=float(total.get("CPU", 1.0)), gpus=float(total.get("GPU", 0.0)))


@dataclass(frozen=True)
class StagePlan:
    """How one stage runs."""

    stage: str
    actors: bool  # a pool of long-lived workers holding a model; else Ray tasks
    workers: Optional[int]  # the pool size; None for tasks (as many as Ray schedules)
    num_cpus: float  # per worker
    num_gpus: float  # per worker (a fraction shares a GPU with other stages' workers)
    threads: int  # math-library threads per worker
    items_per_call: int  # items one call of the stage gets (the executor's batch)
    model_batch: Optional[int]  # the model's own forward batch, where it has one
    execution: str  # what runs the stage's models, as asked for (device / execution provider)

    def remote_args(self) -> dict[str, float]:
        args = {"num_cpus": self.num_cpus}
        if self.num_gpus:
            args["num_gpus"] = self.num_gpus
        return args


@dataclass(frozen=True)
class WorkerGroup:
    """Consecutive stages one worker runs, one after another on each item (mostly a single stage)."""

    stages: tuple[int, ...]  # indices into Plan.stages
    placed: StagePlan  # what that worker (pool) asks for: the stage's own plan, or the group's


@dataclass(frozen=True)
class Plan:
    cluster: Cluster
    stages: list[StagePlan]
    notes: list[str] = field(default_factory=list)
    #: the workers the executor starts, in order; empty = one per stage
    groups: list[WorkerGroup] = field(default_factory=list)

    @property
    def workers(self) -> list[WorkerGroup]:
        return self.groups or [WorkerGroup((i,), s) for i, s in enumerate(self.stages)]

    @property
    def task_cpus(self) -> float:
        """Room the task stages need beside the pools (Ray runs one at a time at least)."""
        return max((s.num_cpus for s in self.stages if not s.actors), default=0.0)

    @property
    def pool_cpus(self) -> float:
        return sum(s.num_cpus * (s.workers or 0) for s in self.stages if s.actors)

    @property
    def pool_gpus(self) -> float:
        return sum(s.num_gpus * (s.workers or 0) for s in self.stages if s.actors)

    def check_fits(self) -> None:
        """Actor pools hold their CPUs/GPUs for the whole run: if they cannot all fit, Ray would
        wait forever. Say so in one line instead."""
        need_cpu, need_gpu = self.pool_cpus + self.task_cpus, self.pool_gpus
        c = self.cluster
        if need_cpu > c.cpus + 1e-6 or need_gpu > c.gpus + 1e-6:
            detail = ", ".join(f"{s.stage}: {s.workers} x ({s.num_cpus:g} CPU, {s.num_gpus:g} GPU)"
                               for s in self.stages if s.actors)
            raise UserError(
                f"the stage pools need {need_cpu:g} CPUs and {need_gpu:g} GPUs but the cluster has {c.cpus:g} and "
                f"{c.gpus:g} ({detail}); lower <stage>.resources.num_cpus/num_gpus/workers"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": asdict(self.cluster), "stages": [asdict(s) for s in self.stages], "notes": list(self.notes),
                "pool_cpus": round(self.pool_cpus, 4), "task_cpus": self.task_cpus, "pool_gpus": round(self.pool_gpus, 4),
                "workers": [asdict(g.placed) | {"stages": [self.stages[i].stage for i in g.stages]} for g in self.workers]}


def pool_size(res: Resources, cluster: Cluster) -> int:
    """Workers of an actor pool: `resources.workers`, or for "auto" `workers_per_gpu` per GPU (GPU
    stages on a GPU cluster; an elastic pool starts at one and `make_plan` sizes it) or one per
    core within the CPUs each asks for (CPU workers are single-threaded)."""
    if res.workers != "auto":
        return max(1, int(res.workers))
    if res.num_gpus > 0 and cluster.gpus > 0:
        per_gpu = 1 if res.workers_per_gpu == "auto" else int(res.workers_per_gpu)
        return max(1, int(cluster.gpus) * per_gpu)
    return max(1, min(int(cluster.cpus), int(cluster.cpus / max(res.num_cpus, 1e-9))))


def worker_threads(num_cpus: float) -> int:
    """Math-library threads for one worker of a pool: the whole CPUs it asks for, at least one.
    Workers that each ran one thread per core would fight over the same cores."""
    return max(1, int(num_cpus + 1e-9))


def _down(x: float, places: int) -> float:
    """Rounded down: Ray takes fractional resources in steps of 1e-4, and a plan must not overshoot."""
    return math.floor(x * 10**places + 1e-9) / 10**places


def _declared(stage: Stage, cluster: Cluster) -> StagePlan:
    res = stage.resources
    actors = bool(stage.holds_model)
    return StagePlan(
        stage=stage.name,
        actors=actors,
        workers=pool_size(res, cluster) if actors else None,
        num_cpus=res.num_cpus,
        num_gpus=res.num_gpus,
        threads=worker_threads(res.num_cpus),
        items_per_call=stage.items_per_call,  # video-level: a group of videos (run._plan), the same in every run
        model_batch=stage.model_batch,
        execution=stage.execution() or "-",
    )


def _elastic(stage: Stage) -> bool:
    r = stage.resources
    return bool(stage.holds_model) and r.workers == "auto" and r.num_gpus > 0 and r.workers_per_gpu == "auto"


def make_plan(cfg: RunConfig, cluster: Cluster) -> Plan:
    """The placement of every stage of the run on `cluster`, and which stages share a worker."""
    stages = [cls(cfg, "/tmp") for cls in stage_classes(cfg)]
    placed = [_declared(s, cluster) for s in stages]
    elastic = [i for i, s in enumerate(stages) if _elastic(s)]
    if cluster.gpus <= 0 or not elastic:
        plan = Plan(cluster, placed)
    else:
        plan = _feed_gpus(stages, placed, elastic, cluster, cfg.engine.max_workers_per_gpu)
    groups = worker_groups(stages, plan.stages) if cfg.engine.fuse_light_stages else []
    notes = [f"{g.placed.stage}: one {'worker' if g.placed.actors else 'task'} runs them one after another on each "
             "item (each asks under a core; engine.fuse_light_stages)" for g in groups if len(g.stages) > 1]
    return replace(plan, groups=groups, notes=plan.notes + notes)


def _light(stage: Stage, placed: StagePlan) -> bool:
    """A stage that can share its worker: under one core, no GPU, one worker (or tasks), one item
    per call, not the fan-out."""
    return (placed.num_cpus < 1 and not placed.num_gpus and placed.workers in (None, 1)
            and stage.resources.workers != "auto" and placed.items_per_call == 1 and not stage.fans_out)


def worker_groups(stages: list[Stage], placed: list[StagePlan]) -> list[WorkerGroup]:
    """Consecutive light stages (`_light`) of one level, run alike (actors or tasks), in one worker
    each group; every other stage in a worker of its own."""
    runs: list[list[int]] = []
    for i, (stage, p) in enumerate(zip(stages, placed)):
        j = runs[-1][-1] if runs else None
        if (j is not None and _light(stage, p) and _light(stages[j], placed[j]) and stage.level == stages[j].level
                and p.actors == placed[j].actors):
            runs[-1].append(i)
        else:
            runs.append([i])
    return [WorkerGroup(tuple(r), placed[r[0]] if len(r) == 1 else _shared(placed, r)) for r in runs]


def _shared(placed: list[StagePlan], run: list[int]) -> StagePlan:
    """What one worker running `run`'s stages asks for. An actor holds its CPUs for the whole run:
    the group keeps what its stages held together, so every other pool's room is as it was. A task
    holds them while it runs, one stage at a time: the largest ask."""
    parts = [placed[i] for i in run]
    actors = parts[0].actors
    cpus = round(sum(p.num_cpus for p in parts), 4) if actors else max(p.num_cpus for p in parts)
    return StagePlan(stage="+".join(p.stage for p in parts), actors=actors, workers=parts[0].workers, num_cpus=cpus,
                     num_gpus=0.0, threads=worker_threads(cpus), items_per_call=1, model_batch=None,
                     execution="; ".join(p.execution for p in parts if p.execution != "-") or "-")


def _feed_gpus(stages: list[Stage], placed: list[StagePlan], elastic: list[int], cluster: Cluster,
               max_per_gpu: int) -> Plan:
    """Size the elastic pools from the CPUs left per GPU (see the module docstring)."""
    gpus = max(1, int(cluster.gpus))
    notes: list[str] = []
    tasks = max((p.num_cpus for p in placed if not p.actors), default=0.0)
    fixed = [i for i, p in enumerate(placed) if p.actors and i not in elastic]
    shrinkable = [i for i in fixed if placed[i].num_gpus > 0]  # GPU pools: their CPU feeds a GPU, it is not their work
    floor_cpus = sum(stages[i].resources.num_cpus for i in elastic) * gpus  # one worker per GPU each
    fixed_cpus = sum(placed[i].num_cpus * placed[i].workers for i in fixed)
    spare = cluster.cpus - tasks - fixed_cpus
    if spare < floor_cpus:
        other = sum(placed[i].num_cpus * placed[i].workers for i in fixed if i not in shrinkable)
        mine = fixed_cpus - other
        room = cluster.cpus - tasks - floor_cpus - other
        factor = max(0.0, room) / mine if mine else 0.0
        if 0 < factor < 1:
            for i in shrinkable:
                placed[i] = replace(placed[i], num_cpus=max(0.01, _down(placed[i].num_cpus * factor, 2)))
            notes.append(f"{cluster.cpus:g} CPUs for {gpus} GPUs: the GPU pools' CPU asks are scaled by {factor:.2f} "
                         f"to leave the elastic pools one worker per GPU")
        spare = cluster.cpus - tasks - sum(placed[i].num_cpus * placed[i].workers for i in fixed)
    per_pool = max(0.0, spare) / gpus / len(elastic)  # CPUs per GPU for each elastic pool
    for i in elastic:
        res, stage = stages[i].resources, stages[i]
        k = max(1, min(max_per_gpu, int(per_pool / max(res.num_cpus, 1e-9) + 1e-9)))
        cpus = max(0.01, _down(per_pool / k, 2))
        placed[i] = replace(placed[i], workers=k * gpus, num_cpus=cpus, num_gpus=_down(res.num_gpus / k, 4),
                            threads=worker_threads(cpus))
        note = f"{stage.name}: {k} worker{'s' if k > 1 else ''} per GPU x {cpus:g} CPUs = {k * cpus:g} cores per GPU"
        if stage.cpu_cost:
            note += (f"; at {stage.cpu_cost:g} CPU-s per media second (measured on CPU) they feed about "
                     f"{k * cpus / stage.cpu_cost:.0f}x real time per GPU")
        notes.append(note)
    return Plan(cluster, placed, notes)


HEADER = ("stage", "runs as", "workers", "CPUs", "GPUs", "threads", "items/call", "model batch", "execution")


def render(plan: Plan) -> str:
    """The plan as a table, one stage a line, then the totals and notes: what `mikupal plan` prints."""
    rows = [HEADER]
    for s in plan.stages:
        rows.append((s.stage, "actor pool" if s.actors else "tasks", str(s.workers) if s.workers else "-",
                     f"{s.num_cpus:g}", f"{s.num_gpus:g}", str(s.threads), str(s.items_per_call),
                     str(s.model_batch) if s.model_batch else "-", s.execution))
    widths = [max(len(r[j]) for r in rows) for j in range(len(HEADER) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1] for r in rows]
    c = plan.cluster
    lines.insert(0, f"cluster: {c.cpus:g} CPUs, {c.gpus:g} GPUs (CPUs and GPUs are per worker)")
    lines.append(f"pools hold {plan.pool_cpus:g} CPUs and {plan.pool_gpus:g} GPUs; tasks need {plan.task_cpus:g} CPUs beside them")
    lines.extend(f"note: {n}" for n in plan.notes)
    return "\n".join(lines)
