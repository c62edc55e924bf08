"""Adding N tasks costs O(N), whatever the job holds, in the service and in the engine.

Measured in steps, not seconds, so the test is exact on a busy machine: the SQLite
virtual machine's instructions (a full read of the job's rows would multiply them) plus
the lines of batchflow's own Python executed (a rebuild of the job in memory would).
"""

from __future__ import annotations

import functools
import sqlite3
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import batchflow
from batchflow.backends.local.control import try_lock
from batchflow.backends.local.engine import Engine
from batchflow.backends.local.paths import StateDir
from batchflow.backends.local.service import BatchService

PACKAGE = str(Path(batchflow.__file__).parent)
ADDS = 40  # of 100 tasks each: the job ends with 4,000
PER_ADD = 100


def steps(conn: sqlite3.Connection, action: Callable[[], object]) -> int:
    """SQLite instructions (in hundreds) on `conn` plus batchflow lines run by `action`."""
    count = 0

    def tick() -> int:
        nonlocal count
        count += 1
        return 0

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if not frame.f_code.co_filename.startswith(PACKAGE):
            return None
        if event == "line":
            count += 1
        return trace

    conn.set_progress_handler(tick, 100)
    sys.settrace(trace)
    try:
        action()
    finally:
        sys.settrace(None)
        conn.set_progress_handler(None, 100)
    return count


def test_an_add_costs_what_it_adds_not_what_the_job_holds(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    service = BatchService(state, engine=False)
    service.create_job({"id": "big", "poolInfo": {"poolId": "p"}, "usesTaskDependencies": True})
    lock = try_lock(state.lock)
    assert lock is not None
    engine = Engine(state, lock)

    def load_new() -> None:  # what the engine does when a service pokes it
        engine.scan()
        engine.ledger.commit()

    try:
        load_new()
        added: list[int] = []
        loaded: list[int] = []
        for n in range(ADDS):
            # every task waits for a gate that never comes (so nothing runs) and for its
            # peer of the add before
            tasks = [
                {
                    "id": f"t{n}-{i}",
                    "commandLine": "/bin/true",
                    "dependsOn": {"taskIds": ["gate", f"t{n - 1}-{i}"] if n else ["gate"]},
                }
                for i in range(PER_ADD)
            ]
            add = functools.partial(service.add_tasks, "big", tasks)
            added.append(steps(service.store.conn, add))
            loaded.append(steps(engine.store.conn, load_new))
        assert service.task_counts("big")["taskCounts"]["active"] == ADDS * PER_ADD
        assert engine.ledger.jobs[1].n - 1 == ADDS * PER_ADD  # (index 0: a job manager's)
        for name, cost in (("service add", added), ("engine load", loaded)):
            first, last = statistics.median(cost[1:6]), statistics.median(cost[-5:])
            assert last <= 1.5 * first, f"{name}: {first} steps early, {last} at the end"
    finally:
        engine.dirs.close()
        engine.store.close()
        service.close()
