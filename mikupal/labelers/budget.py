"""One budget, one rate limit and one stop switch for a whole labeling run, however many label
workers (Ray actors, nodes) send requests.

`RunLimits` owns them. Before each exchange a worker asks it for a grant: it reserves an upper
bound of the request's cost (estimated input tokens + `max_output_tokens` at output price) next to
the spent and in-flight money, and takes one request and the estimated tokens from the RPM/TPM
buckets, atomically; afterwards the worker settles the grant with the real cost and tokens. A
request that does not fit the budget waits while others are in flight; once it cannot fit with
nothing in flight, the budget is exhausted for good. A 429 retry hint pauses every worker; a
run-level failure (bad key, retired model, daily quota) halts every worker: no request is sent
after it. Workers also hand in their cost reports, so the driver writes one `labeler/cost.json`.

Where it lives:
  - Ray engine: a named actor (`ray.remote(RunLimits)`, num_cpus=0) the driver starts before the
    stages (`SharedLimits`); label actors find it by the name in $MIKUPAL_LABELER_LIMITS, which
    travels with their constructor arguments.
  - sequential engine: an in-process instance of the same class under the same name.
  - `mikupal label`, or a stage used on its own: a private in-process instance.

`RunLimits` never blocks (a grant says how long to wait): an actor method that slept would hold
the actor for every worker. `LimitsClient` is the async side that waits and asks again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional

from ..config import LabelerConfig
from ..errors import UserError
from .pricing import RunCost

log = logging.getLogger("mikupal.labelers")

LIMITS_ENV = "MIKUPAL_LABELER_LIMITS"
BUDGET_POLL_S = 0.1  # how often a request that does not fit asks again while others are in flight
MAX_WAIT_S = 1.0  # a waiting worker asks again at least this often (a halt must reach it soon)

_LOCAL: dict[str, "RunLimits"] = {}  # sequential engine: the driver's instance, by name


@dataclass
class Grant:
    """The answer to a reservation: go (with a ticket to settle), wait, exhausted or halted."""

    status: Literal["go", "wait", "exhausted", "halted"]
    ticket: int = 0
    wait_s: float = 0.0
    reason: str = ""
    message: str = ""


class _Bucket:
    """`rate` units per second, bursts up to `capacity`. A request larger than the capacity waits
    for a full bucket and then runs it into debt, so it is never starved."""

    def __init__(self, rate: float, capacity: float, now: float):
        self.rate = float(rate)
        self.capacity = max(1.0, float(capacity))
        self.level = self.capacity
        self._t = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + max(0.0, now - self._t) * self.rate)
        self._t = now

    def wait_for(self, n: float) -> float:
        need = min(float(n), self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def give(self, n: float) -> None:
        self.level = min(self.capacity, self.level + n)


class RunLimits:
    """The run's budget (USD), request/token rates and stop switch (see the module doc). Thread-safe."""

    def __init__(self, max_usd: Optional[float], requests_per_minute: float, tokens_per_minute: float,
                 clock: Callable[[], float] = time.monotonic):
        self.max_usd = max_usd
        self._clock = clock
        now = clock()
        rps, tps = requests_per_minute / 60.0, tokens_per_minute / 60.0
        self._requests = _Bucket(rps, max(1.0, rps), now)  # one second of burst
        self._tokens = _Bucket(tps, max(1.0, tps), now)
        self.spent = 0.0
        self.reserved = 0.0
        self.exhausted = False
        self.sent = 0  # grants handed out: requests sent by all workers
        self.pause_until = 0.0
        self.halted: Optional[tuple[str, str]] = None
        self._tickets: dict[int, tuple[float, int]] = {}
        self._next = 1
        self._costs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ grants

    def reserve(self, usd: Optional[float], tokens: int) -> Grant:
        """Reserve `usd` (an upper bound; None = no price) and `tokens` for one request, or say why not."""
        with self._lock:
            if self.halted is not None:
                return Grant("halted", reason=self.halted[0], message=self.halted[1])
            cost = self._budget(usd)
            if isinstance(cost, Grant):
                return cost
            now = self._clock()
            if self.pause_until > now:
                return Grant("wait", wait_s=self.pause_until - now)
            self._requests.refill(now)
            self._tokens.refill(now)
            wait = max(self._requests.wait_for(1), self._tokens.wait_for(max(0, tokens)))
            if wait > 0:
                return Grant("wait", wait_s=wait)
            self._requests.level -= 1
            self._tokens.level -= max(0, tokens)
            ticket, self._next = self._next, self._next + 1
            self._tickets[ticket] = (cost, max(0, tokens))
            self.reserved += cost
            self.sent += 1
            return Grant("go", ticket=ticket)

    def _budget(self, usd: Optional[float]) -> "float | Grant":
        """The money to reserve, or the Grant that refuses it."""
        if self.max_usd is None:
            return usd or 0.0
        if self.exhausted:
            return Grant("exhausted", message=f"labeler.max_usd={self.max_usd} reached (spent ${self.spent:.4f})")
        if usd is None:  # the preflight refuses such a run; never send blind
            self.exhausted = True
            return Grant("exhausted", message=f"cannot enforce labeler.max_usd={self.max_usd} without a price")
        if self.spent + self.reserved + usd <= self.max_usd + 1e-12:
            return usd
        if not self._tickets:  # nothing in flight will give money back: no request fits any more
            self.exhausted = True
            return Grant("exhausted", message=f"labeler.max_usd={self.max_usd} reached (spent ${self.spent:.4f})")
        return Grant("wait", wait_s=BUDGET_POLL_S)

    def settle(self, ticket: int, usd: Optional[float], tokens: Optional[int] = None) -> None:
        """The request of `ticket` is done: it cost `usd` (None: unpriced, 0 counted) and used `tokens`."""
        with self._lock:
            reserved, est_tokens = self._tickets.pop(ticket, (0.0, 0))
            self.reserved = max(0.0, self.reserved - reserved)
            self.spent += usd or 0.0
            if tokens is not None:
                self._tokens.refill(self._clock())
                self._tokens.give(est_tokens - tokens)

    def pause(self, seconds: float) -> None:
        """The server asked to wait (a 429 retry hint): every worker waits."""
        with self._lock:
            self.pause_until = max(self.pause_until, self._clock() + seconds)

    def halt(self, reason: str, message: str) -> None:
        """A run-level failure: no worker sends another request. The first reason is kept."""
        with self._lock:
            if self.halted is None:
                self.halted = (reason, message)

    # ------------------------------------------------------------ reports

    def merge_cost(self, worker: str, report: dict[str, Any]) -> None:
        """A worker's latest cost report (RunCost.to_dict); each worker's last one counts."""
        with self._lock:
            self._costs[worker] = report

    def cost_reports(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._costs.values())

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {"spent": self.spent, "reserved": self.reserved, "sent": self.sent,
                    "exhausted": self.exhausted, "halted": self.halted}


