"""The contract between the CLI and the places a job can run.

A `Backend` accepts jobs and answers questions about them; it owns scheduling. The CLI
talks to backends only through this protocol and `get_backend(target)`:

- `submit(job)` stores the job and its tasks and makes sure they will run; submitting a
  job that already exists attaches to it (finished tasks stay finished, new tasks are
  added, a changed task is an error unless `replace=True`).
- `job_status(job_id)` is one cheap call: the job's state and its task counts, never a
  task listing (the tutorial's own advice for monitoring thousands of tasks).
- `tasks`, `task`, `files`, `read_file` mirror `az batch task list/show/file list/download`.
- `terminate`, `delete` and `enable` mirror `az batch job stop/delete/enable`.

States and fields are Azure Batch's (lowercase wire values), so a job reads the same
whether it ran here or on a pool.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from batchflow.dsl import Job

__all__ = [
    "Backend",
    "FailureInfo",
    "FileInfo",
    "JobState",
    "JobStatus",
    "StoredTasks",
    "SubmitResult",
    "TaskCounts",
    "TaskInfo",
    "TaskState",
    "each_task",
    "stored_tasks",
]

JobState = Literal[
    "active", "disabling", "disabled", "enabling", "terminating", "completed", "deleting"
]
TaskState = Literal["active", "preparing", "running", "completed"]


def parse_time(value: str | None) -> datetime | None:
    """A wire timestamp (`2024-10-24T01:15:18.9955081Z`) as an aware datetime."""
    if not value:
        return None
    text = value.rstrip("Z")
    head, _, fraction = text.partition(".")
    moment = datetime.fromisoformat(head + ("." + fraction[:6] if fraction else "") + "+00:00")
    return moment


@dataclass(frozen=True, slots=True)
class TaskCounts:
    """Tasks by state, as `GET /jobs/{id}/taskcounts` reports them (`running` includes
    `preparing`; `succeeded` and `failed` split `completed` by result)."""

    active: int = 0
    running: int = 0
    completed: int = 0
    succeeded: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.active + self.running + self.completed


@dataclass(frozen=True, slots=True)
class FailureInfo:
    """Why a task failed, as Batch reports it (`category` usererror or servererror)."""

    category: str
    code: str
    message: str
    details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A job's state and task counts, from one call."""

    id: str
    state: JobState
    counts: TaskCounts
    pool_id: str | None = None
    creation_time: datetime | None = None
    end_time: datetime | None = None
    #: Set when the job completed: AllTasksComplete, TaskFailed, MaxWallClockTimeExpiry,
    #: JMComplete, UserTerminate or the reason given to terminate.
    terminate_reason: str | None = None
    #: Where the job's `outputs=` files are collected (a folder or a container URL).
    outputs_location: str | None = None
    #: Which backend answered ("local", "azure").
    backend: str = "local"
    #: True when nothing runs and nothing can start: the job will not progress on its own
    #: (every task completed, or the rest are blocked by failed dependencies, or the job is
    #: disabled). Batch leaves such a job `active`; `submit` stops waiting for it.
    settled: bool = False
    #: The job as Batch's REST API returns it (camelCase: priority, constraints,
    #: onAllTasksComplete, executionInfo, ...), for `--output json`.
    wire: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """One task's state and execution info, as `az batch task show` reports it."""

    id: str
    state: TaskState
    command_line: str
    previous_state: TaskState | None = None
    state_transition_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    exit_code: int | None = None
    result: Literal["success", "failure"] | None = None
    failure_info: FailureInfo | None = None
    retry_count: int = 0
    requeue_count: int = 0
    node_id: str | None = None
    #: The task directory on the node (holds stdout.txt, stderr.txt and wd/).
    task_dir: str | None = None
    #: The task as Batch's REST API returns it (camelCase), for `--output json`.
    wire: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> TaskInfo:
        """A task from its REST wire shape (`GET /jobs/{job}/tasks/{task}`)."""
        info = wire.get("executionInfo") or {}
        failure = info.get("failureInfo")
        node = wire.get("nodeInfo") or {}
        return cls(
            id=wire["id"],
            state=wire["state"],
            command_line=wire.get("commandLine", ""),
            previous_state=wire.get("previousState"),
            state_transition_time=parse_time(wire.get("stateTransitionTime")),
            start_time=parse_time(info.get("startTime")),
            end_time=parse_time(info.get("endTime")),
            exit_code=info.get("exitCode"),
            result=info.get("result"),
            failure_info=(
                FailureInfo(
                    failure.get("category", ""),
                    failure.get("code", ""),
                    failure.get("message", ""),
                    tuple((d["name"], d["value"]) for d in failure.get("details") or ()),
                )
                if failure
                else None
            ),
            retry_count=info.get("retryCount", 0),
            requeue_count=info.get("requeueCount", 0),
            node_id=node.get("nodeId"),
            task_dir=node.get("taskRootDirectory"),
            wire=wire,
        )


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A file or directory of a task, named relative to the task directory
    (`stdout.txt`, `wd/output.csv`), as `az batch task file list` shows it."""

    name: str
    is_directory: bool
    size: int = 0
    last_modified: datetime | None = None


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """What `submit` did: tasks added, already present (unchanged), and replaced."""

    job_id: str
    added: int
    unchanged: int = 0
    replaced: int = 0
    #: Ids of the tasks whose definition changed (only non-empty when replace=True).
    replaced_ids: tuple[str, ...] = field(default=())


@runtime_checkable
class Backend(Protocol):
    """A place to run jobs. Implementations: the local engine; Azure Batch (later)."""

    #: Short name shown to users ("local", "azure").
    name: str

    def submit(self, job: Job, *, replace: bool = False) -> SubmitResult:
        """Store `job` and its tasks and make sure they run.

        Attaching to an existing job: finished tasks are kept, new tasks are added; a task
        whose definition changed raises `SubmitError` unless `replace` is true. Raises
        `SubmitError` if the job is completed or being deleted.
        """
        ...

    def jobs(self) -> list[JobStatus]:
        """Every job the backend knows, newest first."""
        ...

    def job_status(self, job_id: str) -> JobStatus:
        """State and task counts of one job (one cheap call). `BackendError` if unknown."""
        ...

    def tasks(self, job_id: str, state: TaskState | None = None) -> list[TaskInfo]:
        """The job's tasks, optionally only those in `state`, in definition order."""
        ...

    def list_tasks(
        self,
        job_id: str,
        *,
        state: TaskState | None = None,
        result: Literal["success", "failure"] | None = None,
        limit: int = 1000,
        continuation: str | None = None,
    ) -> tuple[list[TaskInfo], str | None]:
        """One page of the job's tasks, filtered by the backend (state, result), and the
        continuation of the next page (None on the last)."""
        ...

    def task(self, job_id: str, task_id: str) -> TaskInfo:
        """One task. `BackendError` if the job or the task is unknown."""
        ...

    def files(self, job_id: str, task_id: str, *, recursive: bool = True) -> list[FileInfo]:
        """Files of a task that has started. `BackendError` if it has not started yet."""
        ...

    def read_file(
        self, job_id: str, task_id: str, path: str, *, offset: int = 0, length: int | None = None
    ) -> bytes:
        """Bytes of a task file (`stdout.txt`, `wd/out.csv`), from `offset`.

        `path` must stay inside the task directory; `BackendError` if it does not exist.
        """
        ...

    def terminate(self, job_id: str, reason: str = "UserTerminate") -> None:
        """End the job: running tasks are killed, active tasks stay active and never run."""
        ...

    def delete(self, job_id: str) -> None:
        """Terminate the job if needed and remove it, its tasks and their files."""
        ...

    def enable(self, job_id: str) -> None:
        """Let a disabled job's tasks be scheduled again (`az batch job enable`)."""
        ...

    def disable(self, job_id: str, disable_tasks: str = "requeue") -> None:
        """Stop scheduling a job's tasks (`az batch job disable`); running tasks are
        requeued, terminated or left to finish (`disable_tasks`)."""
        ...

    def update_job(self, job_id: str, changes: dict[str, Any]) -> None:
        """Change a job's mutable properties, wire names (`az batch job set`)."""
        ...

    def terminate_task(self, job_id: str, task_id: str) -> None:
        """End one task (`az batch task stop`)."""
        ...

    def reactivate_task(self, job_id: str, task_id: str) -> None:
        """Run a failed task again, its retry count reset (`az batch task reactivate`)."""
        ...

    def close(self) -> None:
        """Release connections and files (the running work is not affected)."""
        ...


