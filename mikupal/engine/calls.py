"""What one worker does with one call: its stages (one, or a light group of the plan,
`plan.worker_groups`) in turn on each of the call's items. Both pipelined executors (Ray Data's
workers, the local engine's threads) run calls through here, so each stage's time, rejects and
fault isolation are the same in either."""

from __future__ import annotations

import logging
from typing import Iterator

import pyarrow as pa

from ..errors import USER_ERROR_REASON, UserError
from ..records import WorkItem
from ..stages.base import Stage

log = logging.getLogger(__name__)


def chain(stages: list[Stage], batch: pa.Table) -> Iterator[WorkItem]:
    """A batch through a worker's stages, one after another on each item (a light group of the
    plan, `plan.worker_groups`, or one stage): each stage's time, rejects and fault isolation are
    its own, as in a worker of its own. A UserError (a model that will not load) goes back on the
    items, naming its stage, for the driver to stop the run with."""
    try:
        yield from then(stages[1:], calls(stages[0], batch))
    except UserError as e:
        yield from user_error_items(batch, stages[0].name, e)


def then(stages: list[Stage], items) -> Iterator[WorkItem]:
    """Each item through the next stages in turn (they take one item per call), passed on as it comes."""
    if not stages:
        yield from items
        return
    for item in items:
        outs = [item]
        for stage in stages:
            try:
                outs = [out for it in outs for out in stage.iter_items([it])]
            except UserError as e:
                outs = [it.reject(stage.name, USER_ERROR_REASON, str(e)) for it in outs]
                break
        yield from outs


def calls(stage: Stage, batch: pa.Table) -> Iterator[WorkItem]:
    """A batch through the stage. A video-level stage gets one group of videos per call (the run's
    inputs in order, `items_per_call` at a time: `run._plan`); should Ray Data ever bundle a batch
    across groups, each group still gets a call of its own, and the log says so (a group split
    across two batches would be worked on in two parts, which a packing stage would notice)."""
    if stage.level != "video":
        yield from stage.iter_batch(batch)
        return
    groups: dict[int, list[WorkItem]] = {}
    for it in WorkItem.from_table(batch):
        groups.setdefault(it.group, []).append(it)
    if len(groups) > 1:
        log.warning("%s got videos of %d groups in one batch (%s): each group is worked on apart", stage.name,
                    len(groups), sorted(groups))
    for part in groups.values():
        yield from stage.iter_items(part)


def user_error_items(batch: pa.Table, stage: str, error: UserError) -> Iterator[WorkItem]:
    """The batch's items, each carrying the UserError: the driver raises it on the first one, so it
    ends the run in its own line instead of killing the actor (a `worker_lost` reject)."""
    for it in WorkItem.from_table(batch):
        yield it.reject(stage, USER_ERROR_REASON, str(error))
