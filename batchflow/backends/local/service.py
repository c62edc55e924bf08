"""The local Batch service: Batch's data-plane operations over the state store and engine.

Every rule of Batch about jobs and tasks lives here once (docs/semantics.md 1-4): which
operation is allowed in which state and with which error code, what a job update may
change, how tasks are added, what a read returns. The clients are thin adapters: the
local backend (the CLI) and the emulator (HTTP). Reads and writes take dicts in the REST
wire shape (camelCase); errors are `BackendError`s carrying Batch's code and the ids.

The service writes what a caller must see when the call returns (a new task, the
`terminating` / `deleting` / `disabling` state, a reactivated task back in `active`) in
one transaction, with a request for the engine when processes are involved (kill a
task, requeue, run a release task, remove directories); the engine, woken through its
FIFO (or started), carries that out asynchronously, as Batch's own service does.
Requests queue in a table: none is overwritten by the next.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchflow.backends.local import control
from batchflow.backends.local.catalog import NewTask, add_tasks, canonical
from batchflow.backends.local.launch import base_environment
from batchflow.backends.local.paths import StateDir
from batchflow.backends.local.store import (
    ACTIVE,
    COMPLETED,
    FAILURE,
    KIND_MANAGER,
    Store,
)
from batchflow.backends.local.wire import JOB_COLUMNS, TASK_COLUMNS, job_wire, task_wire
from batchflow.exceptions import BackendError

if TYPE_CHECKING:
    import sqlite3

    from batchflow.backends.local.filters import Filter

__all__ = ["BatchService", "Page"]

#: Fields of a job that `update_job` (PATCH) and `replace_job` (PUT) may change.
MUTABLE_JOB_FIELDS = (
    "priority",
    "maxParallelTasks",
    "allowTaskPreemption",
    "constraints",
    "poolInfo",
    "onAllTasksComplete",
    "metadata",
)
_MAX_PAGE = 1000


class Page(list[dict[str, Any]]):
    """One page of a listing; `continuation` is None on the last one."""

    continuation: str | None = None


def _task_defaults(job: Any) -> tuple[int, str | None]:
    """What a task of `job` (a row whose spec is `job[3]`) takes from it: the job's
    maxTaskRetryCount (the default of the task's own) and its pool id."""
    spec = json.loads(job[3])
    retries = (spec.get("constraints") or {}).get("maxTaskRetryCount", 0)
    return retries, (spec.get("poolInfo") or {}).get("poolId")


def _token(value: int) -> str:
    return base64.urlsafe_b64encode(f"s{value}".encode()).decode().rstrip("=")


def _untoken(token: str | None) -> int:
    if not token:
        return -(2**62)
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        return int(text[1:]) if text.startswith("s") else int("x")
    except (ValueError, UnicodeDecodeError):
        raise BackendError(
            f"'{token}' is not a continuation token of this listing",
            code="InvalidQueryParameterValue",
        ) from None


class BatchService:
    """Batch's job and task operations on one state directory.

    `engine=False` never starts or wakes an engine (reads only, or tests that drive it).
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str] | StateDir,
        *,
        engine: bool = True,
        pool_required: bool = False,
    ) -> None:
        from batchflow.backends.local.pools import Pools
        from batchflow.backends.local.taskfiles import NodeFiles, TaskFiles

        self.state = state_dir if isinstance(state_dir, StateDir) else StateDir(Path(state_dir))
        self.engine = engine
        #: Jobs created here run only on a pool of their poolId, and wait while there is
        #: none (Batch's rule; the emulator's). Otherwise on the state directory's nodes.
        self.pool_required = pool_required
        self._store: Store | None = None
        #: The task file operations (list, read with a range, properties, delete).
        self.files = TaskFiles(self)
        #: Pools and their compute nodes, and the nodes' files.
        self.pools = Pools(self)
        self.node_files = NodeFiles(self)

    @property
    def store(self) -> Store:
        """The state store (created on first use)."""
        if self._store is None:
            self._store = Store(self.state.root)
        return self._store

    def close(self) -> None:
        """Close the state file."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def wake(self) -> None:
        """Make sure an engine acts on what was just committed."""
        if self.engine:
            control.ensure_engine(self.state)

    # -- jobs ------------------------------------------------------------------------

    def _job(self, db: Any, job_id: str, columns: str = "rowid, id, state, spec") -> Any:
        row = db.execute(f"SELECT {columns} FROM jobs WHERE key = ?", (job_id.lower(),)).fetchone()
        if row is None:
            raise BackendError(f"job '{job_id}' does not exist", code="JobNotFound", job_id=job_id)
        return row

    def create_job(
        self,
        spec: dict[str, Any],
        *,
        base_dir: str | None = None,
        environ: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Add a job (`POST /jobs`); `JobExists` if one has its id (case-insensitively).

        `spec` is the job's wire JSON (validated by the caller: the model's rules). Its
        job manager task, if any, is added with it. Returns the job as `get_job` does.
        """
        job_id = spec["id"]
        with self.store.write() as db:
            if db.execute("SELECT 1 FROM jobs WHERE key = ?", (job_id.lower(),)).fetchone():
                raise BackendError(
                    f"job '{job_id}' already exists", code="JobExists", job_id=job_id
                )
            self.insert_job(db, spec, base_dir=base_dir, environ=environ)
        self.wake()
        return self.get_job(job_id)

    def insert_job(
        self,
        db: Any,
        spec: dict[str, Any],
        *,
        base_dir: str | None = None,
        environ: dict[str, str] | None = None,
    ) -> int:
        """Write a new job (and its job manager task) in the open transaction; its rowid."""
        job_id = spec["id"]
        now = time.time()
        stored = {k: v for k, v in spec.items() if k != "tasks"}
        env = json.dumps(base_environment(environ), sort_keys=True)
        cur = db.execute(
            "INSERT INTO jobs(id, key, spec, base_dir, env, state, state_time, "
            "creation_time, modified, pool_required) VALUES(?, ?, ?, ?, ?, 'active', ?, ?, ?, ?)",
            (
                job_id,
                job_id.lower(),
                self.store.seal(canonical(stored)),
                base_dir,
                self.store.seal(env),
                now,
                now,
                now,
                int(self.pool_required),
            ),
        )
        rowid = int(cur.lastrowid or 0)
        manager = spec.get("jobManagerTask")
        if manager:
            need = manager.get("requiredSlots", 1)
            definition = canonical({k: v for k, v in manager.items() if k != "id"})
            db.execute(
                "INSERT INTO tasks(job, seq, id, def, kind, slots, state, state_time, "
                "creation_time, modified) VALUES(?, -1, ?, ?, ?, ?, 0, ?, ?, ?)",
                (
                    rowid,
                    manager["id"],
                    self.store.seal(definition),
                    KIND_MANAGER,
                    need if need > 1 else None,
                    now,
                    now,
                    now,
                ),
            )
            db.execute(
                "UPDATE jobs SET ntasks = 1, n_active = 1, max_slots = ? WHERE rowid = ?",
                (max(1, need), rowid),
            )
        return rowid

    def get_job(self, job_id: str) -> dict[str, Any]:
        """A job in the wire shape (`GET /jobs/{id}`); `JobNotFound`."""
        row = self._job(self.store.conn, job_id, JOB_COLUMNS)
        row = self._expired(row)
        return job_wire(row)

    def list_jobs(
        self,
        *,
        state: str | None = None,
        id_prefix: str | None = None,
        where: Filter | None = None,
        limit: int = _MAX_PAGE,
        continuation: str | None = None,
    ) -> Page:
        """Jobs in creation order, filtered and paged in SQL (`GET /jobs`); `where` is a
        `$filter` (filters.py)."""
        where_sql: list[str] = ["rowid > ?"]
        params: list[Any] = [_untoken(continuation)]
        if where is not None:
            from batchflow.backends.local.filters import job_filter

            sql, extra = job_filter(where)
            where_sql.append(sql)
            params += extra
        if state is not None:
            where_sql.append("state = ?")
            params.append(state.lower())
        if id_prefix:
            where_sql.append("key >= ? AND key < ?")
            params += [id_prefix.lower(), id_prefix.lower() + "\uffff"]
        limit = max(1, min(limit, _MAX_PAGE))
        rows = self.store.query(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE {' AND '.join(where_sql)} ORDER BY rowid "
            f"LIMIT {limit + 1}",
            tuple(params),
        )
        page = Page(job_wire(self._expired(r)) for r in rows[:limit])
        if len(rows) > limit:
            page.continuation = _token(rows[limit - 1][0])
        return page

    def _expired(self, row: Any) -> Any:
        """Apply a job wall clock that passed while no engine ran (on any read)."""
        state, created = row[3], row[7]
        if state not in ("active", "disabled", "disabling", "enabling"):
            return row
        wall = (json.loads(row[2]).get("constraints") or {}).get("maxWallClockTime")
        if not wall:
            return row
        from batchflow.durations import parse_duration

        seconds = parse_duration(wall).total_seconds()
        if seconds > 1e14 or created + seconds > time.time():
            return row
        with contextlib.suppress(BackendError):  # another reader got there first
            self.terminate_job(row[1], "MaxWallClockTimeExpiry")
        return self._job(self.store.conn, row[1], JOB_COLUMNS)

    def _set_state(self, db: Any, rowid: int, state: str, **extra: Any) -> None:
        now = time.time()
        sets = "".join(f", {k} = ?" for k in extra)
        db.execute(
            "UPDATE jobs SET previous_state = state, previous_state_time = state_time, "
            f"state = ?, state_time = ?, modified = ?, settled = 0{sets} WHERE rowid = ?",
            (state, now, now, *extra.values(), rowid),
        )

    def _request(
        self, db: Any, rowid: int, op: str, seq: int | None = None, arg: Any = None
    ) -> None:
        db.execute(
            "INSERT INTO requests(job, seq, op, arg) VALUES(?, ?, ?, ?)",
            (rowid, seq, op, None if arg is None else json.dumps(arg)),
        )

    def _refuse_ended(self, row: Any, what: str) -> None:
        """Batch refuses changes to a job that is completed or on its way out."""
        job_id, state = row[1], row[2]
        codes = {
            "completed": "JobCompleted",
            "terminating": "JobBeingTerminated",
            "deleting": "JobBeingDeleted",
        }
        if state in codes:
            raise BackendError(
                f"job '{job_id}' is {state}: {what}", code=codes[state], job_id=job_id
            )

    def terminate_job(self, job_id: str, reason: str | None = None) -> None:
        """End a job (`POST /jobs/{id}/terminate`): `terminating` at once; the engine kills
        running tasks, runs release tasks and completes it. Active tasks stay active."""
        with self.store.write() as db:
            row = self._job(db, job_id)
            self._refuse_ended(row, "it cannot be terminated")
            self._set_state(db, row[0], "terminating", terminate_reason=reason or "UserTerminate")
            self._request(db, row[0], "terminate")
        self.wake()

    def delete_job(self, job_id: str) -> None:
        """Delete a job (`DELETE /jobs/{id}`): `deleting` at once; the engine kills its
        tasks and removes it, its tasks and their directories."""
        with self.store.write() as db:
            row = self._job(db, job_id)
            if row[2] != "deleting":
                self._set_state(db, row[0], "deleting")
                self._request(db, row[0], "delete")
        self.wake()

    def disable_job(self, job_id: str, disable_tasks: str = "requeue") -> None:
        """Disable a job (`POST /jobs/{id}/disable`): no task starts until it is enabled;
        running tasks are requeued, terminated or left to finish (`disableTasks`)."""
        mode = disable_tasks.lower()
        if mode not in ("requeue", "terminate", "wait"):
            raise BackendError(
                f"disableTasks must be requeue, terminate or wait, not '{disable_tasks}'",
                code="InvalidPropertyValue",
                job_id=job_id,
            )
        with self.store.write() as db:
            row = self._job(db, job_id)
            if row[2] in ("disabling", "disabled"):
                return
            if row[2] != "active":
                raise BackendError(
                    f"job '{row[1]}' is {row[2]}: only an active job can be disabled",
                    code="OperationInvalidForCurrentState",
                    job_id=row[1],
                )
            self._set_state(db, row[0], "disabling")
            self._request(db, row[0], "disable", arg=mode)
        self.wake()

    def enable_job(self, job_id: str) -> None:
        """Enable a disabled job (`POST /jobs/{id}/enable`): its tasks are scheduled again."""
        with self.store.write() as db:
            row = self._job(db, job_id)
            if row[2] == "enabling":
                return
            if row[2] not in ("disabled", "disabling"):
                raise BackendError(
                    f"job '{row[1]}' is {row[2]}, not disabled: only a disabled job can be enabled",
                    code="OperationInvalidForCurrentState",
                    job_id=row[1],
                )
            self._set_state(db, row[0], "enabling")
            self._request(db, row[0], "enable")
        self.wake()

    def update_job(self, job_id: str, patch: dict[str, Any], *, replace: bool = False) -> None:
        """Change a job's mutable properties: merge (`PATCH`) or replace (`PUT`, where an
        omitted property goes back to its default).

        Batch's rules: nothing changes on a completed or ending job; `poolInfo` only
        while the job is disabled; `onAllTasksComplete` never from terminatejob back to
        noaction; any other field is not updatable (`PropertyCannotBeUpdated`).
        """
        with self.store.write() as db:
            row = self._job(db, job_id)
            self.apply_update(db, row, patch, replace=replace)
        self.wake()

    def apply_update(
        self, db: Any, row: Any, patch: dict[str, Any], *, replace: bool = False
    ) -> None:
        """`update_job` in the open transaction; `row` is (rowid, id, state, spec)."""
        for key in patch:
            if key not in MUTABLE_JOB_FIELDS:
                raise BackendError(
                    f"job '{row[1]}' {key}: cannot be changed after the job is created",
                    code="PropertyCannotBeUpdated",
                    job_id=row[1],
                    values=(("PropertyName", key),),
                )
        self._refuse_ended(row, "it cannot be updated")
        spec = json.loads(row[3])
        new = dict(spec)
        if replace:
            for key in MUTABLE_JOB_FIELDS:
                if key != "poolInfo":
                    new.pop(key, None)
        new.update(patch)
        if new.get("poolInfo") != spec.get("poolInfo") and row[2] != "disabled":
            raise BackendError(
                f"job '{row[1]}' poolInfo: can only be changed while the job is disabled",
                code="OperationInvalidForCurrentState",
                job_id=row[1],
            )
        before = str(spec.get("onAllTasksComplete", "noaction")).lower()
        after = str(new.get("onAllTasksComplete", "noaction")).lower()
        if before == "terminatejob" and after != "terminatejob":
            raise BackendError(
                f"job '{row[1]}' onAllTasksComplete: cannot go back from terminatejob to noaction",
                code="InvalidPropertyValue",
                job_id=row[1],
                values=(("PropertyName", "onAllTasksComplete"),),
            )
        new = {k: v for k, v in new.items() if v is not None}
        db.execute(
            "UPDATE jobs SET spec = ?, modified = ?, settled = 0 WHERE rowid = ?",
            (self.store.seal(canonical(new)), time.time(), row[0]),
        )
        self._request(db, row[0], "update")

    # -- tasks -----------------------------------------------------------------------

    def add_tasks(
        self, job_id: str, tasks: Sequence[dict[str, Any]], *, limit: int | None = 100
    ) -> list[dict[str, Any]]:
        """Add tasks in the wire shape (`POST /jobs/{id}/addtaskcollection`).

        Returns one result per task, in order, as Batch does: `{"taskId", "status":
        "success", "eTag", "lastModified"}`, or `"clienterror"` with Batch's error
        (`TaskExists`, `InvalidPropertyValue`, ...). At most `limit` tasks per call.
        """
        from batchflow.backends.local.taskspec import check_task

        if limit is not None and len(tasks) > limit:
            raise BackendError(
                f"{len(tasks)} tasks in one request; Batch takes at most {limit}",
                code="InvalidPropertyValue",
                job_id=job_id,
            )
        results: list[dict[str, Any] | None] = [None] * len(tasks)
        now = time.time()
        with self.store.write() as db:
            row = self._job(db, job_id)
            self._refuse_ended(row, "no task can be added to it")
            spec = json.loads(row[3])
            seen: dict[str, int] = {}
            good: list[tuple[int, NewTask]] = []
            ids = [t.get("id") for t in tasks]
            existing = _existing_ids(db, row[0], [i for i in ids if isinstance(i, str)])
            for pos, task in enumerate(tasks):
                try:
                    new = check_task(task, spec)
                    key = new.id.lower()
                    if key in existing or key in seen:
                        raise BackendError(
                            f"task '{new.id}' already exists in job '{row[1]}'",
                            code="TaskExists",
                            job_id=row[1],
                            task_id=new.id,
                        )
                except BackendError as exc:
                    results[pos] = _failed(task.get("id"), exc)
                    continue
                seen[key] = pos
                good.append((pos, new))
            if good:
                add_tasks(db, self.store, row[0], [n for _, n in good], now)
        from batchflow.backends.local.wire import etag, timestamp

        tag, modified = etag(now), timestamp(now)  # one write: the same for every task
        for pos, new in good:
            results[pos] = {
                "taskId": new.id,
                "status": "success",
                "eTag": tag,
                "lastModified": modified,
            }
        if good:
            self.wake()
        return [r for r in results if r is not None]

    def add_task(self, job_id: str, task: dict[str, Any]) -> dict[str, Any]:
        """Add one task (`POST /jobs/{id}/tasks`); raises Batch's error if refused."""
        (result,) = self.add_tasks(job_id, [task])
        if result["status"] != "success":
            error = result["error"]
            raise BackendError(
                error["message"]["value"],
                code=error["code"],
                job_id=job_id,
                task_id=result.get("taskId"),
            )
        return self.get_task(job_id, result["taskId"])

    def _task_row(self, db: Any, job: Any, task_id: str, columns: str = TASK_COLUMNS) -> Any:
        found = db.execute(
            f"SELECT {columns} FROM tasks WHERE job = ? AND id = ?", (job[0], task_id)
        ).fetchone()
        if found is None:
            raise BackendError(
                f"job '{job[1]}' has no task '{task_id}'",
                code="TaskNotFound",
                job_id=job[1],
                task_id=task_id,
            )
        return found

    def _wire(
        self,
        job: Any,
        row: Any,
        dirs: dict[str, str] | None = None,
        defaults: tuple[int, str | None] | None = None,
    ) -> dict[str, Any]:
        """A task row of `job` in the wire shape; `dirs` caches the job's directory per
        node across the rows of one listing, `defaults` what the task takes from its job
        (`_task_defaults`, read once a listing rather than once a row)."""
        job_retries, pool_id = defaults or _task_defaults(job)
        node = row[18]
        task_dir = None
        if node:
            base = None if dirs is None else dirs.get(node)
            if base is None:
                base = str(self.state.job_dir(node, job[1]))
                if dirs is not None:
                    dirs[node] = base
            task_dir = f"{base}/{row[1]}"
        return task_wire(row, job_retries=job_retries, task_dir=task_dir, pool_id=pool_id)

    def get_task(self, job_id: str, task_id: str) -> dict[str, Any]:
        """A task in the wire shape (`GET /jobs/{job}/tasks/{task}`)."""
        db = self.store.conn
        job = self._job(db, job_id)
        return self._wire(job, self._task_row(db, job, task_id))

    def list_tasks(
        self,
        job_id: str,
        *,
        state: str | None = None,
        result: str | None = None,
        id_prefix: str | None = None,
        where: Filter | None = None,
        limit: int = _MAX_PAGE,
        continuation: str | None = None,
    ) -> Page:
        """A job's tasks in the order they were added (the job manager first), filtered
        and paged in SQL (`GET /jobs/{id}/tasks`): `state` is a task state, `result`
        `success` or `failure`, `id_prefix` case-insensitive, `where` a `$filter`
        (filters.py)."""
        from batchflow.backends.local.store import STATE_NAMES, SUCCESS

        db = self.store.conn
        job = self._job(db, job_id)
        clauses, params = ["job = ?", "seq > ?"], [job[0], _untoken(continuation)]
        if state is not None:
            if state.lower() not in STATE_NAMES:
                raise BackendError(
                    f"'{state}' is not a task state ({', '.join(STATE_NAMES)})",
                    code="InvalidQueryParameterValue",
                )
            clauses.append("state = ?")
            params.append(STATE_NAMES.index(state.lower()))
        if result is not None:
            if result.lower() not in ("success", "failure"):
                raise BackendError(
                    f"'{result}' is not a task result (success, failure)",
                    code="InvalidQueryParameterValue",
                )
            clauses.append("result = ?")
            params.append(SUCCESS if result.lower() == "success" else FAILURE)
        if id_prefix:
            clauses.append("id >= ? AND id < ?")
            params += [id_prefix, id_prefix + "\uffff"]
        if where is not None:
            from batchflow.backends.local.filters import task_filter

            sql, extra = task_filter(where)
            clauses.append(sql)
            params += extra
        limit = max(1, min(limit, _MAX_PAGE))
        rows = db.execute(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE {' AND '.join(clauses)} ORDER BY seq "
            f"LIMIT {limit + 1}",
            tuple(params),
        ).fetchall()
        dirs: dict[str, str] = {}
        defaults = _task_defaults(job)
        page = Page(self._wire(job, r, dirs, defaults) for r in rows[:limit])
        if len(rows) > limit:
            page.continuation = _token(rows[limit - 1][0])
        return page

    def update_task(self, job_id: str, task_id: str, constraints: dict[str, Any]) -> None:
        """Replace a task's constraints (`PUT /jobs/{job}/tasks/{task}`); the next attempt
        uses them."""
        from batchflow.backends.local.taskspec import check_constraints

        constraints = check_constraints(constraints, job_id=job_id, task_id=task_id)
        with self.store.write() as db:
            job = self._job(db, job_id)
            self._refuse_ended(job, "its tasks cannot be updated")
            seq, definition, state = self._task_row(db, job, task_id, "seq, def, state")
            if state == COMPLETED:
                raise BackendError(
                    f"task '{task_id}' is completed: its constraints cannot change",
                    code="TaskCompleted",
                    job_id=job[1],
                    task_id=task_id,
                )
            spec = json.loads(definition)
            spec["constraints"] = {k: v for k, v in constraints.items() if v is not None}
            db.execute(
                "UPDATE tasks SET def = ?, modified = ? WHERE job = ? AND seq = ?",
                (self.store.seal(canonical(spec)), time.time(), job[0], seq),
            )
            self._request(db, job[0], "task-update", seq)
        self.wake()

    def terminate_task(self, job_id: str, task_id: str) -> None:
        """End a task (`POST .../terminate`): an active task completes at once, a running
        one is killed by the engine (this call waits for it); `TaskCompleted` if done."""
        with self.store.write() as db:
            job = self._job(db, job_id)
            self._refuse_ended(job, "its tasks cannot be terminated")
            seq, state = self._task_row(db, job, task_id, "seq, state")
            if state == COMPLETED:
                raise BackendError(
                    f"task '{task_id}' is already completed",
                    code="TaskCompleted",
                    job_id=job[1],
                    task_id=task_id,
                )
            self._request(db, job[0], "task-terminate", seq)
        self.wake()
        self._await(job[0], seq, lambda r: r is None or r[0] == COMPLETED)

    def delete_task(self, job_id: str, task_id: str) -> None:
        """Delete a task and its directory (`DELETE .../tasks/{task}`); a running task is
        killed first (this call waits for it)."""
        with self.store.write() as db:
            job = self._job(db, job_id)
            if job[2] == "deleting":
                self._refuse_ended(job, "")
            seq, state = self._task_row(db, job, task_id, "seq, state")
            if state in (ACTIVE, COMPLETED):
                # Nothing runs: gone at once, as far as any reader can tell.
                self._remove_task(db, job[0], seq)
            self._request(db, job[0], "task-delete", seq, arg=task_id)
        self.wake()
        self._await(job[0], seq, lambda r: r is None)

    def _remove_task(self, db: Any, rowid: int, seq: int) -> None:
        state, result = db.execute(
            "SELECT state, result FROM tasks WHERE job = ? AND seq = ?", (rowid, seq)
        ).fetchone()
        for table, column in (("tasks", "seq"), ("waits", "child"), ("wait_ranges", "child")):
            db.execute(f"DELETE FROM {table} WHERE job = ? AND {column} = ?", (rowid, seq))
        done = state == COMPLETED
        db.execute(
            "UPDATE jobs SET ntasks = ntasks - 1, n_active = n_active - ?, "
            "n_succeeded = n_succeeded - ?, n_failed = n_failed - ? WHERE rowid = ?",
            (
                int(state == ACTIVE),
                int(done and result != FAILURE),
                int(done and result == FAILURE),
                rowid,
            ),
        )

    def reactivate_task(self, job_id: str, task_id: str) -> None:
        """Run a failed task again (`POST .../reactivate`): back to `active` with its retry
        count reset. `TaskNotCompleted` / `TaskSucceeded` otherwise; the job must not be
        completed or ending."""
        with self.store.write() as db:
            job = self._job(db, job_id)
            self._refuse_ended(job, "its tasks cannot be reactivated")
            seq, state, result = self._task_row(db, job, task_id, "seq, state, result")
            if state != COMPLETED:
                raise BackendError(
                    f"task '{task_id}' is not completed (it is "
                    f"{('active', 'preparing', 'running')[state]}): only a failed task can be "
                    "reactivated",
                    code="TaskNotCompleted",
                    job_id=job[1],
                    task_id=task_id,
                )
            if result != FAILURE:
                raise BackendError(
                    f"task '{task_id}' succeeded: only a failed task can be reactivated",
                    code="TaskSucceeded",
                    job_id=job[1],
                    task_id=task_id,
                )
            now = time.time()
            db.execute(
                "UPDATE tasks SET prev = state, prev_time = state_time, state = 0, "
                "state_time = ?, modified = ?, exit_code = NULL, result = NULL, failure = NULL, "
                "retries = 0, last_retry = NULL, end = NULL, done_seq = NULL, expires = NULL "
                "WHERE job = ? AND seq = ?",
                (now, now, job[0], seq),
            )
            db.execute(
                "UPDATE jobs SET n_active = n_active + 1, n_failed = n_failed - 1, settled = 0 "
                "WHERE rowid = ?",
                (job[0],),
            )
            self._request(db, job[0], "task-reactivate", seq)
        self.wake()

    def list_subtasks(self, job_id: str, task_id: str) -> list[dict[str, Any]]:
        """Subtasks of a multi-instance task: the local engine runs one instance, so none."""
        self.get_task(job_id, task_id)
        return []

    def _await(self, rowid: int, seq: int, done: Any, timeout: float = 30.0) -> None:
        """Wait (briefly) for the engine to carry out a task request."""
        deadline = time.monotonic() + timeout
        pause = 0.005
        while time.monotonic() < deadline:
            row = self.store.one("SELECT state FROM tasks WHERE job = ? AND seq = ?", (rowid, seq))
            if done(row):
                return
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    # -- counts and status -------------------------------------------------------------

    def task_counts(self, job_id: str) -> dict[str, dict[str, int]]:
        """`GET /jobs/{id}/taskcounts`: tasks and slots by state (running includes
        preparing; succeeded and failed split completed)."""
        db = self.store.conn
        row = self._job(
            db,
            job_id,
            "rowid, id, state, spec, n_active, n_running, n_succeeded, n_failed, max_slots",
        )
        active, running, ok, bad = row[4:8]
        counts = {
            "active": active,
            "running": running,
            "completed": ok + bad,
            "succeeded": ok,
            "failed": bad,
        }
        slots = dict(counts)
        if row[8] > 1:
            slots = dict.fromkeys(counts, 0)
            for state, result, weight in db.execute(
                "SELECT state, result, sum(coalesce(slots, 1)) FROM tasks WHERE job = ? "
                "GROUP BY state, result",
                (row[0],),
            ):
                if state == ACTIVE:
                    slots["active"] += weight
                elif state == COMPLETED:
                    slots["completed"] += weight
                    slots["failed" if result == FAILURE else "succeeded"] += weight
                else:
                    slots["running"] += weight
        return {"taskCounts": counts, "taskSlotCounts": slots}

    def preparation_status(self, job_id: str) -> list[dict[str, Any]]:
        """`GET /jobs/{id}/jobpreparationandreleasetaskstatus`: one entry per node."""
        from batchflow.backends.local.wire import timestamp

        db = self.store.conn
        job = self._job(db, job_id)
        spec = json.loads(job[3])
        by_node: dict[str, dict[str, Any]] = {}
        for node, kind, state, start, end, code, result, failure, retries in db.execute(
            "SELECT node, kind, state, start, end, exit_code, result, failure, retries "
            "FROM prep WHERE job = ? ORDER BY node, kind",
            (job[0],),
        ):
            entry = by_node.setdefault(
                node,
                {"poolId": (spec.get("poolInfo") or {}).get("poolId") or "local", "nodeId": node},
            )
            info: dict[str, Any] = {"state": "completed" if state == "completed" else "running"}
            if start is not None:
                info["startTime"] = timestamp(start)
            if end is not None:
                info["endTime"] = timestamp(end)
            if code is not None:
                info["exitCode"] = code
            if result is not None:
                info["result"] = "failure" if result == FAILURE else "success"
            if failure:
                info["failureInfo"] = json.loads(failure)
            info["retryCount"] = retries
            key = (
                "jobPreparationTaskExecutionInfo"
                if kind == "preparation"
                else ("jobReleaseTaskExecutionInfo")
            )
            entry[key] = info
        return list(by_node.values())


def _existing_ids(db: sqlite3.Connection, rowid: int, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(ids), 500):
        part = ids[i : i + 500]
        for (task_id,) in db.execute(
            f"SELECT id FROM tasks WHERE job = ? AND id IN ({','.join('?' * len(part))})",
            (rowid, *part),
        ):
            found.add(str(task_id).lower())
    return found


def _failed(task_id: Any, exc: BackendError) -> dict[str, Any]:
    return {
        "taskId": task_id if isinstance(task_id, str) else "",
        "status": "clienterror",
        "error": {
            "code": exc.code,
            "message": {"lang": "en-US", "value": exc.message},
            **({"values": [{"key": k, "value": v} for k, v in exc.values]} if exc.values else {}),
        },
    }
