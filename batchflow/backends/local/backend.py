"""`LocalBackend`: the `Backend` protocol over the local engine's state directory.

The backend never runs tasks itself: `submit` writes the job into the store and makes
sure an engine is running; `terminate` and `delete` file a request and wake the engine;
everything else reads the store, which any number of CLI processes can do while the
engine writes (WAL).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchflow.backends.base import (
    FailureInfo,
    FileInfo,
    JobStatus,
    SubmitResult,
    TaskCounts,
    TaskInfo,
    TaskState,
)
from batchflow.backends.local import control
from batchflow.backends.local.paths import StateDir, resolve_state_dir
from batchflow.backends.local.store import FAILURE, STATE_NAMES, SUCCESS, Store
from batchflow.exceptions import BackendError, SubmitError

if TYPE_CHECKING:
    from batchflow.dsl import Job

__all__ = ["LocalBackend"]

_TASK_COLUMNS = (
    "id, def, state, prev, state_time, start, end, exit_code, result, failure, retries, "
    "requeues, node"
)
_JOB_COLUMNS = (
    "rowid, id, state, creation_time, end_time, terminate_reason, n_active, n_running, "
    "n_succeeded, n_failed, settled, spec"
)


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


class LocalBackend:
    """Runs jobs on this machine with Azure Batch semantics.

    `state_dir` defaults to `BATCHFLOW_STATE_DIR` or `./.batchflow`; `slots` is the
    number of task slots per node (default: the number of CPUs) and `nodes` the number of
    emulated nodes (default 1), each with its own node directory tree.
    """

    name = "local"

    def __init__(
        self,
        state_dir: str | os.PathLike[str] | None = None,
        *,
        slots: int | None = None,
        nodes: int | None = None,
    ) -> None:
        self.state = StateDir(resolve_state_dir(state_dir))
        if slots is not None and slots < 1:
            raise BackendError(f"--slots must be 1 or more, not {slots}")
        if nodes is not None and nodes < 1:
            raise BackendError(f"--nodes must be 1 or more, not {nodes}")
        self.slots = slots
        self.nodes = nodes
        self._store: Store | None = None
        self._early: control.EarlyEngine | None = None

    # -- helpers ---------------------------------------------------------------------

    def _db(self, *, create: bool = False) -> Store:
        if self._store is None:
            if not create and not self.state.db.exists():
                raise BackendError(
                    f"nothing was submitted in '{self.state.root}' "
                    "(run `batchflow submit FLOW` first, or pass --state-dir)"
                )
            self._store = Store(self.state.root, create=create)
        return self._store

    def _job_row(self, job_id: str) -> Any:
        row = self._db().one(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE key = ?", (job_id.lower(),))
        if row is None:
            raise BackendError(
                f"there is no job '{job_id}' in '{self.state.root}' (`batchflow jobs` lists them)"
            )
        return row

    def _status(self, row: Any) -> JobStatus:
        _rowid, job_id, state, created, ended, reason, active, running, ok, bad, settled, spec = row
        pool = (json.loads(spec).get("poolInfo") or {}).get("poolId") or "local"
        results = self.state.results(job_id)
        return JobStatus(
            id=job_id,
            state=state,
            counts=TaskCounts(active, running, ok + bad, ok, bad),
            pool_id=pool,
            creation_time=_time(created),
            end_time=_time(ended),
            terminate_reason=reason,
            outputs_location=str(results) if results.exists() else None,
            backend=self.name,
            settled=bool(settled) or state == "completed",
        )

    def _task_info(self, job_id: str, row: Any) -> TaskInfo:
        task_id, definition, state, prev, changed, start, end, code, result, failure = row[:10]
        retries, requeues, node = row[10:]
        info = json.loads(failure) if failure else None
        return TaskInfo(
            id=task_id,
            state=STATE_NAMES[state],  # type: ignore[arg-type]
            command_line=json.loads(definition)["commandLine"],
            previous_state=STATE_NAMES[prev] if prev is not None else None,  # type: ignore[arg-type]
            state_transition_time=_time(changed),
            start_time=_time(start),
            end_time=_time(end),
            exit_code=code,
            result="success" if result == SUCCESS else "failure" if result == FAILURE else None,
            failure_info=(
                FailureInfo(
                    info["category"],
                    info["code"],
                    info.get("message", ""),
                    tuple((d["name"], d["value"]) for d in info.get("details") or ()),
                )
                if info
                else None
            ),
            retry_count=retries,
            requeue_count=requeues,
            node_id=node,
            task_dir=str(self.state.task_dir(node, job_id, task_id)) if node else None,
        )

    # -- the protocol ----------------------------------------------------------------

    def start_early(self) -> None:
        """Start an engine process now, to run what the next `submit` stores.

        Its start-up then overlaps with the caller's work (loading a flow, writing the
        job). Nothing is touched until `submit` commits; if no submit comes, `close`
        (or the end of this process) makes it exit.
        """
        if self._early is None and control.engine_pid(self.state) is None:
            self._early = control.EarlyEngine(self.state)

    def submit(self, job: Job, *, replace: bool = False) -> SubmitResult:
        """Store `job` (or attach to it) and make sure the engine runs it."""
        from batchflow.backends.local.catalog import check_inputs, check_slots, submit_job

        self.start_early()
        try:
            check_inputs(job)
            store = self._db(create=True)
            slots = self._pool_setting(store, "slots", self.slots, os.cpu_count() or 1)
            self._pool_setting(store, "nodes", self.nodes, 1)
            check_slots(job, slots)
            result = submit_job(store, job, replace=replace)
        except BaseException:
            early, self._early = self._early, None
            if early is not None:
                early.cancel()
            raise
        early, self._early = self._early, None
        if early is not None:
            early.go()
        else:
            control.ensure_engine(self.state)
        return result

    def _pool_setting(self, store: Store, key: str, given: int | None, default: int) -> int:
        current = store.get_meta(key)
        if given is not None and str(given) != current:
            with store.write() as db:
                db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, str(given))
                )
            return given
        return int(current) if current else default

    def jobs(self) -> list[JobStatus]:
        """Every job in the state directory, newest first."""
        if not self.state.db.exists():
            return []
        rows = self._db().query(f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY creation_time DESC")
        return [self._status(r) for r in rows]

    def job_status(self, job_id: str) -> JobStatus:
        """State and task counts of one job (one row read)."""
        return self._status(self._job_row(job_id))

    def tasks(self, job_id: str, state: TaskState | None = None) -> list[TaskInfo]:
        """The job's tasks (the job manager task first), optionally only those in `state`."""
        row = self._job_row(job_id)
        sql = f"SELECT {_TASK_COLUMNS} FROM tasks WHERE job = ?"
        params: tuple[Any, ...] = (row[0],)
        if state is not None:
            sql += " AND state = ?"
            params += (STATE_NAMES.index(state),)
        rows = self._db().query(sql + " ORDER BY seq", params)
        return [self._task_info(row[1], r) for r in rows]

    def task(self, job_id: str, task_id: str) -> TaskInfo:
        """One task of a job."""
        row = self._job_row(job_id)
        found = self._db().one(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE job = ? AND id = ?", (row[0], task_id)
        )
        if found is None:
            raise BackendError(f"job '{row[1]}' has no task '{task_id}'")
        return self._task_info(row[1], found)

    def failed_since(self, job_id: str, cursor: int = 0) -> tuple[list[TaskInfo], int]:
        """Tasks that failed after `cursor` (a completion counter) and the new cursor."""
        row = self._job_row(job_id)
        rows = self._db().query(
            f"SELECT {_TASK_COLUMNS}, done_seq FROM tasks WHERE job = ? AND result = 1 "
            "AND done_seq > ? ORDER BY done_seq",
            (row[0], cursor),
        )
        if not rows:
            return [], cursor
        return [self._task_info(row[1], r[:-1]) for r in rows], int(rows[-1][-1])

    def _task_dir(self, job_id: str, task_id: str) -> Path:
        info = self.task(job_id, task_id)
        if info.task_dir is None:
            raise BackendError(
                f"task '{info.id}' has not started yet, so it has no files (it is {info.state})"
            )
        return Path(info.task_dir)

    def files(self, job_id: str, task_id: str, *, recursive: bool = True) -> list[FileInfo]:
        """Files of a started task, relative to its task directory (stdout.txt, wd/...)."""
        root = self._task_dir(job_id, task_id)
        found: list[FileInfo] = []
        if not root.exists():
            return found
        for folder, dirs, names in os.walk(root):
            dirs.sort()
            base = Path(folder)
            for name in [*dirs, *sorted(names)]:
                path = base / name
                try:
                    stat = path.lstat()
                except OSError:
                    continue
                is_dir = name in dirs
                found.append(
                    FileInfo(
                        name=str(path.relative_to(root)),
                        is_directory=is_dir,
                        size=0 if is_dir else stat.st_size,
                        last_modified=_time(stat.st_mtime),
                    )
                )
            if not recursive:
                break
        return found

    def file_path(self, job_id: str, task_id: str, path: str) -> Path:
        """The local path of a task file; `path` must stay inside the task directory."""
        root = self._task_dir(job_id, task_id).resolve()
        target = (root / path).resolve()
        if target != root and root not in target.parents:
            raise BackendError(f"'{path}' is outside the task directory of '{task_id}'")
        if not target.is_file():
            raise BackendError(f"task '{task_id}' has no file '{path}'")
        return target

    def read_file(
        self, job_id: str, task_id: str, path: str, *, offset: int = 0, length: int | None = None
    ) -> bytes:
        """Bytes of a task file from `offset` (all of the rest when `length` is None)."""
        target = self.file_path(job_id, task_id, path)
        with open(target, "rb") as source:
            source.seek(offset)
            return source.read() if length is None else source.read(length)

    def _request(self, job_id: str, request: str, reason: str | None) -> None:
        row = self._job_row(job_id)
        store = self._db()
        with store.write() as db:
            db.execute(
                "UPDATE jobs SET request = ?, request_reason = ? WHERE rowid = ?",
                (request, reason, row[0]),
            )
        control.ensure_engine(self.state)

    def terminate(self, job_id: str, reason: str = "UserTerminate") -> None:
        """End the job: running tasks are killed, active tasks stay active and never run."""
        status = self.job_status(job_id)
        if status.state in ("completed", "terminating", "deleting"):
            raise SubmitError(f"job '{status.id}' is already {status.state}")
        self._request(job_id, "terminate", reason)

    def enable(self, job_id: str) -> None:
        """A disabled job (jobAction `disable`) becomes active: its tasks run again."""
        status = self.job_status(job_id)
        if status.state != "disabled":
            raise SubmitError(
                f"job '{status.id}' is {status.state}, not disabled: only a disabled job "
                "can be enabled"
            )
        self._request(job_id, "enable", None)

    def delete(self, job_id: str) -> None:
        """Kill the job's tasks, then remove it and its task directories (asynchronously)."""
        self._request(job_id, "delete", None)

    def ensure_progress(self, job_id: str | None = None) -> bool:
        """Restart the engine if it is not running (it resumes where the last one stopped).

        True if it had to be restarted. An engine exits when it has nothing to do, so
        this is only called while a job still has work left.
        """
        if control.engine_pid(self.state) is not None:
            return False
        control.ensure_engine(self.state)
        return True

    def engine_log_tail(self) -> str | None:
        """Why the engine stopped: a full disk, else the last line it logged."""
        import shutil

        try:
            if shutil.disk_usage(self.state.root).free < 64 * 1024:
                return f"the disk holding '{self.state.root}' is full"
        except OSError:
            pass
        try:
            lines = self.state.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return None
        return lines[-1] if lines else None

    def close(self) -> None:
        """Close the state file (the engine and its tasks are not affected)."""
        early, self._early = self._early, None
        if early is not None:
            early.cancel()
        if self._store is not None:
            self._store.close()
            self._store = None
