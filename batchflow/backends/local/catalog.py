"""Putting a job into the state store: a new job, or attaching to one that exists.

Attaching is what makes `batchflow submit` safe to repeat: tasks already in the store keep
their state and results, tasks new in the flow are added, and a task whose definition
changed is an error unless `replace` (then it is reset and runs again with the new
definition). Dependencies are resolved to task positions here, once, so the engine works
on integers.
"""

from __future__ import annotations

import json
import os
import time
from array import array
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchflow.backends.base import SubmitResult
from batchflow.backends.local.store import (
    ACTIVE,
    COMPLETED,
    FAILURE,
    KIND_MANAGER,
    RUNNING,
    SUCCESS,
    Store,
)
from batchflow.exceptions import InvalidFieldError, SubmitError

if TYPE_CHECKING:
    from batchflow.dsl import Job, Task

__all__ = [
    "MANAGER_SEQ",
    "check_inputs",
    "check_slots",
    "definitions",
    "submit_job",
    "task_definition",
]

#: seq of the job manager task (scheduled before every other task of its job).
MANAGER_SEQ = -1


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def task_definition(task: Task) -> dict[str, Any]:
    """What is stored for a task: its wire fields without the id, plus inputs/outputs."""
    wire = task.to_wire()
    del wire["id"]
    if task.inputs:
        wire["$inputs"] = list(task.inputs)
    if task.outputs:
        wire["$outputs"] = list(task.outputs)
    return wire


def definitions(job: Job) -> list[str]:
    """`task_definition` of every task as canonical JSON, in task order.

    Built from the task table's columns: a task with only a command line (and `after=`
    dependencies) is written straight from them, the same text `_canonical` makes of its
    definition; any other goes through `task_definition`.
    """
    from batchflow.dsl import dep_tuple

    dumps = json.dumps
    out: list[str] = []
    columns = zip(
        job._commands,
        job._dep_ids,
        job._dep_ranges,
        job._specs,
        job._inputs,
        job._outputs,
        strict=True,
    )
    for pos, (command, dep_ids, ranges, spec, inputs, outputs) in enumerate(columns):
        if spec or ranges or inputs or outputs:
            out.append(_canonical(task_definition(job.tasks[pos])))
            continue
        ids = dep_tuple(dep_ids)
        if ids:
            out.append(
                f'{{"commandLine":{dumps(command)},'
                f'"dependsOn":{{"taskIds":{dumps(list(ids), separators=(",", ":"))}}}}}'
            )
        else:
            out.append(f'{{"commandLine":{dumps(command)}}}')
    return out


def base_dir_of(job: Job) -> str:
    """The folder `inputs=` are relative to: the flow file's, else the current one."""
    if job.source:
        return os.path.dirname(os.path.abspath(job.source))
    return os.getcwd()


def check_inputs(job: Job) -> None:
    """Every `inputs=` file must exist before anything runs (a FlowError naming the task)."""
    from batchflow.exceptions import FlowError
    from batchflow.storage import check_inputs as check_task_inputs

    base = Path(base_dir_of(job))
    checked: set[tuple[str, ...]] = set()
    for seq, inputs in enumerate(job._inputs):  # the column: no Task handle per task
        if not inputs or inputs in checked:
            continue
        task = job.tasks[seq]
        try:
            check_task_inputs(inputs, base, job_id=job.id, task_id=task.id)
        except FlowError as exc:
            exc.file, exc.line = job.source, task.line
            raise
        checked.add(inputs)


def check_slots(job: Job, slots_per_node: int) -> None:
    """A task needing more slots than a node has could never run: reject it now."""
    for seq, spec in enumerate(job._specs):
        need = (spec or {}).get("requiredSlots", 1)
        if need > slots_per_node:
            task = job.tasks[seq]
            raise InvalidFieldError(
                f"requiredSlots is {need} but each local node has {slots_per_node} slots, "
                f"so it could never run (use --slots {need} or more)",
                job_id=job.id,
                task_id=task.id,
                field="requiredSlots",
                file=job.source,
                line=task.line,
            )


