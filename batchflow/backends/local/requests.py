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
    from batchflow.backends.local.ledger import Ledger
    from batchflow.backends.local.lookahead import LookAhead
    from batchflow.backends.local.paths import StateDir
    from batchflow.backends.local.prepare import Preparations
    from batchflow.backends.local.transitions import Transitions

__all__ = ["Requests"]


class Requests:
    """Carries out service requests against the engine's jobs."""

    ahead: LookAhead
    prep: Preparations
    transitions: Transitions

    def __init__(self, ledger: Ledger, state: StateDir) -> None:
        self.ledger = ledger
        self.state = state

    def apply(self, job: JobRun, seq: int | None, op: str, arg: str | None) -> None:
        """Do what request `op` asks of `job` (or of its task `seq`)."""
        ledger = self.ledger
        value = json.loads(arg) if arg else None
        transitions = self.transitions
        if op == "terminate":
            transitions.terminate(job, None)
        elif op == "delete":
            transitions.delete(job)
        elif op == "disable":
            transitions.disable(job, value or "requeue", recorded=True)
        elif op == "enable":
            transitions.enable(job)
        elif op == "update":
            row = ledger.store.one("SELECT spec FROM jobs WHERE rowid = ?", (job.rowid,))
            if row is not None:
                job.configure(row[0])
                self.ahead.reset()
                transitions.after_change(job)
        elif seq is not None:
            idx = seq + 1
            if idx >= job.n:
                job.load(ledger.store)
            if op == "task-terminate":
                self.terminate_task(job, idx)
            elif op == "task-delete":
                self.delete_task(job, idx, str(value))
            elif op == "task-reactivate":
                self.reactivate(job, idx)
            elif op == "task-update":
                self.ahead.reset()

    def terminate_task(self, job: JobRun, idx: int) -> None:
        """End one task: a running one is killed (its end is recorded when reaped); one
        that has not started completes now, as user-terminated."""
        ledger = self.ledger
        status = job.status[idx]
        if status == RUNS:
            found = self.ledger.attempt_of(job, idx)
            if found is not None:
                pid, attempt = found
                if attempt.kill_reason is None:
                    attempt.kill_reason = "terminate"
                    kill_group(pid)
            else:
                self.prep.end_waiter(job, idx, outcome.task_ended())
            return
        if status != WAITING:
            return
        row = ledger.store.one(
            "SELECT def FROM tasks WHERE job = ? AND seq = ?", (job.rowid, job.seq(idx))
        )
        conditions = json.loads(row[0]).get("exitConditions") if row else None
        result = outcome.Outcome(None, outcome.task_ended())
        satisfied, _ = outcome.exit_options(conditions, result)
        job.running += 1  # `finish` counts it out of the running ones
        job.finish(idx, satisfied)
        ledger.count(job, active=-1, bad=1)
        self.transitions.record_end(job, idx, result, satisfied, time.time(), None)
        self.ahead.reset()
        self.transitions.after_change(job)

    def delete_task(self, job: JobRun, idx: int, task_id: str) -> None:
        """A task was deleted: forget it; a running one is killed and its row removed
        once it has ended."""
        status = job.status[idx]
        if status == RUNS:
            found = self.ledger.attempt_of(job, idx)
            if found is not None:
                pid, attempt = found
                attempt.kill_reason = "delete-task"
                kill_group(pid)
            return
        if status == WAITING:
            job.unfinished -= 1
        job.status[idx] = GONE
        self.forget(job, idx, task_id)

    def forget(self, job: JobRun, idx: int, task_id: str) -> None:
        """Remove what is left of a deleted task: its row (if any) and its directories."""
        ledger = self.ledger
        if job.status[idx] == WAITING:  # a killed running task, requeued by `settle`
            job.unfinished -= 1
        job.status[idx] = GONE
        row = ledger.store.one(
            "SELECT state FROM tasks WHERE job = ? AND seq = ?", (job.rowid, job.seq(idx))
        )
        if row is not None:
            ledger.write("DELETE FROM tasks WHERE job = ? AND seq = ?", (job.rowid, job.seq(idx)))
            ledger.write(
                "UPDATE jobs SET ntasks = ntasks - 1, n_active = n_active - 1 WHERE rowid = ?",
                (job.rowid,),
            )
        self.ahead.reset()
        self.transitions.discard(
            self.state.task_dir(node, job.id, task_id) for node in ledger.nodes
        )
        self.transitions.after_change(job)

    def reactivate(self, job: JobRun, idx: int) -> None:
        """A failed task was reactivated: it waits for its dependencies again, then runs."""
        ledger = self.ledger
        if job.status[idx] == WAITING:  # replaced before it ran: its parents may differ
            job.recount(ledger.store, idx)
            self.ahead.reset()
            return
        if job.status[idx] not in (DONE, BLOCKED):
            return
        if job.status[idx] == DONE:
            job.released.add(idx)  # its dependents were released already
        job.status[idx] = WAITING
        job.unfinished += 1
        job.recount(ledger.store, idx)
        if job.pending[idx] == 0:
            job.ready.append(idx)
        self.ahead.reset()
