"""Which executor runs `engine=auto` (the default): Ray where there is a cluster to use, else threads.

  - a cluster is named (`engine.address`, `RAY_ADDRESS`: what `ray job submit` sets) -> `ray`
  - a stage asks for a GPU (`profile=gpu`: fractional GPUs per pool, placed by Ray) -> `ray`
  - otherwise, one machine's CPUs -> `local` (the plan's workers as threads of one process,
    `engine/local.py`): on 2 cores the 5-minute benchmark ran 1.28x faster than under a local Ray
    (4.32x against 3.38x real time, the same dataset), in 2.4 GB instead of 6.0 (benchmarks/README.md)
"""

from __future__ import annotations

from ..config import RunConfig
from .cluster import cluster_address
from .stages import stage_classes


def resolved_kind(cfg: RunConfig) -> str:
    """`cfg.engine.kind`, with "auto" decided (see the module doc)."""
    if cfg.engine.kind != "auto":
        return cfg.engine.kind
    if cluster_address(cfg.engine)[0]:
        return "ray"
    if any(cls(cfg, "/tmp").resources.num_gpus > 0 for cls in stage_classes(cfg)):
        return "ray"
    return "local"


def with_engine_resolved(cfg: RunConfig) -> RunConfig:
    """The same config with `engine.kind` the executor that will run it (what report.json records)."""
    kind = resolved_kind(cfg)
    if kind == cfg.engine.kind:
        return cfg
    return cfg.model_copy(update={"engine": cfg.engine.model_copy(update={"kind": kind})})
