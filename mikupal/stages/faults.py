"""Faults that are about the run, not the item: a full output disk, and the test-only fault
injection that proves a failing stage or a dying worker loses nothing."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Optional

from ..records import WorkItem


#: errno values that mean the output filesystem is full (a run-level condition, not a bad item)
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
#: below this much free space, an unexpected write failure is taken for a full disk (some writers,
#: libsndfile's, report a bare "System error." without the errno)
LOW_SPACE_BYTES = 16 << 20

#: test-only fault injection, off unless set: "STAGE:ITEM:ACTION[:MARKER]" entries joined by ";".
#: ITEM is an item id, a video id or "*"; ACTION is "raise" (the stage raises: a `stage_error`
#: reject) or "exit" (the worker process dies: os._exit(1)); with MARKER (a file path) the fault
#: fires once, on the attempt that creates MARKER. Workers under Ray get it from the driver.
FAULT_ENV = "MIKUPAL_FAULT_INJECT"


def injected_fault(stage: str, item: "WorkItem") -> None:
    spec = os.environ.get(FAULT_ENV, "")
    for entry in filter(None, (e.strip() for e in spec.split(";"))):
        parts = entry.split(":", 3)
        if len(parts) < 3 or parts[0] != stage or parts[1] not in ("*", item.item_id, item.video_id):
            continue
        if len(parts) == 4:
            try:
                os.close(os.open(parts[3], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                continue
        if parts[2] == "exit":
            os._exit(1)
        raise RuntimeError(f"injected fault ({FAULT_ENV}={entry})")


def is_disk_full(exc: BaseException, output_dir: Path, heuristic: bool = True) -> bool:
    """Whether `exc` (or what caused it) is the output filesystem running out of space or quota;
    with `heuristic`, also any error while that filesystem has less than LOW_SPACE_BYTES free."""
    e: Optional[BaseException] = exc
    for _ in range(16):  # the cause chain, bounded
        if e is None:
            break
        if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS:
            return True
        e = e.__cause__ or e.__context__
    if not heuristic:
        return False
    try:
        return shutil.disk_usage(output_dir).free < LOW_SPACE_BYTES
    except OSError:
        return False
