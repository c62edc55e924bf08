"""Submitting a flow's job: create it, or attach to the job that has its id.

Attaching is what makes `batchflow submit` safe to repeat, and follows Batch:

- tasks already in the job keep their state and results; tasks new in the flow are
  added (their dependencies may name tasks the job already has);
- a task whose definition changed (including the content of its `inputs=` files) is an
  error unless `replace`, which resets it so it runs again (never while it runs);
- job settings are compared only where the flow states them: a task-only file states
  none, so it attaches to any job; with `replace`, the stated settings Batch lets one
  change are updated (as `az batch job set` would) and the rest is refused in one line
  (`usesTaskDependencies` after creation, anything on a completed job);
- a flow's dependency on a task that is neither in the flow nor in the job is a typo and
  refused (a service client adding a single task may name one that comes later).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from batchflow.backends.base import SubmitResult
from batchflow.backends.local.catalog import (
    add_tasks,
    definitions,
    first_difference,
    flow_tasks,
    unknown_dependency,
)
from batchflow.backends.local.service import MUTABLE_JOB_FIELDS, BatchService
from batchflow.backends.local.store import COMPLETED, FAILURE, SUCCESS
from batchflow.exceptions import BackendError

if TYPE_CHECKING:
    from batchflow.dsl import Job

__all__ = ["submit_flow"]

_CHUNK = 500


def _stated_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Settings the flow states whose value differs from the stored job's."""
    return sorted(
        key
        for key, value in new.items()
        if key not in ("id", "usesTaskDependencies") and old.get(key) != value
    )


def submit_flow(
    service: BatchService, job: Job, *, replace: bool = False, environ: dict[str, str] | None = None
) -> SubmitResult:
    """Store `job` of a flow: create it, or attach to the existing job with its id.

    The caller makes sure an engine runs it (the local backend starts one early).
    """
    spec = job.to_wire(with_tasks=False)
    defs = definitions(job)
    base_dir = job.inputs_dir()
    needs_deps = bool(spec.get("usesTaskDependencies"))
    store = service.store
    with store.write() as db:
        row = db.execute(
            "SELECT rowid, id, state, spec, terminate_reason FROM jobs WHERE key = ?",
            (job.id.lower(),),
        ).fetchone()
        if row is None:
            rowid = service.insert_job(db, spec, base_dir=base_dir, environ=environ)
            job_name, existing = job.id, {}
        else:
            rowid, job_name = row[0], row[1]
            _check_job(service, db, row, spec, needs_deps, replace)
            existing = _existing(db, rowid, job._ids)
        new_positions: list[int] = []
        changed: list[int] = []
        for pos, task_id in enumerate(job._ids):
            known = existing.get(task_id.lower())
            if known is None:
                new_positions.append(pos)
            elif known[1] != defs[pos]:
                changed.append(pos)
        if changed and not replace:
            pos = changed[0]
            field = first_difference(
                json.loads(existing[job._ids[pos].lower()][1]), json.loads(defs[pos])
            )
            raise BackendError(
                f"job '{job_name}' task '{job._ids[pos]}': {field} changed since the task was "
                "submitted",
                code="TaskDefinitionChanged",
                job_id=job_name,
                task_id=job._ids[pos],
            )
        if row is not None and (new_positions or changed) and row[2] != "active":
            reason = f" ({row[4]})" if row[4] else ""
            raise BackendError(
                f"job '{job_name}' is {row[2]}{reason}; Batch adds and changes no tasks in it",
                code={"completed": "JobCompleted", "terminating": "JobBeingTerminated"}.get(
                    row[2], "JobNotActive"
                ),
                job_id=job_name,
            )
        now = time.time()
        for pos in changed:
            _reset(service, db, rowid, job, pos, existing[job._ids[pos].lower()], defs, now)
        if new_positions:
            if row is not None:
                db.execute("UPDATE jobs SET base_dir = ? WHERE rowid = ?", (base_dir, rowid))
            unresolved = add_tasks(db, store, rowid, flow_tasks(job, defs, new_positions), now)
            if unresolved.ids or unresolved.ranges:
                # Positions in `unresolved` are within the added tasks: map them back.
                unresolved.ids = [(new_positions[p], i, d) for p, i, d in unresolved.ids]
                unresolved.ranges = [
                    (new_positions[p], i, a, b, n) for p, i, a, b, n in unresolved.ranges
                ]
                raise unknown_dependency(job, unresolved)
    return SubmitResult(
        job_id=job_name,
        added=len(new_positions),
        unchanged=len(job._ids) - len(new_positions) - len(changed),
        replaced=len(changed),
        replaced_ids=tuple(job._ids[p] for p in changed),
    )


