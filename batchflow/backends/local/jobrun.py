"""A job as the engine holds it in memory: compact arrays, not task objects.

For each task only a status byte, a count of unsatisfied dependencies and (for tasks that
others wait for) a list of dependents are kept; 100,000 tasks cost a few megabytes. The
full definition of a task is read from the store when it starts. Index `i` is the task's
`seq + 1`: index 0 is the job manager task (seq -1 in the store), or an empty slot, so
tasks added later extend the arrays at the end and no index ever moves.
"""

from __future__ import annotations

import json
from array import array
from collections import deque
from typing import Any

from batchflow.backends.local.store import COMPLETED, KIND_MANAGER, PREPARING, RUNNING, Store
from batchflow.durations import parse_duration

__all__ = ["BLOCKED", "DONE", "GONE", "RUNS", "WAITING", "JobRun"]

# Status bytes (GONE: deleted, or the empty manager slot).
WAITING, RUNS, DONE, BLOCKED, GONE = 0, 1, 2, 3, 4


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
        "env",
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
        "pool_required",
        "prep",
        "priority",
        "ready",
        "release",
        "released",
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
        job_id, spec_text, state, creation, settled, done, base_dir, env, pool_required = row
        self.done: int = done
        self.base_dir: str | None = base_dir
        self.rowid = rowid
        self.id: str = job_id
        self.state: str = state
        self.settled: int = settled
        self.creation_time: float = creation
        #: It runs only on a pool of its poolId (created by the emulator), as on Batch.
        self.pool_required = bool(pool_required)
        #: The base environment of its tasks (taken from whoever created the job).
        self.env: dict[str, str] | None = json.loads(env) if env else None
        self.configure(spec_text)
        self.env_cache: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
        #: Tasks in the arrays: index n - 1 is the last (seq n - 2).
        self.n = 1
        self.manager = False
        self.status = bytearray([GONE])
        self.pending = array("i", [0])
        self.children: dict[int, list[int]] = {}
        self.slots: dict[int, int] = {}
        self.ready: deque[int] = deque()
        self.running = 0
        self.unfinished = 0
        #: Failed tasks that satisfied their dependents and were reactivated: their next
        #: completion must not release the dependents a second time.
        self.released: set[int] = set()
        #: Every task before this index has started or is ready (see `LookAhead`).
        self.cursor = 1

    def configure(self, spec_text: str) -> None:
        """Take the job's settings (at load, and after an update)."""
        self.spec: dict[str, Any] = json.loads(spec_text)
        spec = self.spec
        self.priority: int = spec.get("priority", 0)
        self.max_parallel: int = spec.get("maxParallelTasks", -1)
        constraints = spec.get("constraints") or {}
        self.max_retries: int = constraints.get("maxTaskRetryCount", 0)
        wall = constraints.get("maxWallClockTime")
        self.deadline: float | None = (
            self.creation_time + parse_duration(wall).total_seconds() if wall else None
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
        self.env_cache = {}

    def load(self, store: Store) -> None:
        """Read the tasks added since the last load (all of them the first time).

        Costs what was added, not what the job holds: the arrays grow at the end, and the
        dependents that earlier tasks record (`kids`) are linked to the new tasks.
        """
        rows = store.query(
            "SELECT seq, state, satisfied, deps, slots, kind, unresolved, kids FROM tasks "
            "WHERE job = ? AND seq >= ? ORDER BY seq",
            (self.rowid, self.n - 1 if self.n > 1 else -1),
        )
        if not rows:
            return
        status, pending, children = self.status, self.pending, self.children
        grow = max(r[0] for r in rows) + 2 - len(status)
        if grow > 0:
            status.extend(bytes([GONE]) * grow)
            pending.extend(bytes(4 * grow))
            self.n = len(status)
        new: list[tuple[int, bytes | None, int]] = []
        linked: list[int] = []
        first = rows[0][0] + 1  # a kid from this batch links through its own deps
        for seq, state, satisfied, deps, slots, kind, unresolved, kids in rows:
            idx = seq + 1
            if kind == KIND_MANAGER:
                self.manager = True
            if state == COMPLETED:
                status[idx] = DONE if satisfied else BLOCKED
            else:
                status[idx] = RUNS if state in (RUNNING, PREPARING) else WAITING
                self.running += state in (RUNNING, PREPARING)
                self.unfinished += 1
            if slots:
                self.slots[idx] = slots
            new.append((idx, deps, unresolved))
            if kids:
                waiting = array("i")
                waiting.frombytes(kids)
                early = [kid + 1 for kid in waiting if kid + 1 < first]
                if early:
                    known = children.setdefault(idx, [])
                    seen = set(known)
                    known.extend(kid for kid in early if kid not in seen)
                    linked.extend(early)
        ready = self.ready
        for idx, deps, unresolved in new:
            count = unresolved
            if deps:
                parents = array("i")
                parents.frombytes(deps)
                for parent in parents:
                    children.setdefault(parent + 1, []).append(idx)
                    count += status[parent + 1] != DONE
            pending[idx] = count
            if count == 0 and status[idx] == WAITING:
                ready.append(idx)
        for kid in linked:
            if status[kid] == WAITING:
                self.recount(store, kid)

    def recount(self, store: Store, idx: int) -> None:
        """Count the unsatisfied dependencies of task `idx` again (its parents changed).

        The row is read after the tasks were loaded, so it may name parents added since:
        those count as unfinished, and link themselves (through their `kids`) when loaded.
        """
        row = store.one(
            "SELECT deps, unresolved FROM tasks WHERE job = ? AND seq = ?",
            (self.rowid, idx - 1),
        )
        if row is None:
            return
        count = row[1]
        if row[0]:
            parents = array("i")
            parents.frombytes(row[0])
            loaded = len(self.status)
            for parent in parents:
                if parent + 1 >= loaded:
                    count += 1
                    continue
                kids = self.children.setdefault(parent + 1, [])
                if idx not in kids:  # a replaced task may name new parents
                    kids.append(idx)
                count += self.status[parent + 1] != DONE
        was = self.pending[idx]
        self.pending[idx] = count
        if count == 0 and was != 0 and self.status[idx] == WAITING:
            self.ready.append(idx)

    def upcoming(self, count: int) -> list[int]:
        """Up to `count` tasks, in order, that wait for dependencies (they start later)."""
        status, pending, n = self.status, self.pending, self.n
        pos = max(self.cursor, 1)
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
        return idx - 1

    def finish(self, idx: int, satisfied: bool) -> None:
        """Mark a task completed and release the dependents it satisfies."""
        self.status[idx] = DONE if satisfied else BLOCKED
        self.running -= 1
        self.unfinished -= 1
        if idx in self.released:
            self.released.discard(idx)
            return
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
