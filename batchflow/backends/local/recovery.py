"""What an engine does first: take over from a predecessor that died.

A task left `running` or `preparing` by an engine that was killed is requeued, as Batch
requeues the tasks of a node it lost: state back to `active`, `requeueCount` + 1. Its
process (which runs in its own session and so outlived the engine) is killed first, so
it cannot race its own re-run; a recorded pid is only trusted if that process still has
the task's `AZ_BATCH_JOB_ID`/`AZ_BATCH_TASK_ID` in its environment (pids get reused).
Task counts are recounted from the rows, so they can never drift across crashes.
"""

from __future__ import annotations

import contextlib
import shutil
import time

from batchflow.backends.local.paths import StateDir
from batchflow.backends.local.runner import kill_group
from batchflow.backends.local.store import ACTIVE, COMPLETED, FAILURE, SUCCESS, Store

__all__ = ["is_task_process", "recover"]


def is_task_process(pid: int, job_id: str, task_id: str) -> bool:
    """Whether `pid` is (still) the process of this task, judged by its environment."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as source:
            environ = source.read()
    except OSError:
        return False
    variables = set(environ.split(b"\0"))
    return (
        f"AZ_BATCH_JOB_ID={job_id}".encode() in variables
        and f"AZ_BATCH_TASK_ID={task_id}".encode() in variables
    )


def recover(store: Store, state: StateDir) -> int:
    """Requeue what a dead engine left running; the number of tasks requeued."""
    orphans = store.query(
        "SELECT t.pid, j.id, t.id FROM tasks t JOIN jobs j ON j.rowid = t.job "
        "WHERE t.state IN (1, 2) AND t.pid IS NOT NULL "
        "UNION ALL SELECT p.pid, j.id, p.kind FROM prep p JOIN jobs j ON j.rowid = p.job "
        "WHERE p.state = 'running' AND p.pid IS NOT NULL"
    )
    for pid, job_id, task_id in orphans:
        if task_id in ("preparation", "release"):
            spec = store.one("SELECT spec FROM jobs WHERE id = ?", (job_id,))
            task_id = _special_id(spec[0] if spec else "{}", task_id)
        if is_task_process(pid, job_id, task_id):
            kill_group(pid)
    now = time.time()
    with store.write() as db:
        requeued = db.execute(
            "UPDATE tasks SET prev = state, prev_time = state_time, state = ?, state_time = ?, "
            "requeues = requeues + 1, last_requeue = ?, pid = NULL WHERE state IN (1, 2)",
            (ACTIVE, now, now),
        ).rowcount
        db.execute("DELETE FROM prep WHERE state = 'running'")
        db.execute(
            "UPDATE jobs SET n_running = 0, "
            "n_active = (SELECT count(*) FROM tasks WHERE job = jobs.rowid AND state = ?), "
            "n_succeeded = (SELECT count(*) FROM tasks WHERE job = jobs.rowid AND state = ? "
            "AND result = ?), "
            "n_failed = (SELECT count(*) FROM tasks WHERE job = jobs.rowid AND state = ? "
            "AND result = ?), "
            "ntasks = (SELECT count(*) FROM tasks WHERE job = jobs.rowid), settled = 0",
            (ACTIVE, COMPLETED, SUCCESS, COMPLETED, FAILURE),
        )
    with contextlib.suppress(OSError):
        shutil.rmtree(state.staging)
    return int(requeued)


def _special_id(spec_text: str, kind: str) -> str:
    import json

    spec = json.loads(spec_text)
    key = "jobPreparationTask" if kind == "preparation" else "jobReleaseTask"
    return str((spec.get(key) or {}).get("id") or f"job{kind}")