class LimitsClient:
    """A worker's async view of the run's `RunLimits`: in-process, or a Ray actor handle."""

    def __init__(self, target: Any, remote: bool = False):
        self.target = target
        self.remote = remote

    @classmethod
    def private(cls, cfg: LabelerConfig) -> "LimitsClient":
        return cls(RunLimits(cfg.max_usd, cfg.requests_per_minute, cfg.tokens_per_minute))

    async def _call(self, method: str, *args: Any) -> Any:
        if not self.remote:
            return getattr(self.target, method)(*args)
        ref = getattr(self.target, method).remote(*args)
        return await asyncio.wrap_future(ref.future())

    async def acquire(self, usd: Optional[float], tokens: int) -> Grant:
        """Wait until the request may go (or never will)."""
        while True:
            grant: Grant = await self._call("reserve", usd, tokens)
            if grant.status != "wait":
                return grant
            await asyncio.sleep(min(grant.wait_s, MAX_WAIT_S))

    async def settle(self, ticket: int, usd: Optional[float], tokens: Optional[int] = None) -> None:
        await self._call("settle", ticket, usd, tokens)

    async def pause(self, seconds: float) -> None:
        await self._call("pause", seconds)

    async def halt(self, reason: str, message: str) -> None:
        await self._call("halt", reason, message)

    async def merge_cost(self, worker: str, report: dict[str, Any]) -> None:
        await self._call("merge_cost", worker, report)

    async def state(self) -> dict[str, Any]:
        return await self._call("state")


def attach_limits(cfg: LabelerConfig) -> tuple[LimitsClient, bool]:
    """A label worker's limits: the run's shared ones when a driver started them ($MIKUPAL_LABELER_LIMITS),
    else a private instance. Returns (client, shared)."""
    name = os.environ.get(LIMITS_ENV)
    if not name:
        return LimitsClient.private(cfg), False
    if name in _LOCAL:
        return LimitsClient(_LOCAL[name]), True
    import ray

    try:
        return LimitsClient(ray.get_actor(name), remote=True), True
    except ValueError:
        raise UserError(f"labeler: the run's shared budget ({name}) is gone; re-run the same command") from None


class SharedLimits:
    """The driver's side: starts the run's `RunLimits` (a named Ray actor, or in-process for the
    sequential engine), publishes its name in $MIKUPAL_LABELER_LIMITS, and at the end writes the
    merged cost report and stops it."""

    def __init__(self, cfg: LabelerConfig, use_ray: bool):
        self.cfg = cfg
        self.name = f"mikupal-labeler-limits-{uuid.uuid4().hex[:12]}"
        self.actor = None
        args = (cfg.max_usd, cfg.requests_per_minute, cfg.tokens_per_minute)
        if use_ray:
            import ray

            remote_cls = ray.remote(num_cpus=0, max_restarts=0)(RunLimits)
            self.actor = remote_cls.options(name=self.name, get_if_exists=True).remote(*args)
            ray.get(self.actor.state.remote())  # started before any label actor looks for it
        else:
            _LOCAL[self.name] = RunLimits(*args)
        self._old_env = os.environ.get(LIMITS_ENV)
        os.environ[LIMITS_ENV] = self.name

    def _get(self, method: str) -> Any:
        if self.actor is None:
            return getattr(_LOCAL[self.name], method)()
        import ray

        return ray.get(getattr(self.actor, method).remote(), timeout=30)

    def state(self) -> dict[str, Any]:
        return self._get("state")

    def run_cost(self) -> RunCost:
        return RunCost.merged(self._get("cost_reports"), model=self.cfg.model)

    def write_cost(self, path: "os.PathLike[str] | str") -> Optional[RunCost]:
        """The run's one cost report, summed over every worker; None when nothing was labeled."""
        reports = self._get("cost_reports")
        if not reports:
            return None
        cost = RunCost.merged(reports, model=self.cfg.model)
        cost.write_json(path)
        return cost

    def close(self) -> None:
        if self._old_env is None:
            os.environ.pop(LIMITS_ENV, None)
        else:
            os.environ[LIMITS_ENV] = self._old_env
        _LOCAL.pop(self.name, None)
        if self.actor is not None:
            import ray

            try:
                ray.kill(self.actor)
            except Exception:  # noqa: BLE001 - the actor may be gone with the cluster already
                pass
            self.actor = None
