"""State transitions: an attempt's end, and a job's terminate, disable and delete.

Each transition is staged in the engine's open transaction, so it is committed together
with whatever caused it (a completion with the dependents it releases, a terminate with
the kills it implies) and before anything a CLI could observe depends on it.

- an attempt ends (`settle`): back to the queue (a retry, a requeue) or completed with
  Batch's result and exit options, which may terminate or disable its job;
- a job ends (`terminate`, for every reason Batch has): running tasks are killed and
  complete as `TaskEnded`, active ones stay active, release tasks run, then the job is
  `completed`;
- a job is disabled (`disable`, jobAction): running tasks are requeued; `enable`
  makes it active again;
- a job is deleted (`delete`, then `remove` once nothing of it runs): rows go, the task
  directories are moved aside and removed in the background (`results/` stays).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from batchflow.backends.local import outcome
from batchflow.backends.local.jobrun import JobRun
from batchflow.backends.local.launch import Attempt
from batchflow.backends.local.runner import kill_group
from batchflow.backends.local.store import FAILURE, SUCCESS

if TYPE_CHECKING:
    from batchflow.backends.local.ledger import Ledger
    from batchflow.backends.local.lookahead import LookAhead
    from batchflow.backends.local.paths import StateDir
    from batchflow.backends.local.prepare import Preparations
    from batchflow.backends.local.starting import Starter

__all__ = ["Transitions"]

_END = (
    "UPDATE tasks SET prev = state, prev_time = state_time, state = 3, state_time = ?, end = ?, "
    "modified = ?, exit_code = ?, result = ?, failure = ?, satisfied = ?, done_seq = ?, "
    "expires = ? WHERE job = ? AND seq = ?"
)
_BACK = (
    "UPDATE tasks SET prev = state, prev_time = state_time, state = 0, state_time = ?, "
    "modified = ?, exit_code = NULL{extra} WHERE job = ? AND seq = ?"
)
_RETRY = _BACK.format(extra=", retries = retries + 1, last_retry = ?")
_REQUEUE = _BACK.format(extra=", requeues = requeues + 1, last_requeue = ?")


class Transitions:
    """The state changes of tasks and jobs, staged in the engine's transaction."""

    ahead: LookAhead
    prep: Preparations
    starter: Starter

    def __init__(self, ledger: Ledger, state: StateDir) -> None:
        self.ledger = ledger
        self.state = state

    def settle(self, attempt: Attempt, back: str | None, result: outcome.Outcome | None) -> None:
        """Record an attempt's end: back to the queue (`retry`/`requeue`) or completed."""
        ledger = self.ledger
        if attempt.kind in ("preparation", "release"):
            self.prep.finished(attempt, back, result)
            return
        job, idx = attempt.job, attempt.idx
        ledger.used[attempt.node] -= attempt.slots
        if attempt.kind == "manager":
            ledger.exclusive.discard(attempt.node)
        now = time.time()
        seq = job.seq(idx)
        if back is not None or result is None:
            job.requeue(idx, front=back == "requeue")
            ledger.count(job, active=1, running=-1)
            if back == "retry":
                ledger.write(_RETRY, (now, now, now, job.rowid, seq))
            else:
                ledger.write(_REQUEUE, (now, now, now, job.rowid, seq))
                if job.state == "disabling":
                    self.after_change(job)
            return
        satisfied, action = outcome.exit_options(attempt.conditions, result)
        job.finish(idx, satisfied)
        ledger.count(job, running=-1, ok=int(result.succeeded), bad=int(not result.succeeded))
        self.record_end(job, idx, result, satisfied, now, now + attempt.retention)
        ok = result.succeeded
        if attempt.kind == "manager" and job.manager_kills and job.state == "active":
            self.terminate(job, "JMComplete")
        elif not ok and job.on_failure and job.state == "active":
            if action == "terminate":
                self.terminate(job, "TaskFailed")
            elif action == "disable":
                self.disable(job)
        self.after_change(job)

    def record_end(
        self,
        job: JobRun,
        idx: int,
        result: outcome.Outcome,
        satisfied: bool,
        now: float,
        expires: float | None,
    ) -> None:
        """Write a task's completion (its in-memory state is the caller's)."""
        job.done += 1
        failure = json.dumps(result.failure) if result.failure else None
        self.ledger.write(
            _END,
            (
                now,
                now,
                now,
                result.exit_code,
                SUCCESS if result.succeeded else FAILURE,
                failure,
                int(satisfied),
                job.done,
                expires,
                job.rowid,
                job.seq(idx),
            ),
        )

    def after_change(self, job: JobRun) -> None:
        """Job-level consequences: all tasks complete, a terminating job that is done."""
        prep = self.prep
        if job.state == "active" and job.on_all_complete and job.unfinished == 0:
            self.terminate(job, "AllTasksComplete")
        if job.state == "terminating" and job.running == 0 and not prep.releasing(job):
            self.set_job_state(job, "completed", end=True)
        if job.state == "disabling" and job.running == 0:
            self.set_job_state(job, "disabled")
        if job.state == "deleting" and job.running == 0 and not prep.releasing(job):
            self.remove(job)

    def set_job_state(
        self, job: JobRun, state: str, *, reason: str | None = None, end: bool = False
    ) -> None:
        """Move the job to `state` (with previousState kept), with its counts up to date."""
        now = time.time()
        self.ledger.counts_due = True
        self.ledger.write(
            "UPDATE jobs SET previous_state = state, previous_state_time = state_time, "
            "state = ?, state_time = ?, modified = ?, "
            "terminate_reason = coalesce(?, terminate_reason), "
            "end_time = CASE WHEN ? THEN ? ELSE end_time END, settled = ? WHERE rowid = ?",
            (state, now, now, reason, end, now, int(state == "completed"), job.rowid),
        )
        job.state = state
        if state == "completed":
            job.settled = 1
            self.ledger.jobs.pop(job.rowid, None)

    def kill_all(self, job: JobRun, reason: str) -> None:
        """Kill every running attempt of `job` (their reaping records why)."""
        for pid, attempt in self.ledger.attempts.items():
            if (
                attempt.job is job
                and attempt.kind in ("task", "manager")
                and attempt.kill_reason is None
            ):
                attempt.kill_reason = reason
                kill_group(pid)

    def terminate(self, job: JobRun, reason: str | None) -> None:
        """Batch's job terminate: running tasks end, active tasks stay active, release runs.

        `reason` None: a service already moved the job to `terminating` with its reason.
        """
        if reason is not None:
            if job.state not in ("active", "disabled", "disabling", "enabling"):
                return
            self.set_job_state(job, "terminating", reason=reason)
        job.state = "terminating"
        job.ready.clear()
        self.ahead.reset()
        self.kill_all(job, "terminate")
        self.prep.ending(job, outcome.task_ended())
        self.after_change(job)

    def disable(self, job: JobRun, mode: str = "requeue", *, recorded: bool = False) -> None:
        """Disable the job: nothing new starts; running tasks are requeued (jobAction
        `disable`, disableTasks `requeue`), ended (`terminate`) or left to finish (`wait`).
        `recorded`: a service already moved it to `disabling`."""
        if not recorded:
            self.set_job_state(job, "disabling")
        job.state = "disabling"
        self.ahead.reset()
        if mode != "wait":
            self.kill_all(job, "requeue" if mode == "requeue" else "terminate")
        # `disabling` until no task of the job runs (with `wait`: until they finish).
        self.after_change(job)

    def enable(self, job: JobRun) -> None:
        """Batch's job enable: a disabled job is active again and its tasks are scheduled."""
        if job.state in ("disabled", "disabling", "enabling"):
            self.set_job_state(job, "active")
            self.ahead.reset()
            self.after_change(job)

    def delete(self, job: JobRun) -> None:
        """Kill what runs, then remove the job, its tasks and their directories."""
        if job.ready or job.running:
            job.ready.clear()
            self.ahead.reset()
            self.kill_all(job, "delete")
            self.prep.ending(job, outcome.task_ended(), release=False)
        job.state = "deleting"
        self.after_change(job)

    def remove(self, job: JobRun) -> None:
        """The last step of a delete: rows go, directories are removed in the background.

        The helper that makes task directories ahead lets go of the job's first, so
        nothing is created in a tree while it is being deleted.
        """
        ledger = self.ledger
        ledger.write("DELETE FROM tasks WHERE job = ?", (job.rowid,))
        for table in ("prep", "waits", "wait_ranges", "requests"):
            ledger.write(f"DELETE FROM {table} WHERE job = ?", (job.rowid,))
        ledger.write("DELETE FROM jobs WHERE rowid = ?", (job.rowid,))
        ledger.jobs.pop(job.rowid, None)
        self.ahead.reset()
        self.starter.forget(job)
        root = self.state.root
        self.discard(node / "workitems" / job.id for node in root.joinpath("nodes").glob("*"))

    def discard(self, folders: Iterable[Path]) -> None:
        """Move `folders` aside and remove them in the background."""
        trash = self.state.root / "trash"
        moved = False
        for folder in folders:
            if folder.exists():
                trash.mkdir(exist_ok=True)
                target = trash / f"{folder.name}-{time.time_ns()}"
                with contextlib.suppress(OSError):
                    folder.rename(target)
                    moved = True
        if moved:
            with contextlib.suppress(OSError):
                os.posix_spawn("/bin/rm", ["rm", "-rf", str(trash)], {}, setsid=True)
