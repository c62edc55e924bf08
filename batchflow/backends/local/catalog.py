"""Putting tasks into the state store: one add path for flows and for single wire tasks.

Every add costs in proportion to what is added, never to what the job already holds: a
task gets the next seq of its job, its dependencies are looked up by id (and by integer
value for `taskIdRanges`) among the tasks added with it and, through an index, among
those already stored. A dependency on a task that is not in the job yet is remembered in
`waits` / `wait_ranges` and counted in the task's `unresolved`, as Batch lets such a task
wait; when that task arrives, the add that brings it hands it to its waiting dependents
(their `deps` grow, their `unresolved` shrinks) and records them in its `kids`, which is
how the engine learns about them without reloading the job.

Range members follow Batch: only tasks whose id is an integer, leading zeros ignored.
When several ids have the same value (`7`, `07`), the first one added fills the slot
(Batch: the first of them to complete satisfies it); later ones are not dependencies.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchflow.backends.local.store import Store
from batchflow.exceptions import BackendError
from batchflow.names import task_number

if TYPE_CHECKING:
    import sqlite3

    from batchflow.dsl import Job, Task

__all__ = [
    "MANAGER_SEQ",
    "NewTask",
    "Unresolved",
    "add_tasks",
    "canonical",
    "check_inputs",
    "check_slots",
    "definitions",
    "number_of",
    "task_definition",
]

#: seq of the job manager task (scheduled before every other task of its job).
MANAGER_SEQ = -1
_CHUNK = 500  # ids per `IN (...)` query


def canonical(data: Any) -> str:
    """The stored text of a definition: sorted keys, no spaces (compared on attach)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


#: The integer a task id stands for in `taskIdRanges` (one rule: `batchflow.names`).
number_of = task_number


@dataclass(slots=True)
class NewTask:
    """A task to add: its id, stored definition (canonical JSON) and dependencies."""

    id: str
    definition: str
    dep_ids: Sequence[str] = ()
    dep_ranges: Sequence[tuple[int, int]] = ()
    slots: int = 1


@dataclass(slots=True)
class Unresolved:
    """Dependencies of the added tasks on tasks not in the job (by task position)."""

    ids: list[tuple[int, int, str]] = field(default_factory=list)  # (pos, index, id)
    ranges: list[tuple[int, int, int, int, int]] = field(default_factory=list)


def _lookup_ids(db: sqlite3.Connection, rowid: int, keys: Iterable[str]) -> dict[str, int]:
    """lower(id) -> seq of the stored tasks among `keys`."""
    found: dict[str, int] = {}
    wanted = list(keys)
    for i in range(0, len(wanted), _CHUNK):
        part = wanted[i : i + _CHUNK]
        sql = f"SELECT id, seq FROM tasks WHERE job = ? AND id IN ({','.join('?' * len(part))})"
        for task_id, seq in db.execute(sql, (rowid, *part)):
            found[str(task_id).lower()] = int(seq)
    return found


def _stored_numbers(db: sqlite3.Connection, rowid: int, start: int, end: int) -> dict[int, int]:
    """value -> seq of the first stored task with an integer id in [start, end]."""
    found: dict[int, int] = {}
    for num, seq in db.execute(
        "SELECT num, seq FROM tasks WHERE job = ? AND num BETWEEN ? AND ? ORDER BY seq",
        (rowid, start, end),
    ):
        found.setdefault(int(num), int(seq))
    return found


