"""What the engine does for the requests a service filed (the `requests` table, in order).

A service call has already written what its caller must see (a job `terminating`, a task
back in `active`, a row gone); the engine does the part that involves processes and its
own memory of the job: kill a running task, run release tasks, requeue, put a
reactivated task back in the queue, remove directories.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from batchflow.backends.local import outcome
from batchflow.backends.local.jobrun import BLOCKED, DONE, GONE, RUNS, WAITING, JobRun
from batchflow.backends.local.runner import kill_group

if TYPE_CHECKING:
    from batchflow.backends.local.engine import Engine

__all__ = ["Requests"]


class Requests:
    """Carries out service requests against the engine's jobs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def apply(self, job: JobRun, seq: int | None, op: str, arg: str | None) -> None:
        """Do what request `op` asks of `job` (or of its task `seq`)."""
        engine = self.engine
        value = json.loads(arg) if arg else None
        transitions = engine.transitions
        if op == "terminate":
            transitions.terminate(job, None)
        elif op == "delete":
            transitions.delete(job)
        elif op == "disable":
            transitions.disable(job, value or "requeue", recorded=True)
        elif op == "enable":
            transitions.enable(job)
        elif op == "update":
            row = engine.store.one("SELECT spec FROM jobs WHERE rowid = ?", (job.rowid,))
            if row is not None:
                job.configure(row[0])
                engine.ahead.reset()
                transitions.after_change(job)
        elif seq is not None:
            idx = seq + 1
            if idx >= job.n:
                job.load(engine.store)
            if op == "task-terminate":
                self.terminate_task(job, idx)
            elif op == "task-delete":
                self.delete_task(job, idx, str(value))
            elif op == "task-reactivate":
                self.reactivate(job, idx)
            elif op == "task-update":
                engine.ahead.reset()

    def _attempt_of(self, job: JobRun, idx: int) -> tuple[int, object] | None:
        for pid, attempt in self.engine.attempts.items():
            if attempt.job is job and attempt.idx == idx and attempt.kind in ("task", "manager"):
                return pid, attempt
        return None

    def terminate_task(self, job: JobRun, idx: int) -> None:
        """End one task: a running one is killed (its end is recorded when reaped); one
        that has not started completes now, as user-terminated."""
        engine = self.engine
        status = job.status[idx]
        if status == RUNS:
            found = self._attempt_of(job, idx)
            if found is not None:
                pid, attempt = found
                if attempt.kill_reason is None:  # type: ignore[attr-defined]
                    attempt.kill_reason = "terminate"  # type: ignore[attr-defined]
                    kill_group(pid)
            else:
                engine.prep.end_waiter(job, idx, outcome.task_ended())
            return
        if status != WAITING:
            return
        row = engine.store.one(
            "SELECT def FROM tasks WHERE job = ? AND seq = ?", (job.rowid, job.seq(idx))
        )
        conditions = json.loads(row[0]).get("exitConditions") if row else None
        result = outcome.Outcome(None, outcome.task_ended())
        satisfied, _ = outcome.exit_options(conditions, result)
        job.running += 1  # `finish` counts it out of the running ones
        job.finish(idx, satisfied)
        engine.count(job, active=-1, bad=1)
        engine.transitions.record_end(job, idx, result, satisfied, time.time(), None)
        engine.ahead.reset()
        engine.transitions.after_change(job)

    def delete_task(self, job: JobRun, idx: int, task_id: str) -> None:
        """A task was deleted: forget it; a running one is killed and its row removed
        once it has ended."""
        status = job.status[idx]
        if status == RUNS:
            found = self._attempt_of(job, idx)
            if found is not None:
                pid, attempt = found
                attempt.kill_reason = "delete-task"  # type: ignore[attr-defined]
                kill_group(pid)
            return
        if status == WAITING:
            job.unfinished -= 1
        job.status[idx] = GONE
        self.forget(job, idx, task_id)

    def forget(self, job: JobRun, idx: int, task_id: str) -> None:
        """Remove what is left of a deleted task: its row (if any) and its directories."""
        engine = self.engine
        if job.status[idx] == WAITING:  # a killed running task, requeued by `settle`
            job.unfinished -= 1
        job.status[idx] = GONE
        row = engine.store.one(
            "SELECT state FROM tasks WHERE job = ? AND seq = ?", (job.rowid, job.seq(idx))
        )
        if row is not None:
            engine.write("DELETE FROM tasks WHERE job = ? AND seq = ?", (job.rowid, job.seq(idx)))
            engine.write(
                "UPDATE jobs SET ntasks = ntasks - 1, n_active = n_active - 1 WHERE rowid = ?",
                (job.rowid,),
            )
        engine.ahead.reset()
        engine.transitions.discard(
            engine.state.task_dir(node, job.id, task_id) for node in engine.nodes
        )
        engine.transitions.after_change(job)

    def reactivate(self, job: JobRun, idx: int) -> None:
        """A failed task was reactivated: it waits for its dependencies again, then runs."""
        engine = self.engine
        if job.status[idx] == WAITING:  # replaced before it ran: its parents may differ
            job.recount(engine.store, idx)
            engine.ahead.reset()
            return
        if job.status[idx] not in (DONE, BLOCKED):
            return
        if job.status[idx] == DONE:
            job.released.add(idx)  # its dependents were released already
        job.status[idx] = WAITING
        job.unfinished += 1
        job.recount(engine.store, idx)
        if job.pending[idx] == 0:
            job.ready.append(idx)
        engine.ahead.reset()