def _first_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            return key.lstrip("$")
    return "definition"


def _resolve(job: Job) -> list[tuple[int, ...]]:
    from batchflow.graph import Graph

    graph = Graph.of(job)
    if graph.unknown:
        pos, field, missing = graph.unknown[0]
        raise InvalidFieldError(
            f"'{missing}' is not in job '{job.id}'",
            job_id=job.id,
            task_id=job.tasks[pos].id,
            field=field,
            file=job.source,
        )
    return graph.deps


def _job_spec(job: Job) -> dict[str, Any]:
    return job.to_wire(with_tasks=False)


def submit_job(store: Store, job: Job, *, replace: bool = False) -> SubmitResult:
    """Store `job`: create it, or attach to the existing job with the same id."""
    spec = _job_spec(job)
    spec_text = _canonical(spec)
    deps = _resolve(job)
    defs = definitions(job)
    now = time.time()
    base_dir = base_dir_of(job)
    with store.write() as db:
        row = db.execute(
            "SELECT rowid, id, spec, state, terminate_reason FROM jobs WHERE key = ?",
            (job.id.lower(),),
        ).fetchone()
        if row is None:
            cur = db.execute(
                "INSERT INTO jobs(id, key, spec, base_dir, state, state_time, creation_time) "
                "VALUES(?, ?, ?, ?, 'active', ?, ?)",
                (job.id, job.id.lower(), store.seal(spec_text), base_dir, now, now),
            )
            rowid = int(cur.lastrowid or 0)
            spec_changed = True
            existing: dict[str, tuple[int, str, int]] = {}
            next_seq = 0
            manager = spec.get("jobManagerTask")
            if manager:
                definition = {k: v for k, v in manager.items() if k != "id"}
                _insert_manager(db, rowid, store.seal(_canonical(definition)), manager, now)
        else:
            rowid, known_id, old_spec, state, _reason = row
            if state == "deleting":
                raise SubmitError(f"job '{known_id}' is being deleted; wait, then submit again")
            old = json.loads(old_spec)
            spec_changed = {k: v for k, v in old.items() if k != "id"} != {
                k: v for k, v in spec.items() if k != "id"
            }
            if spec_changed and not replace:
                field = _first_difference(old, spec)
                raise SubmitError(
                    f"job '{known_id}' already exists with a different {field}; "
                    "submit with --replace to update it, or delete the job first"
                )
            existing = {
                str(k).lower(): (int(s), str(d), int(st))
                for s, k, d, st in db.execute(
                    "SELECT seq, id, def, state FROM tasks WHERE job = ? AND seq >= 0", (rowid,)
                )
            }
            next_seq = max((v[0] for v in existing.values()), default=-1) + 1
        # Positions in the flow -> seqs in the store.
        seqs: list[int] = []
        new_rows: list[int] = []
        changed: list[int] = []
        for pos, task_id in enumerate(job._ids):
            known = existing.get(task_id.lower())
            if known is None:
                seqs.append(next_seq)
                next_seq += 1
                new_rows.append(pos)
            else:
                seqs.append(known[0])
                if known[1] != defs[pos]:
                    changed.append(pos)
        if changed and not replace:
            task = job.tasks[changed[0]]
            field = _first_difference(
                json.loads(existing[task.id.lower()][1]), json.loads(defs[changed[0]])
            )
            raise SubmitError(
                f"job '{job.id}' task '{task.id}': {field} changed since the task was submitted; "
                "submit with --replace to run it again with the new definition"
            )
        if row is not None and (new_rows or changed) and row[3] != "active":
            if not (replace and row[3] == "completed"):
                hint = "submit with --replace to reopen it, " if row[3] == "completed" else ""
                raise SubmitError(
                    f"job '{row[1]}' is {row[3]}"
                    + (f" ({row[4]})" if row[4] else "")
                    + f"; Batch adds no tasks to it: {hint}delete it first "
                    f"(batchflow delete {row[1]}) or use another job id"
                )
            # batchflow's --replace (not a Batch feature): reopen the job for the new work.
            db.execute(
                "UPDATE jobs SET previous_state = state, previous_state_time = state_time, "
                "state = 'active', state_time = ?, end_time = NULL, terminate_reason = NULL "
                "WHERE rowid = ?",
                (now, rowid),
            )
        for pos in changed:
            if existing[job.tasks[pos].id.lower()][2] in (RUNNING, 1):
                raise SubmitError(
                    f"job '{job.id}' task '{job.tasks[pos].id}' is running; it can be replaced "
                    "once it has finished"
                )

        def blob(pos: int) -> bytes | None:
            return array("i", (seqs[d] for d in deps[pos])).tobytes() if deps[pos] else None

        specs, ids = job._specs, job._ids

        def slots(pos: int) -> int | None:
            need = (specs[pos] or {}).get("requiredSlots", 1)
            return need if need > 1 else None

        db.executemany(
            "INSERT INTO tasks(job, seq, id, def, deps, slots, state, state_time, creation_time) "
            "VALUES(?, ?, ?, ?, ?, ?, 0, ?, ?)",
            (
                (rowid, seqs[p], ids[p], store.seal(defs[p]), blob(p), slots(p), now, now)
                for p in new_rows
            ),
        )
        was_succeeded = was_failed = was_active = 0
        for pos in changed:
            old = db.execute(
                "SELECT state, result FROM tasks WHERE job = ? AND seq = ?", (rowid, seqs[pos])
            ).fetchone()
            if old[0] == COMPLETED:
                was_succeeded += old[1] == SUCCESS
                was_failed += old[1] == FAILURE
            else:
                was_active += 1
            db.execute(
                "UPDATE tasks SET def = ?, deps = ?, slots = ?, prev = state, prev_time = "
                "state_time, state = 0, state_time = ?, start = NULL, end = NULL, "
                "exit_code = NULL, result = NULL, failure = NULL, satisfied = NULL, retries = 0, "
                "last_retry = NULL, done_seq = NULL WHERE job = ? AND seq = ?",
                (store.seal(defs[pos]), blob(pos), slots(pos), now, rowid, seqs[pos]),
            )
        added = len(new_rows)
        reset = len(changed) - was_active
        db.execute(
            "UPDATE jobs SET spec = coalesce(?, spec), base_dir = ?, rev = rev + ?, "
            "settled = CASE WHEN ? THEN 0 ELSE settled END, "
            "ntasks = ntasks + ?, n_active = n_active + ?, n_succeeded = n_succeeded - ?, "
            "n_failed = n_failed - ? WHERE rowid = ?",
            (
                store.seal(spec_text) if row is None or spec_changed else None,
                base_dir,
                int(bool(added or changed or spec_changed)),
                bool(added or changed or spec_changed),
                added,
                added + reset,
                was_succeeded,
                was_failed,
                rowid,
            ),
        )
    return SubmitResult(
        job_id=job.id if row is None else str(row[1]),
        added=added,
        unchanged=len(job.tasks) - added - len(changed),
        replaced=len(changed),
        replaced_ids=tuple(job.tasks[p].id for p in changed),
    )


def _insert_manager(db: Any, rowid: int, sealed: str, manager: dict[str, Any], now: float) -> None:
    """File the job manager task; `sealed` is its definition as stored."""
    need = manager.get("requiredSlots", 1)
    db.execute(
        "INSERT INTO tasks(job, seq, id, def, kind, slots, state, state_time, creation_time) "
        "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            rowid,
            MANAGER_SEQ,
            manager["id"],
            sealed,
            KIND_MANAGER,
            need if need > 1 else None,
            ACTIVE,
            now,
            now,
        ),
    )
    db.execute(
        "UPDATE jobs SET ntasks = ntasks + 1, n_active = n_active + 1 WHERE rowid = ?", (rowid,)
    )