def add_tasks(
    db: sqlite3.Connection,
    store: Store,
    rowid: int,
    tasks: Sequence[NewTask],
    now: float,
) -> Unresolved:
    """Insert `tasks` (ids already checked to be new) at the end of job `rowid`.

    Returns their dependencies on tasks the job does not have (they wait for them).
    """
    nseq = db.execute("SELECT nseq FROM jobs WHERE rowid = ?", (rowid,)).fetchone()[0]
    seqs = range(nseq, nseq + len(tasks))
    local = {t.id.lower(): seq for t, seq in zip(tasks, seqs, strict=True)}
    local_nums: dict[int, int] = {}
    for t, seq in zip(tasks, seqs, strict=True):
        num = number_of(t.id)
        if num is not None:
            local_nums.setdefault(num, seq)
    missing_ids = {d.lower() for t in tasks for d in t.dep_ids if d.lower() not in local}
    stored = _lookup_ids(db, rowid, missing_ids) if missing_ids else {}
    unresolved = Unresolved()
    waits: list[tuple[int, str, int]] = []
    wait_ranges: list[tuple[int, int, int, int, int]] = []
    rows = []
    for pos, (t, seq) in enumerate(zip(tasks, seqs, strict=True)):
        parents: list[int] = []
        open_deps = 0
        for index, dep in enumerate(t.dep_ids):
            key = dep.lower()
            hit = local.get(key)
            if hit is None:
                hit = stored.get(key)
            if hit is None:
                open_deps += 1
                waits.append((rowid, key, seq))
                unresolved.ids.append((pos, index, dep))
            else:
                parents.append(hit)
        for index, (start, end) in enumerate(t.dep_ranges):
            members = _stored_numbers(db, rowid, start, end)
            for num, s in local_nums.items():
                if start <= num <= end:
                    members.setdefault(num, s)
            parents.extend(members.values())
            absent = end - start + 1 - len(members)
            if absent:
                open_deps += absent
                wait_ranges.append((rowid, start, end, seq, absent))
                unresolved.ranges.append((pos, index, start, end, absent))
        blob = array("i", parents).tobytes() if parents else None
        slots = t.slots if t.slots > 1 else None
        rows.append(
            (
                rowid,
                seq,
                t.id,
                number_of(t.id),
                store.seal(t.definition),
                blob,
                open_deps,
                slots,
                now,
                now,
                now,
            )
        )
    kids = _claim_waits(db, rowid, tasks, seqs, local_nums)
    db.executemany(
        "INSERT INTO tasks(job, seq, id, num, def, deps, unresolved, slots, state, state_time, "
        "creation_time, modified, kids) VALUES(?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
        ((*row, array("i", kids[row[1]]).tobytes() if row[1] in kids else None) for row in rows),
    )
    if waits:
        db.executemany("INSERT INTO waits(job, key, child) VALUES(?, ?, ?)", waits)
    if wait_ranges:
        db.executemany(
            "INSERT INTO wait_ranges(job, start, end, child, missing) VALUES(?, ?, ?, ?, ?)",
            wait_ranges,
        )
    most = max((t.slots for t in tasks), default=1)
    db.execute(
        "UPDATE jobs SET nseq = nseq + ?, ntasks = ntasks + ?, n_active = n_active + ?, "
        "max_slots = max(max_slots, ?), settled = 0 WHERE rowid = ?",
        (len(tasks), len(tasks), len(tasks), most, rowid),
    )
    return unresolved


def _claim_waits(
    db: sqlite3.Connection,
    rowid: int,
    tasks: Sequence[NewTask],
    seqs: range,
    local_nums: dict[int, int],
) -> dict[int, list[int]]:
    """Hand the new tasks to stored tasks that wait for them: seq -> waiting seqs."""
    kids: dict[int, list[int]] = {}
    gained: dict[int, list[int]] = {}  # waiting child -> new parents
    if db.execute("SELECT 1 FROM waits WHERE job = ? LIMIT 1", (rowid,)).fetchone():
        by_key = {t.id.lower(): seq for t, seq in zip(tasks, seqs, strict=True)}
        keys = list(by_key)
        for i in range(0, len(keys), _CHUNK):
            part = keys[i : i + _CHUNK]
            found = db.execute(
                f"SELECT rowid, key, child FROM waits WHERE job = ? "
                f"AND key IN ({','.join('?' * len(part))})",
                (rowid, *part),
            ).fetchall()
            for wait_row, key, child in found:
                parent = by_key[key]
                kids.setdefault(parent, []).append(child)
                gained.setdefault(child, []).append(parent)
                db.execute("DELETE FROM waits WHERE rowid = ?", (wait_row,))
    if (
        local_nums
        and db.execute("SELECT 1 FROM wait_ranges WHERE job = ? LIMIT 1", (rowid,)).fetchone()
    ):
        for num, parent in local_nums.items():
            if db.execute(
                "SELECT 1 FROM tasks WHERE job = ? AND num = ? LIMIT 1", (rowid, num)
            ).fetchone():
                continue  # the slot was filled by an earlier task with the same value
            for wait_row, child, missing in db.execute(
                "SELECT rowid, child, missing FROM wait_ranges WHERE job = ? AND start <= ? "
                "AND end >= ?",
                (rowid, num, num),
            ).fetchall():
                kids.setdefault(parent, []).append(child)
                gained.setdefault(child, []).append(parent)
                if missing <= 1:
                    db.execute("DELETE FROM wait_ranges WHERE rowid = ?", (wait_row,))
                else:
                    db.execute(
                        "UPDATE wait_ranges SET missing = missing - 1 WHERE rowid = ?",
                        (wait_row,),
                    )
    if gained:
        # (SQLite's || makes text of blobs: the arrays are joined here.)
        children = list(gained)
        updates = []
        for i in range(0, len(children), _CHUNK):
            seqs_part = children[i : i + _CHUNK]
            marks = ",".join("?" * len(seqs_part))
            for child, deps in db.execute(
                f"SELECT seq, deps FROM tasks WHERE job = ? AND seq IN ({marks})",
                (rowid, *seqs_part),
            ):
                blob = (deps or b"") + array("i", gained[child]).tobytes()
                updates.append((blob, len(gained[child]), rowid, child))
        db.executemany(
            "UPDATE tasks SET deps = ?, unresolved = unresolved - ? WHERE job = ? AND seq = ?",
            updates,
        )
    return kids


