"""`mikupal plan [overrides] [--cpus N --gpus N] [--json]`: where each stage would run, then exit.

For the cluster the run would join (`engine.address`, `RAY_ADDRESS`, or, under engine=ray, the local
Ray it would start; this machine's cores under the default engine=auto without either), it prints each stage's workers, CPUs and GPUs per worker, threads, items per call, model
batch and execution provider (`engine/plan.py`), so a GPU placement is seen before GPU hours are
spent. `--cpus`/`--gpus` plan for a cluster given by hand instead, without starting Ray.
`mikupal run ... --plan` is the same. A placement that cannot fit is the run's own one-line error.
"""

from __future__ import annotations

import json
from typing import Sequence

from ..config import compose
from ..errors import UserError
from .help import CommandHelp

HELP = CommandHelp(
    usage="mikupal plan [key=value ...] [--cpus N --gpus N] [--json]",
    what="""Print where each stage would run on the cluster the run would join (engine.address,
RAY_ADDRESS, or the local Ray it would start): workers, CPUs and GPUs per worker, threads, items
per call, model batch and execution provider. `--cpus`/`--gpus` plan for a cluster given by hand,
without starting Ray. `mikupal run ... --plan` is the same.""",
    keys=[("profile", "cpu or gpu: the pools and devices planned"), ("engine.address", "the cluster to plan for")],
    flags=[("--cpus N", "plan for N CPUs"), ("--gpus N", "plan for N GPUs"), ("--json", "the plan as one JSON object")],
    examples=["mikupal plan profile=gpu --cpus 64 --gpus 8"],
)


def _flags(args: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """(--cpus/--gpus/--json values, the overrides): `--cpus 64` and `--cpus=64` both accepted."""
    flags: dict[str, str] = {}
    rest: list[str] = []
    it = iter(args)
    for a in it:
        name, _, value = a.partition("=")
        if name in ("--cpus", "--gpus"):
            flags[name[2:]] = value or next(it, "")
        elif a == "--json":
            flags["json"] = "1"
        elif a != "--plan":
            rest.append(a)
    return flags, rest


def _number(flags: dict[str, str], key: str) -> float:
    try:
        value = float(flags[key])
    except ValueError:
        raise UserError(f"--{key} takes a number, got {flags[key]!r}") from None
    if value < 0:
        raise UserError(f"--{key} must be >= 0, got {value:g}")
    return value


def cluster_for(flags: dict[str, str], engine):
    """The cluster to plan for: given by hand, or the one Ray joins or starts (shut down after)."""
    from ..engine.plan import Cluster

    if "cpus" in flags or "gpus" in flags:
        import os

        cpus = _number(flags, "cpus") if "cpus" in flags else float(os.cpu_count() or 1)
        return Cluster(cpus=cpus, gpus=_number(flags, "gpus") if "gpus" in flags else 0.0)
    if engine.kind in ("local", "sequential"):  # one machine, no Ray: its cores
        from ..engine.local import machine_cores

        return Cluster(cpus=machine_cores(engine))
    import ray

    from ..engine.ray_pipeline import init_ray

    started = not ray.is_initialized()
    init_ray(engine)
    try:
        return Cluster.of_ray()
    finally:
        if started:
            ray.shutdown()


def plan_command(args: Sequence[str]) -> int:
    from ..engine.choice import with_engine_resolved
    from ..engine.plan import make_plan, render

    flags, overrides = _flags(args)
    cfg = with_engine_resolved(compose(overrides))
    plan = make_plan(cfg, cluster_for(flags, cfg.engine))
    print(json.dumps(plan.to_dict() | {"engine": cfg.engine.kind}) if "json" in flags else render(plan))
    if "json" not in flags:
        print(f"engine: {cfg.engine.kind}" + (" (the workers as threads of this one process)" if cfg.engine.kind == "local" else ""))
    if "json" not in flags:
        for line in local_provider_warnings(plan):
            print(line)
    plan.check_fits()
    return 0


def local_provider_warnings(plan) -> list[str]:
    """Stages that ask for ONNX Runtime's CUDA provider, when this machine's onnxruntime lacks it
    (the workers of a one-machine cluster have the same install: their run would stop there)."""
    from ..devices import CUDA_PROVIDER, GPU_INSTALL_HINT

    asking = [s.stage for s in plan.stages if CUDA_PROVIDER in s.execution]
    if not asking:
        return []
    try:
        import onnxruntime as ort

        available = ort.get_available_providers()
    except ImportError:
        available = []
    if CUDA_PROVIDER in available:
        return []
    return [f"warning: {', '.join(asking)} ask for {CUDA_PROVIDER}, which this machine's onnxruntime lacks "
            f"({', '.join(available) or 'not installed'}): {GPU_INSTALL_HINT}"]
