"""Job preparation and release tasks: once per node, before the first task and at the end.

Batch's rules (docs/semantics.md 1.4):

- the preparation task runs on a node before the first task of the job there; the task
  that triggered it is `preparing` meanwhile (its slots are taken);
- it is retried up to its own `maxTaskRetryCount` (default 0); if it still fails and
  `waitForSuccess` is true (the default), the waiting tasks go back to `active` and no
  task of the job runs on that node again;
- when the job ends (terminate, all tasks complete, wall clock, ...), the release task
  runs on every node where the preparation task ran, without taking a slot (default and
  maximum maxWallClockTime PT15M); the job is `completed` once they have finished,
  whatever their result.

Status rows live in the `prep` table (kind 'preparation' or 'release', one per job and
node), so a restarted engine neither reruns a finished preparation nor forgets a failed one.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from batchflow.backends.local import outcome
from batchflow.backends.local.jobrun import RUNS, JobRun
from batchflow.backends.local.launch import Attempt
from batchflow.backends.local.store import FAILURE, RUNNING, SUCCESS

if TYPE_CHECKING:
    from batchflow.backends.local.ledger import Ledger
    from batchflow.backends.local.starting import Starter
    from batchflow.backends.local.transitions import Transitions

__all__ = ["Preparations"]

#: (index, task id, definition, slots, retries) of a task waiting for its node's preparation.
Waiter = tuple[int, str, dict[str, Any], int, int]
_PREP, _RELEASE = -2, -3


class Preparations:
    """Preparation and release state of every job on every node."""

    starter: Starter
    transitions: Transitions

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        #: (job rowid, node) -> 'running' | 'done' | 'failed'
        self.status: dict[tuple[int, str], str] = {}
        self.waiters: dict[tuple[int, str], list[Waiter]] = {}
        self.queue: list[tuple[Attempt, dict[str, Any]]] = []

    def load(self, job: JobRun) -> None:
        """Read what earlier engines recorded for `job`."""
        if job.prep is None:
            return
        wait = job.prep.get("waitForSuccess", True)
        for node, result in self.ledger.store.query(
            "SELECT node, result FROM prep WHERE job = ? AND kind = 'preparation' "
            "AND state = 'completed'",
            (job.rowid,),
        ):
            ok = result == SUCCESS or not wait
            self.status[(job.rowid, node)] = "done" if ok else "failed"

    def needed(self, job: JobRun, node: str) -> bool:
        """Whether a task of `job` must wait for the preparation task on `node`."""
        return job.prep is not None and self.status.get((job.rowid, node)) != "done"

    def failed_on(self, job: JobRun, node: str) -> bool:
        """Whether the preparation task failed on `node` (no task of `job` runs there)."""
        return job.prep is not None and self.status.get((job.rowid, node)) == "failed"

    def wait(self, job: JobRun, node: str, waiter: Waiter) -> None:
        """Park a task until the node is prepared, starting the preparation if needed."""
        key = (job.rowid, node)
        self.waiters.setdefault(key, []).append(waiter)
        if self.status.get(key) != "running":
            self._queue(job, node, "preparation", 0)

    def _queue(self, job: JobRun, node: str, kind: str, retries: int) -> None:
        spec = job.prep if kind == "preparation" else job.release
        assert spec is not None
        constraints = spec.get("constraints") or {}
        if kind == "preparation":
            self.status[(job.rowid, node)] = "running"
            wall = constraints.get("maxWallClockTime")
            max_retries = constraints.get("maxTaskRetryCount", 0)
        else:
            wall = spec.get("maxWallClockTime") or "PT15M"
            max_retries = 0
        task_id = spec.get("id") or f"job{kind}"
        now = time.time()
        attempt = Attempt(
            job,
            _PREP if kind == "preparation" else _RELEASE,
            task_id,
            node,
            0,
            0,
            now,
            None,
            max_retries,
            retries,
            wall,
            kind=kind,
        )
        self.ledger.write(
            "INSERT OR REPLACE INTO prep(job, node, kind, state, start, retries) "
            "VALUES(?, ?, ?, 'running', ?, ?)",
            (job.rowid, node, kind, now, retries),
        )
        self.queue.append((attempt, spec))

    def launch_queued(self) -> None:
        """Spawn the preparation/release attempts whose start was just committed."""
        batch, self.queue = self.queue, []
        for attempt, spec in batch:
            self.starter.spawn_attempt(attempt, spec)

    def finished(self, attempt: Attempt, back: str | None, result: outcome.Outcome | None) -> None:
        """A preparation or release attempt ended."""
        ledger, job, node = self.ledger, attempt.job, attempt.node
        key = (job.rowid, node)
        if back == "retry":
            self._queue(job, node, attempt.kind, attempt.retries + 1)
            return
        if result is None:  # requeued with its job (disable): prepare again later
            self.status.pop(key, None)
            return
        ok = result.succeeded
        ledger.write(
            "UPDATE prep SET state = 'completed', end = ?, exit_code = ?, result = ?, "
            "failure = ? WHERE job = ? AND node = ? AND kind = ?",
            (
                time.time(),
                result.exit_code,
                SUCCESS if ok else FAILURE,
                _json(result.failure),
                job.rowid,
                node,
                attempt.kind,
            ),
        )
        if attempt.kind == "release":
            self.transitions.after_change(job)
            return
        wait = (job.prep or {}).get("waitForSuccess", True)
        self.status[key] = "done" if ok or not wait else "failed"
        waiters = self.waiters.pop(key, [])
        now = time.time()
        for idx, task_id, definition, need, retries in waiters:
            if job.status[idx] != RUNS or job.state not in ("active", "terminating"):
                continue
            if job.state == "terminating":
                continue
            if self.status[key] == "done":
                ledger.write(
                    "UPDATE tasks SET prev = state, prev_time = state_time, state = ?, "
                    "state_time = ?, modified = ?, start = ? WHERE job = ? AND seq = ?",
                    (RUNNING, now, now, now, job.rowid, job.seq(idx)),
                )
                self.starter.to_launch.append((job, idx, task_id, definition, node, need, retries))
            else:
                ledger.used[node] -= need
                job.requeue(idx, front=True)
                ledger.count(job, active=1, running=-1)
                ledger.write(
                    "UPDATE tasks SET prev = state, prev_time = state_time, state = 0, "
                    "state_time = ?, modified = ?, start = NULL, node = NULL "
                    "WHERE job = ? AND seq = ?",
                    (now, now, job.rowid, job.seq(idx)),
                )
        self.transitions.after_change(job)

    def ending(self, job: JobRun, failure: dict[str, Any], *, release: bool = True) -> None:
        """The job is terminating or being deleted: release tasks start, waiters end."""
        ledger = self.ledger
        for pid, attempt in ledger.attempts.items():
            if attempt.job is job and attempt.kind == "preparation" and not attempt.kill_reason:
                attempt.kill_reason = "terminate"
                from batchflow.backends.local.runner import kill_group

                kill_group(pid)
        if release and job.prep is not None and job.release is not None:
            released = {
                node
                for (node,) in self.ledger.store.query(
                    "SELECT node FROM prep WHERE job = ? AND kind = 'release' "
                    "AND state = 'completed'",
                    (job.rowid,),
                )
            }
            for (rowid, node), _ in list(self.status.items()):
                if rowid == job.rowid and node not in released:
                    self._queue(job, node, "release", 0)
        for (rowid, node), waiters in list(self.waiters.items()):
            if rowid != job.rowid:
                continue
            del self.waiters[(rowid, node)]
            for idx, task_id, _definition, need, retries in waiters:
                if job.status[idx] != RUNS:
                    continue
                ghost = Attempt(
                    job, idx, task_id, node, need, 0, time.time(), None, 0, retries, None
                )
                self.transitions.settle(ghost, None, outcome.Outcome(None, failure))

    def end_waiter(self, job: JobRun, idx: int, failure: dict[str, Any]) -> None:
        """A task waiting for its node's preparation is terminated: it completes now."""
        for (rowid, node), waiters in self.waiters.items():
            if rowid != job.rowid:
                continue
            for waiter in waiters:
                if waiter[0] == idx:
                    waiters.remove(waiter)
                    _, task_id, _definition, need, retries = waiter
                    ghost = Attempt(
                        job, idx, task_id, node, need, 0, time.time(), None, 0, retries, None
                    )
                    self.transitions.settle(ghost, None, outcome.Outcome(None, failure))
                    return

    def releasing(self, job: JobRun) -> bool:
        """Whether preparation or release attempts of `job` are still running or queued."""
        if any(a.job is job for a, _ in self.queue):
            return True
        return any(
            a.job is job and a.kind in ("preparation", "release")
            for a in self.ledger.attempts.values()
        )


def _json(value: Any) -> str | None:
    import json

    return json.dumps(value) if value else None