def each_task(
    backend: Backend,
    job_id: str,
    *,
    state: TaskState | None = None,
    result: Literal["success", "failure"] | None = None,
) -> Iterator[TaskInfo]:
    """Every task of a job that matches, page after page (`Backend.list_tasks`)."""
    continuation: str | None = None
    while True:
        page, continuation = backend.list_tasks(
            job_id, state=state, result=result, continuation=continuation
        )
        yield from page
        if continuation is None:
            return


class StoredTasks:
    """What a stored job already holds, asked of its backend (`validation.JobTasks`), so
    that a flow adding tasks to the job may depend on tasks an earlier submit added.

    A few ids are looked up one by one; more ids, or a range, read the job's listing
    once.
    """

    #: Up to this many ids are looked up one at a time rather than by a listing.
    FEW = 20

    def __init__(self, backend: Backend, job_id: str, *, uses_task_dependencies: bool) -> None:
        self.backend = backend
        self.job_id = job_id
        self.uses_task_dependencies = uses_task_dependencies
        self._keys: set[str] | None = None
        self._numbers: list[int] = []

    def _listing(self) -> set[str]:
        if self._keys is None:
            from batchflow.graph import numeric_index

            ids = [t.id for t in each_task(self.backend, self.job_id)]
            self._keys = {i.lower() for i in ids}
            self._numbers = [n for n, _ in numeric_index(ids)]
        return self._keys

    def having(self, ids: Sequence[str]) -> set[str]:
        """The ids among `ids` (lower-cased) that the job has."""
        if self._keys is None and len(ids) <= self.FEW:
            from batchflow.exceptions import BackendError

            found: set[str] = set()
            for task_id in ids:
                try:
                    self.backend.task(self.job_id, task_id)
                except BackendError as exc:
                    if exc.code != "TaskNotFound":
                        raise
                else:
                    found.add(task_id.lower())
            return found
        keys = self._listing()
        return {i.lower() for i in ids if i.lower() in keys}

    def numbers(self, start: int, end: int) -> set[int]:
        """The integers in `start..end` that an id of the job stands for."""
        from bisect import bisect_left, bisect_right

        self._listing()
        numbers = self._numbers
        return set(numbers[bisect_left(numbers, start) : bisect_right(numbers, end)])


def stored_tasks(backend: Backend, job_id: str) -> StoredTasks | None:
    """The tasks of the job `job_id` of `backend`, or None if it has no such job."""
    from batchflow.exceptions import BackendError

    try:
        status = backend.job_status(job_id)
    except BackendError as exc:
        if exc.code == "JobNotFound":
            return None
        raise
    uses = bool(status.wire.get("usesTaskDependencies"))
    return StoredTasks(backend, job_id, uses_task_dependencies=uses)


# Optional methods a backend may add (the CLI checks with `getattr`), kept out of the
# protocol so that a backend without them still satisfies it:
#
# - `failed_since(job_id, cursor) -> (list[TaskInfo], cursor)`: tasks that failed after
#   `cursor`, so a progress view can show failures as they happen without listing every
#   task on each refresh;
# - `ensure_progress(job_id)`: make sure something is working on the job (the local
#   backend restarts an engine that died; it resumes where the old one stopped);
# - `file_path(job_id, task_id, path) -> Path`: a local path for a task file, when the
#   files are on this machine (lets `logs --follow` and `download` avoid copying);
# - `start_early()`: get ready for the next `submit` while the caller still loads the flow
#   (the local backend starts its engine process, which waits for the job).
