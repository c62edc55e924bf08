"""A job as the engine holds it in memory: compact arrays, not task objects.

For each task only a status byte, a count of unsatisfied dependencies and (for tasks that
others wait for) a list of dependents are kept; 100,000 tasks cost a few megabytes. The
full definition of a task is read from the store when it starts. Index `i` is the task's
`seq`; the job manager task, if any, lives at index `n` (its seq is -1 in the store).
"""

from __future__ import annotations

import json
from array import array
from collections import deque
from typing import Any

from batchflow.backends.local.store import COMPLETED, KIND_MANAGER, PREPARING, RUNNING, Store
from batchflow.durations import parse_duration

__all__ = ["BLOCKED", "DONE", "RUNS", "WAITING", "JobRun"]

# Status bytes.
WAITING, RUNS, DONE, BLOCKED = 0, 1, 2, 3


class JobRun:
    """The scheduling state of one job."""

    __slots__ = (
        "base_dir",
        "children",
        "common_env",
        "creation_time",
        "cursor",
        "deadline",
        "done",
        "env_cache",
        "id",
        "manager",
        "manager_kills",
        "max_parallel",
        "max_retries",
        "n",
        "on_all_complete",
        "on_failure",
        "pending",
        "pool_id",
        "prep",
        "priority",
        "ready",
        "release",
        "rev",
        "rowid",
        "running",
        "settled",
        "slots",
        "spec",
        "state",
        "status",
        "unfinished",
    )

    def __init__(self, rowid: int, row: tuple[Any, ...]) -> None:
        job_id, spec_text, state, rev, creation, settled, done, base_dir = row
        self.done: int = done
        self.base_dir: str | None = base_dir
        self.rowid = rowid
        self.id: str = job_id
        self.rev: int = rev
        self.state: str = state
        self.settled: int = settled
        self.creation_time: float = creation
        self.spec: dict[str, Any] = json.loads(spec_text)
        spec = self.spec
        self.priority: int = spec.get("priority", 0)
        self.max_parallel: int = spec.get("maxParallelTasks", -1)
        constraints = spec.get("constraints") or {}
        self.max_retries: int = constraints.get("maxTaskRetryCount", 0)
        wall = constraints.get("maxWallClockTime")
        self.deadline: float | None = (
            creation + parse_duration(wall).total_seconds() if wall else None
        )
        if self.deadline is not None and self.deadline > 1e15:
            self.deadline = None
        self.on_all_complete = str(spec.get("onAllTasksComplete", "")).lower() == "terminatejob"
        self.on_failure = (
            str(spec.get("onTaskFailure", "")).lower() == "performexitoptionsjobaction"
        )
        self.common_env: dict[str, str] = {
            e["name"]: e.get("value") or "" for e in spec.get("commonEnvironmentSettings") or ()
        }
        self.pool_id: str = (spec.get("poolInfo") or {}).get("poolId") or "local"
        self.prep: dict[str, Any] | None = spec.get("jobPreparationTask")
        self.release: dict[str, Any] | None = spec.get("jobReleaseTask")
        manager = spec.get("jobManagerTask")
        self.manager_kills = bool(manager) and manager.get("killJobOnCompletion", True)
        self.env_cache: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
        self.n = 0
        self.manager = False
        self.status = bytearray()
        self.pending = array("i")
        self.children: dict[int, list[int]] = {}
        self.slots: dict[int, int] = {}
        self.ready: deque[int] = deque()
        self.running = 0
        self.unfinished = 0
        #: Every task before this index has started or is ready (see `LookAhead`).
        self.cursor = 0

    def load(self, store: Store) -> None:
        """Build the arrays from the store's rows (at start, and when tasks were added)."""
        rows = store.query(
            "SELECT seq, state, satisfied, deps, slots, kind FROM tasks WHERE job = ? ORDER BY seq",
            (self.rowid,),
        )
        manager = [r for r in rows if r[5] == KIND_MANAGER]
        tasks = [r for r in rows if r[5] != KIND_MANAGER]
        n = len(tasks)
        self.n = n
        self.manager = bool(manager)
        size = n + (1 if manager else 0)
        status = bytearray(size)
        self.slots = {}
        self.running = 0
        self.unfinished = 0
        deps_of: list[tuple[int, bytes]] = []
        for idx, row in enumerate([*tasks, *manager]):
            state = row[1]
            if state == COMPLETED:
                status[idx] = DONE if row[2] else BLOCKED
            elif state in (RUNNING, PREPARING):
                status[idx] = RUNS
                self.running += 1
                self.unfinished += 1
            else:
                self.unfinished += 1
            if row[3]:
                deps_of.append((idx, row[3]))
            if row[4]:
                self.slots[idx] = row[4]
        pending = array("i", bytes(4 * size))
        children: dict[int, list[int]] = {}
        for idx, blob in deps_of:
            parents = array("i")
            parents.frombytes(blob)
            count = 0
            for parent in parents:
                if status[parent] != DONE:
                    count += 1
                children.setdefault(parent, []).append(idx)
            pending[idx] = count
        self.status = status
        self.pending = pending
        self.children = children
        ready: deque[int] = deque()
        if manager and status[n] == WAITING:
            ready.append(n)
        for idx in range(n):
            if status[idx] == WAITING and pending[idx] == 0:
                ready.append(idx)
        self.ready = ready
        self.cursor = 0

    def upcoming(self, count: int) -> list[int]:
        """Up to `count` tasks, in order, that wait for dependencies (they start later)."""
        status, pending, n = self.status, self.pending, self.n
        pos = self.cursor
        while pos < n and (status[pos] != WAITING or pending[pos] == 0):
            pos += 1
        self.cursor = pos
        found: list[int] = []
        while pos < n and len(found) < count:
            if status[pos] == WAITING and pending[pos]:
                found.append(pos)
            pos += 1
        return found

    def seq(self, idx: int) -> int:
        """The store's seq of index `idx`."""
        return -1 if idx == self.n else idx

    def index(self, seq: int) -> int:
        """The index of the store's `seq`."""
        return self.n if seq == -1 else seq

    def finish(self, idx: int, satisfied: bool) -> None:
        """Mark a task completed and release the dependents it satisfies."""
        self.status[idx] = DONE if satisfied else BLOCKED
        self.running -= 1
        self.unfinished -= 1
        if satisfied:
            kids = self.children.get(idx)
            if kids:
                pending, status, ready = self.pending, self.status, self.ready
                for child in kids:
                    pending[child] -= 1
                    if pending[child] == 0 and status[child] == WAITING:
                        ready.append(child)

    def requeue(self, idx: int, *, front: bool = False) -> None:
        """A running task goes back to the queue (retry, requeue, failed preparation)."""
        self.status[idx] = WAITING
        self.running -= 1
        if front:
            self.ready.appendleft(idx)
        else:
            self.ready.append(idx)

    def can_start(self) -> bool:
        """Whether another task of this job may start now (state, maxParallelTasks)."""
        return (
            self.state == "active"
            and bool(self.ready)
            and (self.max_parallel < 0 or self.running < self.max_parallel)
        )
