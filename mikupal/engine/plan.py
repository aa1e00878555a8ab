"""Where each stage runs, decided once: actors or tasks, pool sizes, CPUs and GPUs per worker,
math-library threads and batch sizes.

The Ray executor builds its dataset from this plan and `mikupal plan` prints it; neither decides
anything of its own, and neither names a stage: every figure comes from what a stage declares
(`holds_model`, `resources`, `items_per_call`) and from the cluster's
CPUs and GPUs. `make_plan` is a pure function of the configuration and a `Cluster`, so the
placement for any cluster (8 GPUs, 64 CPUs) is tested without one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from ..config import Resources, RunConfig
from ..errors import UserError
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

    def remote_args(self) -> dict[str, float]:
        args = {"num_cpus": self.num_cpus}
        if self.num_gpus:
            args["num_gpus"] = self.num_gpus
        return args


@dataclass(frozen=True)
class Plan:
    cluster: Cluster
    stages: list[StagePlan]
    notes: list[str] = field(default_factory=list)

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
        if need_cpu > c.cpus + 1e-9 or need_gpu > c.gpus + 1e-9:
            detail = ", ".join(f"{s.stage}: {s.workers} x ({s.num_cpus:g} CPU, {s.num_gpus:g} GPU)"
                               for s in self.stages if s.actors)
            raise UserError(
                f"the stage pools need {need_cpu:g} CPUs and {need_gpu:g} GPUs but the cluster has {c.cpus:g} and "
                f"{c.gpus:g} ({detail}); lower <stage>.resources.num_cpus/num_gpus/workers"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": asdict(self.cluster), "stages": [asdict(s) for s in self.stages], "notes": list(self.notes)}


def pool_size(res: Resources, cluster: Cluster) -> int:
    """Workers of an actor pool: `resources.workers`, or for "auto" one per GPU (GPU stages on a
    GPU cluster) or one per core within the CPUs each asks for (CPU workers are single-threaded)."""
    if res.workers != "auto":
        return max(1, int(res.workers))
    if res.num_gpus > 0 and cluster.gpus > 0:
        return max(1, int(cluster.gpus))
    return max(1, min(int(cluster.cpus), int(cluster.cpus / max(res.num_cpus, 1e-9))))


def worker_threads(num_cpus: float) -> int:
    """Math-library threads for one worker of a pool: the whole CPUs it asks for, at least one.
    Workers that each ran one thread per core would fight over the same cores."""
    return max(1, int(num_cpus))


def make_plan(cfg: RunConfig, cluster: Cluster) -> Plan:
    """The placement of every stage of the run on `cluster`."""
    out = []
    for cls in stage_classes(cfg):
        stage = cls(cfg, "/tmp")
        res = stage.resources
        actors = bool(stage.holds_model)
        out.append(StagePlan(
            stage=cls.name,
            actors=actors,
            workers=pool_size(res, cluster) if actors else None,
            num_cpus=res.num_cpus,
            num_gpus=res.num_gpus,
            threads=worker_threads(res.num_cpus),
            items_per_call=1 if cls.level == "video" else stage.items_per_call,  # videos fan out: one per call
        ))
    return Plan(cluster, out)
