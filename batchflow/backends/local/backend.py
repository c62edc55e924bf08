"""`LocalBackend`: the `Backend` protocol over the local Batch service.

A thin adapter: `submit` stores a flow's job (creating or attaching, see `attach`), every
other method is one call of `BatchService` (Batch's operations and rules) whose wire
dicts it turns into the protocol's types. The engine, a process of its own, runs what
the service stores; any number of CLI processes read while it writes (WAL).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from batchflow.backends.base import (
    FileInfo,
    JobStatus,
    SubmitResult,
    TaskCounts,
    TaskInfo,
    TaskState,
    each_task,
    parse_time,
)
from batchflow.backends.local import control
from batchflow.backends.local.paths import StateDir, resolve_state_dir
from batchflow.backends.local.service import BatchService
from batchflow.backends.local.store import Store
from batchflow.exceptions import BackendError

if TYPE_CHECKING:
    from batchflow.dsl import Job

__all__ = ["LocalBackend"]


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
            raise BackendError(f"slots must be 1 or more, not {slots}")
        if nodes is not None and nodes < 1:
            raise BackendError(f"nodes must be 1 or more, not {nodes}")
        self.slots = slots
        self.nodes = nodes
        self._service: BatchService | None = None
        self._early: control.EarlyEngine | None = None

    # -- helpers ---------------------------------------------------------------------

    @property
    def service(self) -> BatchService:
        """The Batch service on this state directory."""
        if self._service is None:
            if not self.state.db.exists():
                raise BackendError(
                    f"nothing was submitted in '{self.state.root}'",
                    code="JobNotFound",
                )
            self._service = BatchService(self.state)
        return self._service

    def _status(self, wire: dict[str, Any], counts: dict[str, int], settled: bool) -> JobStatus:
        info = wire.get("executionInfo") or {}
        results = self.state.results(wire["id"])
        return JobStatus(
            id=wire["id"],
            state=wire["state"],
            counts=TaskCounts(
                counts["active"],
                counts["running"],
                counts["completed"],
                counts["succeeded"],
                counts["failed"],
            ),
            pool_id=(wire.get("poolInfo") or {}).get("poolId") or "local",
            creation_time=parse_time(wire.get("creationTime")),
            end_time=parse_time(info.get("endTime")),
            terminate_reason=info.get("terminateReason"),
            outputs_location=str(results) if results.exists() else None,
            backend=self.name,
            settled=settled or wire["state"] == "completed",
            wire=wire,
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
        from batchflow.backends.local.attach import submit_flow
        from batchflow.backends.local.catalog import check_inputs, check_slots

        self.start_early()
        try:
            check_inputs(job)
            service = self._service = self._service or BatchService(self.state)
            store = service.store
            slots = self._pool_setting(store, "slots", self.slots, os.cpu_count() or 1)
            self._pool_setting(store, "nodes", self.nodes, 1)
            check_slots(job, slots)
            result = submit_flow(service, job, replace=replace)
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
        found: list[JobStatus] = []
        continuation: str | None = None
        while True:
            page = self.service.list_jobs(continuation=continuation)
            found += [self.job_status(w["id"], w) for w in page]
            continuation = page.continuation
            if continuation is None:
                break
        return found[::-1]

    def job_status(self, job_id: str, wire: dict[str, Any] | None = None) -> JobStatus:
        """State and task counts of one job (two row reads, never a task listing)."""
        service = self.service
        # The flag first: an engine that completes the job between these reads then shows
        # in the state read after it (never an `active` job read as settled because its
        # completion was seen only in the flag).
        row = service.store.one("SELECT settled FROM jobs WHERE key = ?", (job_id.lower(),))
        wire = wire or service.get_job(job_id)
        counts = service.task_counts(job_id)["taskCounts"]
        return self._status(wire, counts, bool(row and row[0]))

    def tasks(self, job_id: str, state: TaskState | None = None) -> list[TaskInfo]:
        """The job's tasks (the job manager task first), optionally only those in `state`."""
        return list(each_task(self, job_id, state=state))

    def list_tasks(
        self,
        job_id: str,
        *,
        state: TaskState | None = None,
        result: Literal["success", "failure"] | None = None,
        limit: int = 1000,
        continuation: str | None = None,
    ) -> tuple[list[TaskInfo], str | None]:
        """One page of the job's tasks, filtered in the store, and the next continuation."""
        page = self.service.list_tasks(
            job_id, state=state, result=result, limit=limit, continuation=continuation
        )
        return [TaskInfo.from_wire(w) for w in page], page.continuation

    def task(self, job_id: str, task_id: str) -> TaskInfo:
        """One task of a job."""
        return TaskInfo.from_wire(self.service.get_task(job_id, task_id))

    def failed_since(self, job_id: str, cursor: int = 0) -> tuple[list[TaskInfo], int]:
        """Tasks that failed after `cursor` (a completion counter) and the new cursor."""
        from batchflow.backends.local.wire import TASK_COLUMNS

        service = self.service
        job = service.store.one(
            "SELECT rowid, id, state, spec FROM jobs WHERE key = ?", (job_id.lower(),)
        )
        if job is None:
            service.get_job(job_id)  # raises JobNotFound
        rows = service.store.query(
            f"SELECT {TASK_COLUMNS}, done_seq FROM tasks WHERE job = ? AND result = 1 "
            "AND done_seq > ? ORDER BY done_seq",
            (job[0], cursor),
        )
        if not rows:
            return [], cursor
        found = [TaskInfo.from_wire(service._wire(job, r[:-1])) for r in rows]
        return found, int(rows[-1][-1])

    def files(self, job_id: str, task_id: str, *, recursive: bool = True) -> list[FileInfo]:
        """Files of a started task, relative to its task directory (stdout.txt, wd/...)."""
        return [
            FileInfo(
                name=entry["name"],
                is_directory=entry["isDirectory"],
                size=int((entry.get("properties") or {}).get("contentLength", 0)),
                last_modified=parse_time((entry.get("properties") or {}).get("lastModified")),
            )
            for entry in self.service.files.list(job_id, task_id, recursive=recursive)
        ]

    def file_path(self, job_id: str, task_id: str, path: str) -> Path:
        """The local path of a task file; `path` must stay inside the task directory."""
        return self.service.files.path(job_id, task_id, path)

    def read_file(
        self, job_id: str, task_id: str, path: str, *, offset: int = 0, length: int | None = None
    ) -> bytes:
        """Bytes of a task file from `offset` (all of the rest when `length` is None)."""
        return self.service.files.read(job_id, task_id, path, offset=offset, length=length)

    def terminate(self, job_id: str, reason: str = "UserTerminate") -> None:
        """End the job: running tasks are killed, active tasks stay active and never run."""
        self.service.terminate_job(job_id, reason)

    def enable(self, job_id: str) -> None:
        """A disabled job becomes active: its tasks run again."""
        self.service.enable_job(job_id)

    def disable(self, job_id: str, disable_tasks: str = "requeue") -> None:
        """No task of the job starts until it is enabled; running ones per `disable_tasks`."""
        self.service.disable_job(job_id, disable_tasks)

    def delete(self, job_id: str) -> None:
        """Kill the job's tasks, then remove it and its task directories (asynchronously)."""
        self.service.delete_job(job_id)

    def update_job(self, job_id: str, changes: dict[str, Any]) -> None:
        """Change the job's mutable properties (wire names), as `az batch job set`."""
        self.service.update_job(job_id, changes)

    def terminate_task(self, job_id: str, task_id: str) -> None:
        """End one task (killed if it runs)."""
        self.service.terminate_task(job_id, task_id)

    def reactivate_task(self, job_id: str, task_id: str) -> None:
        """Run a failed task again."""
        self.service.reactivate_task(job_id, task_id)

    def ensure_progress(self, job_id: str | None = None) -> bool:
        """Restart the engine if it is not running (it resumes where the last one stopped).

        True if it had to be restarted. An engine exits when it has nothing to do, so
        this is only called while a job still has work left.
        """
        if control.engine_pid(self.state) is not None:
            return False
        control.ensure_engine(self.state)
        return True

    def engine_running(self) -> bool:
        """Whether an engine runs on this state directory now."""
        return control.engine_pid(self.state) is not None

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
        if self._service is not None:
            self._service.close()
            self._service = None
