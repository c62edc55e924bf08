"""What an engine does first: take over from a predecessor that died.

A task left `running` or `preparing` by an engine that was killed is requeued, as Batch
requeues the tasks of a node it lost: state back to `active`, `requeueCount` + 1. Its
processes (which run in their own session and so outlived the engine) are killed first,
so they cannot race their own re-run. They are found by their environment, which every
process of a task inherits: `AZ_BATCH_NODE_ROOT_DIR` under this state directory's nodes
and the task's `AZ_BATCH_JOB_ID`/`AZ_BATCH_TASK_ID` (the engine records no pids, which
saves a write per task, and an environment is not reused the way a pid is). Their whole
process groups are killed. Task counts are recounted from the rows, so they can never
drift across crashes.
"""

from __future__ import annotations

import contextlib
import os
import time

from batchflow.backends.local.paths import StateDir
from batchflow.backends.local.runner import kill_group
from batchflow.backends.local.store import ACTIVE, COMPLETED, FAILURE, SUCCESS, Store

__all__ = ["recover", "task_groups"]


def task_groups(state: StateDir, tasks: set[tuple[str, str]] | None) -> set[int]:
    """Process groups of live processes of `tasks` ((job id, task id)) of this state dir
    (of every task of it with None)."""
    nodes = os.fsencode(state.root / "nodes") + b"/"
    groups: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as source:
                environ = source.read()
            if nodes not in environ:
                continue
            with open(f"/proc/{entry}/stat", "rb") as source:
                stat = source.read()
        except OSError:
            continue  # gone, or not ours to read
        found = dict(item.split(b"=", 1) for item in environ.split(b"\0") if b"=" in item)
        root = found.get(b"AZ_BATCH_NODE_ROOT_DIR", b"") + b"/"
        if not root.startswith(nodes):
            continue
        key = (
            os.fsdecode(found.get(b"AZ_BATCH_JOB_ID", b"")),
            os.fsdecode(found.get(b"AZ_BATCH_TASK_ID", b"")),
        )
        if tasks is None or key in tasks:
            groups.add(int(stat.rsplit(b")", 1)[1].split()[2]))  # field 5: pgrp
    return groups


def recover(store: Store, state: StateDir) -> int:
    """Requeue what a dead engine left running; the number of tasks requeued."""
    orphans = store.query(
        "SELECT j.id, t.id FROM tasks t JOIN jobs j ON j.rowid = t.job WHERE t.state IN (1, 2) "
        "UNION ALL SELECT j.id, p.kind FROM prep p JOIN jobs j ON j.rowid = p.job "
        "WHERE p.state = 'running'"
    )
    if orphans:
        tasks: set[tuple[str, str]] = set()
        for job_id, task_id in orphans:
            if task_id in ("preparation", "release"):
                spec = store.one("SELECT spec FROM jobs WHERE id = ?", (job_id,))
                task_id = _special_id(spec[0] if spec else "{}", task_id)
            tasks.add((job_id, task_id))
        for group in task_groups(state, tasks):
            kill_group(group)
    now = time.time()
    with store.write() as db:
        requeued = db.execute(
            "UPDATE tasks SET prev = state, prev_time = state_time, state = ?, state_time = ?, "
            "requeues = requeues + 1, last_requeue = ? WHERE state IN (1, 2)",
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
    import shutil

    with contextlib.suppress(OSError):
        shutil.rmtree(state.staging)
    return int(requeued)


def _special_id(spec_text: str, kind: str) -> str:
    import json

    spec = json.loads(spec_text)
    key = "jobPreparationTask" if kind == "preparation" else "jobReleaseTask"
    return str((spec.get(key) or {}).get("id") or f"job{kind}")