# -- flows ---------------------------------------------------------------------------


def task_definition(
    task: Task, digests: dict[tuple[str, ...], str] | None = None
) -> dict[str, Any]:
    """What is stored for a task: its wire fields without the id, plus inputs/outputs
    (and a digest of the inputs' content, so a changed input file is a changed task) and
    the parents whose outputs it is handed."""
    wire = task.to_wire()
    del wire["id"]
    if task.inputs:
        wire["$inputs"] = list(task.inputs)
        if digests is not None and task.inputs in digests:
            wire["$inputsDigest"] = digests[task.inputs]
    if task.outputs:
        wire["$outputs"] = list(task.outputs)
    handoffs = task.handoffs
    if handoffs:
        wire["$handoffs"] = list(handoffs)
    return wire


def input_digests(job: Job) -> dict[tuple[str, ...], str]:
    """A digest of the content of every distinct `inputs=` set of the job."""
    base = Path(job.inputs_dir())
    digests: dict[tuple[str, ...], str] = {}
    for inputs in job._inputs:
        if not inputs or inputs in digests:
            continue
        sha = hashlib.sha256()
        for name in inputs:
            path = base / name
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for item in files:
                sha.update(
                    str(item.relative_to(base) if item.is_relative_to(base) else item).encode()
                )
                with open(item, "rb") as source:
                    for block in iter(lambda: source.read(1 << 20), b""):
                        sha.update(block)
        digests[inputs] = sha.hexdigest()[:32]
    return digests


def definitions(job: Job) -> list[str]:
    """`task_definition` of every task as canonical JSON, in task order.

    Built from the task table's columns: a task with only a command line (and `after=`
    dependencies) is written straight from them, the same text `canonical` makes of its
    definition; any other goes through `task_definition`.
    """
    from batchflow.dsl import dep_tuple

    dumps = json.dumps
    digests = input_digests(job) if any(job._inputs) else None
    handoffs = job._handoffs
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
        if spec or ranges or inputs or outputs or pos in handoffs:
            out.append(canonical(task_definition(job.tasks[pos], digests)))
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


def flow_tasks(job: Job, defs: list[str], positions: Iterable[int]) -> list[NewTask]:
    """The `NewTask`s of the flow's tasks at `positions`."""
    from batchflow.dsl import dep_tuple

    ids, dep_ids, ranges, specs = job._ids, job._dep_ids, job._dep_ranges, job._specs
    return [
        NewTask(
            ids[p],
            defs[p],
            dep_tuple(dep_ids[p]),
            ranges[p],
            (specs[p] or {}).get("requiredSlots", 1),
        )
        for p in positions
    ]


def check_inputs(job: Job) -> None:
    """Every `inputs=` file must exist before anything runs (a FlowError naming the task)."""
    from batchflow.exceptions import FlowError
    from batchflow.storage import check_inputs as check_task_inputs

    base = Path(job.inputs_dir())
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
            task_id = job._ids[seq]
            raise BackendError(
                f"task '{task_id}' requiredSlots is {need} but each local node has "
                f"{slots_per_node} slots, so it could never run",
                code="RequiredSlotsUnavailable",
                job_id=job.id,
                task_id=task_id,
                values=(("requiredSlots", str(need)),),
            )


def first_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The first top-level field (sorted) whose value differs."""
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            if key == "$inputsDigest":
                return "the content of its inputs= files"
            return key.lstrip("$")
    return "definition"


def unknown_dependency(job: Job, unresolved: Unresolved) -> BackendError:
    """The error for a flow whose dependency names a task neither in it nor in the job."""
    if unresolved.ids:
        pos, index, missing = unresolved.ids[0]
        where, what = f"dependsOn.taskIds[{index}]", f"'{missing}' is not in job '{job.id}'"
    else:
        pos, index, start, end, absent = unresolved.ranges[0]
        where = f"dependsOn.taskIdRanges[{index}]"
        what = (
            f"range {start}..{end}: {absent:,} of its ids are not in job '{job.id}' "
            "(ranges match tasks whose id is an integer)"
        )
    task_id = job._ids[pos]
    return BackendError(
        f"task '{task_id}' {where}: {what}",
        code="TaskDependencyNotFound",
        job_id=job.id,
        task_id=task_id,
    )