def _check_job(
    service: BatchService,
    db: Any,
    row: Any,
    spec: dict[str, Any],
    needs_deps: bool,
    replace: bool,
) -> None:
    rowid, job_name, state, old_text = row[0], row[1], row[2], row[3]
    if state == "deleting":
        raise BackendError(
            f"job '{job_name}' is being deleted", code="JobBeingDeleted", job_id=job_name
        )
    old = json.loads(old_text)
    stated = spec.get("usesTaskDependencies")
    if needs_deps and not old.get("usesTaskDependencies"):
        raise BackendError(
            f"job '{job_name}' was created without usesTaskDependencies, so its tasks cannot "
            "have dependencies (Batch cannot change it after creation)",
            code="TaskDependenciesNotSpecifiedOnJob",
            job_id=job_name,
        )
    if stated is not None and bool(stated) != bool(old.get("usesTaskDependencies")):
        raise BackendError(
            f"job '{job_name}' usesTaskDependencies: cannot be changed after the job is created",
            code="PropertyCannotBeUpdated",
            job_id=job_name,
        )
    changes = _stated_changes(old, spec)
    if not changes:
        return
    if not replace:
        raise BackendError(
            f"job '{job_name}' already exists with a different {changes[0]}",
            code="JobDefinitionChanged",
            job_id=job_name,
        )
    fixed = [k for k in changes if k not in MUTABLE_JOB_FIELDS]
    if fixed:
        raise BackendError(
            f"job '{job_name}' {fixed[0]}: cannot be changed after the job is created",
            code="PropertyCannotBeUpdated",
            job_id=job_name,
        )
    service.apply_update(db, (rowid, job_name, state, old_text), {k: spec[k] for k in changes})


def _existing(db: Any, rowid: int, ids: list[str]) -> dict[str, tuple[int, str, int, int | None]]:
    """lower(id) -> (seq, definition, state, result) of the stored tasks among `ids`."""
    found: dict[str, tuple[int, str, int, int | None]] = {}
    for i in range(0, len(ids), _CHUNK):
        part = ids[i : i + _CHUNK]
        for seq, task_id, definition, state, result in db.execute(
            "SELECT seq, id, def, state, result FROM tasks WHERE job = ? AND seq >= 0 "
            f"AND id IN ({','.join('?' * len(part))})",
            (rowid, *part),
        ):
            found[str(task_id).lower()] = (int(seq), str(definition), int(state), result)
    return found


def _reset(
    service: BatchService,
    db: Any,
    rowid: int,
    job: Job,
    pos: int,
    known: tuple[int, str, int, int | None],
    defs: list[str],
    now: float,
) -> None:
    """Give a stored task the flow's new definition; it runs again."""
    from array import array

    from batchflow.backends.local.catalog import _lookup_ids
    from batchflow.dsl import dep_tuple

    seq, _definition, state, result = known
    task_id = job._ids[pos]
    if state in (1, 2):
        raise BackendError(
            f"job '{job.id}' task '{task_id}' is running; it can be replaced once it has finished",
            code="OperationInvalidForCurrentState",
            job_id=job.id,
            task_id=task_id,
        )
    ids = dep_tuple(job._dep_ids[pos])
    parents = _lookup_ids(db, rowid, [d.lower() for d in ids]) if ids else {}
    blob = array("i", parents.values()).tobytes() if parents else None
    need = (job._specs[pos] or {}).get("requiredSlots", 1)
    db.execute(
        "UPDATE tasks SET def = ?, deps = ?, slots = ?, prev = state, prev_time = state_time, "
        "state = 0, state_time = ?, modified = ?, start = NULL, end = NULL, exit_code = NULL, "
        "result = NULL, failure = NULL, satisfied = NULL, retries = 0, last_retry = NULL, "
        "done_seq = NULL, expires = NULL WHERE job = ? AND seq = ?",
        (service.store.seal(defs[pos]), blob, need if need > 1 else None, now, now, rowid, seq),
    )
    if state == COMPLETED:
        db.execute(
            "UPDATE jobs SET n_active = n_active + 1, n_succeeded = n_succeeded - ?, "
            "n_failed = n_failed - ?, settled = 0 WHERE rowid = ?",
            (int(result == SUCCESS), int(result == FAILURE), rowid),
        )
        service._request(db, rowid, "task-reactivate", seq)
    else:
        service._request(db, rowid, "task-reactivate", seq)
