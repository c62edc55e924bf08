"""`AzureBackend`: the `Backend` protocol on a Batch account, through the azure-batch SDK.

Every method is one or two SDK calls whose wire dicts (`as_dict()`) become the protocol's
types, so a job reads the same whether it ran here or on a pool. `submit` is in `submit`.
Monitoring is cheap by construction: `job_status` is the job and its task counts (never
a listing), failures are listed with a server-side filter and only when the failed count
moved, and the CLI polls with back-off (`poll`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from batchflow.backends.azure.client import batch_client, errors
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
from batchflow.exceptions import BackendError
from batchflow.names import task_number
from batchflow.redact import redact

if TYPE_CHECKING:
    from azure.batch import BatchClient

    from batchflow.backends.azure.staging import Stager
    from batchflow.dsl import Job
    from batchflow.stack import AzureTarget

__all__ = ["AzureBackend"]


class AzureBackend:
    """Runs jobs on an Azure Batch account (`target`: see `batchflow.stack`)."""

    name = "azure"
    #: How the CLI polls: from 1 s, growing to 15 s while nothing changes.
    poll = (1.0, 15.0)

    def __init__(
        self,
        target: AzureTarget,
        *,
        client: BatchClient | None = None,
        credential: Any = None,
        **client_options: Any,
    ) -> None:
        """`client` replaces the SDK client built from the target; `credential` (a token
        credential) replaces its Shared Key or `DefaultAzureCredential`; `client_options`
        go to `BatchClient` (e.g. `connection_verify` for a private CA)."""
        self.target = target
        self._client = client
        self._stager: Stager | None = None
        #: Called with (bytes done, bytes in all) while inputs upload (a progress bar).
        self.on_upload: Any = None
        self._credential = credential
        self._client_options = client_options
        #: Failures already reported per job, and the failed count last seen.
        self._reported: dict[str, set[str]] = {}
        self._failed_seen: dict[str, int] = {}
        #: Per job: the counts job_status read last, until failed_since uses them.
        self._counts: dict[str, TaskCounts] = {}
        #: Per job: the counts of the last blocked-check, and its answer.
        self._blocked: dict[str, tuple[tuple[int, int, int], bool]] = {}

    @property
    def client(self) -> BatchClient:
        if self._client is None:
            self._client = batch_client(self.target, self._credential, **self._client_options)
        return self._client

    def _errors(self, job_id: str | None = None, task_id: str | None = None) -> Any:
        return errors(self.target.endpoint, job_id=job_id, task_id=task_id)

    def describe(self) -> str:
        """`batch account 'bfdev' (stack 'dev')`, for the CLI's header line."""
        return self.target.describe()

    # -- submit ----------------------------------------------------------------------

    def submit(self, job: Job, *, replace: bool = False) -> SubmitResult:
        """Create the job (or attach to it) and add its tasks exactly once."""
        from batchflow.backends.azure.submit import submit_job
        from batchflow.backends.local.catalog import definitions

        spec = job.to_wire()  # the job's settings; its tasks are popped below
        tasks: list[dict[str, Any]] = spec.pop("tasks")
        pool = (spec.get("poolInfo") or {}).get("poolId")
        pool_id = self.target.pool_id(pool)
        if pool is None:
            # A task-only file attaches to the job as it is, on the job's own pool.
            from batchflow.backends.azure.submit import get_job

            stored = get_job(self.client, self.target.endpoint, job.id)
            if stored is not None:
                pool_id = (stored.get("poolInfo") or {}).get("poolId") or pool_id
        if pool_id is None:
            names = ", ".join(sorted(self.target.pool_ids)) or "none"
            raise BackendError(
                f"job '{job.id}' poolInfo: the flow names no pool and the target has "
                f"{'several' if self.target.pool_ids else 'no'} pools ({names})",
                code="PoolNotSpecified",
                job_id=job.id,
            )
        spec["poolInfo"] = {**(spec.get("poolInfo") or {}), "poolId": pool_id}
        if not self._pool_exists(job.id, pool_id):
            known = ", ".join(sorted(self.target.pool_ids.values()))
            raise BackendError(
                f"job '{job.id}' poolInfo.poolId: pool '{pool_id}' does not exist in "
                f"{self.target.describe()}"
                + (f"; its pools: {known}" if known else "")
                + " (its tasks would wait for it for ever)",
                code="PoolNotFound",
                job_id=job.id,
            )
        if any(job._inputs) or any(job._outputs) or job._handoffs:
            self._stage(job, tasks)
        return submit_job(
            self.client,
            self.target.endpoint,
            tasks,
            definitions(job),
            spec,
            replace=replace,
        )

    @property
    def stager(self) -> Stager:
        """The target's blob storage (for `inputs=`, `outputs=` and hand-offs)."""
        if self._stager is None:
            from batchflow.backends.azure.staging import Stager

            self._stager = Stager(self.target, progress=self._uploaded)
        return self._stager

    def _uploaded(self, done: int, total: int) -> None:
        if self.on_upload is not None:
            self.on_upload(done, total)

    def _stage(self, job: Job, tasks: list[dict[str, Any]]) -> None:
        """Upload the job's inputs and give its tasks the resource and output files
        that carry `inputs=`, hand-offs and `outputs=` (see `staging`)."""
        from azure.core.exceptions import AzureError

        stager = self.stager
        try:
            by_set = stager.stage_inputs(job)
            for pos, wire in enumerate(tasks):
                extra: list[dict[str, Any]] = []
                handed = job.handoffs(pos)
                if handed:
                    extra += stager.handoff_files(job.id, handed)
                inputs = job._inputs[pos]
                if inputs:
                    extra += by_set[inputs]
                if extra:
                    wire["resourceFiles"] = [*(wire.get("resourceFiles") or ()), *extra]
                outputs = job._outputs[pos]
                if outputs:
                    wire["outputFiles"] = [
                        *(wire.get("outputFiles") or ()),
                        *stager.output_files(job.id, wire["id"], outputs),
                    ]
        except AzureError as exc:
            message = str(getattr(exc, "message", "") or exc).strip().splitlines()
            raise BackendError(
                f"job '{job.id}': the stack's storage: "
                f"{redact(message[0] if message else type(exc).__name__)}",
                code="StorageUnavailable",
                job_id=job.id,
            ) from None

    def _pool_exists(self, job_id: str, pool_id: str) -> bool:
        # Not `pool_exists`: azure-batch 15.1 raises on its 404 instead of answering False.
        try:
            with self._errors(job_id):
                self.client.get_pool(pool_id, select=["id"])
        except BackendError as exc:
            if exc.code in ("PoolNotFound", "HTTP404"):
                return False
            raise
        return True

    # -- reads -----------------------------------------------------------------------

    def jobs(self) -> list[JobStatus]:
        """Every job of the account, newest first."""
        with self._errors():
            found = [j.as_dict() for j in self.client.list_jobs()]
        found.sort(key=lambda w: w.get("creationTime") or "", reverse=True)
        return [self.job_status(w["id"], w) for w in found]

    def job_status(self, job_id: str, wire: dict[str, Any] | None = None) -> JobStatus:
        """The job and its task counts: two calls, never a task listing."""
        with self._errors(job_id):
            if wire is None:
                wire = self.client.get_job(job_id).as_dict()
            counts = self.client.get_job_task_counts(job_id).as_dict()["taskCounts"]
        task_counts = TaskCounts(
            int(counts.get("active", 0)),
            int(counts.get("running", 0)),
            int(counts.get("completed", 0)),
            int(counts.get("succeeded", 0)),
            int(counts.get("failed", 0)),
        )
        self._counts[job_id] = task_counts  # failed_since's next call need not ask again
        info = wire.get("executionInfo") or {}
        state = wire["state"]
        outputs = self.target.containers.get("outputs")
        location = (
            f"{self.target.blob_endpoint}/{outputs}/{wire['id']}/"
            if outputs and self.target.blob_endpoint
            else None
        )
        return JobStatus(
            id=wire["id"],
            state=state,
            counts=task_counts,
            pool_id=(wire.get("poolInfo") or {}).get("poolId"),
            creation_time=parse_time(wire.get("creationTime")),
            end_time=parse_time(info.get("endTime")),
            terminate_reason=info.get("terminateReason"),
            outputs_location=location,
            backend=self.name,
            settled=state == "completed" or state == "disabled" or self._settled(wire, task_counts),
            wire=wire,
        )

    def _settled(self, wire: dict[str, Any], counts: TaskCounts) -> bool:
        """Whether nothing runs and nothing can start: every task completed, or the rest
        wait on failed dependencies (checked only when nothing runs and a task failed)."""
        if wire["state"] != "active" or counts.running:
            return False
        if counts.active == 0:
            # A job that terminates when its tasks complete is about to: wait for that.
            ends = str(wire.get("onAllTasksComplete", "")).lower() == "terminatejob"
            return counts.total > 0 and not ends
        if not counts.failed or not wire.get("usesTaskDependencies"):
            return False
        # Two listings: only again when the counts moved (a pool scaling up from zero
        # after an early failure would otherwise list every waiting task on each poll).
        key = (counts.active, counts.completed, counts.failed)
        known = self._blocked.get(wire["id"])
        if known is None or known[0] != key:
            known = (key, self._all_blocked(wire["id"]))
            self._blocked[wire["id"]] = known
        return known[1]

    def _all_blocked(self, job_id: str) -> bool:
        """Every active task depends, directly or through another active task, on a
        failed task (a failure that blocks: Batch's default dependency action)."""
        with self._errors(job_id):
            failed = [
                t.id
                for t in self.client.list_tasks(
                    job_id,
                    filter="executionInfo/result eq 'failure'",
                    select=["id", "exitConditions"],
                )
                if not _satisfies_when_failed(t.as_dict())
            ]
            waiting = {
                t.id: t.as_dict().get("dependsOn") or {}
                for t in self.client.list_tasks(
                    job_id, filter="state eq 'active'", select=["id", "dependsOn"]
                )
            }
        # Ids name parents case-insensitively; ranges name numeric ids by number (`007` is 7).
        stuck: set[str | int] = set()
        for task_id in failed:
            stuck.update(_names(task_id))
        blocked: set[str] = set()
        changed = True
        while changed:
            changed = False
            for task_id, depends in waiting.items():
                if task_id in blocked:
                    continue
                ids = {p.lower() for p in depends.get("taskIds") or ()}
                numbers = {
                    n
                    for span in depends.get("taskIdRanges") or ()
                    for n in range(span["start"], span["end"] + 1)
                }
                if not stuck.isdisjoint(ids) or not stuck.isdisjoint(numbers):
                    blocked.add(task_id)
                    stuck.update(_names(task_id))
                    changed = True
        return len(blocked) == len(waiting)

    def tasks(self, job_id: str, state: TaskState | None = None) -> list[TaskInfo]:
        """The job's tasks, optionally only those in `state`."""
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
        """One page of the job's tasks, filtered by the service."""
        clauses = []
        if state is not None:
            clauses.append(f"state eq '{state}'")
        if result is not None:
            clauses.append(f"executionInfo/result eq '{result}'")
        with self._errors(job_id):
            pages = self.client.list_tasks(
                job_id,
                filter=" and ".join(clauses) or None,
                max_results=limit,
            ).by_page(continuation_token=continuation)
            page = list(next(pages))
            token = getattr(pages, "continuation_token", None)
        return [TaskInfo.from_wire(t.as_dict()) for t in page], token or None

    def task(self, job_id: str, task_id: str) -> TaskInfo:
        """One task."""
        with self._errors(job_id, task_id):
            return TaskInfo.from_wire(self.client.get_task(job_id, task_id).as_dict())

    def failed_since(self, job_id: str, cursor: int = 0) -> tuple[list[TaskInfo], int]:
        """Failures not reported yet (listed with a server-side filter, only when the
        failed count moved since the last call); the cursor counts those reported."""
        seen = self._counts.pop(job_id, None)  # what job_status just read, if it did
        if seen is None:
            with self._errors(job_id):
                counts = self.client.get_job_task_counts(job_id).as_dict()["taskCounts"]
            failed = int(counts.get("failed", 0))
        else:
            failed = seen.failed
        if cursor == 0:  # from the start: every failure
            self._reported.pop(job_id, None)
            self._failed_seen.pop(job_id, None)
        if failed == 0 or failed == self._failed_seen.get(job_id):
            return [], cursor
        reported = self._reported.setdefault(job_id, set())
        found = [
            task
            for task in each_task(self, job_id, state="completed", result="failure")
            if task.id not in reported
        ]
        reported.update(t.id for t in found)
        self._failed_seen[job_id] = failed
        return found, len(reported)

    def files(self, job_id: str, task_id: str, *, recursive: bool = True) -> list[FileInfo]:
        """Files of a started task on its node."""
        with self._errors(job_id, task_id):
            entries = [
                f.as_dict()
                for f in self.client.list_task_files(job_id, task_id, recursive=recursive)
            ]
        return [
            FileInfo(
                name=entry["name"],
                is_directory=bool(entry.get("isDirectory")),
                size=int((entry.get("properties") or {}).get("contentLength", 0)),
                last_modified=parse_time((entry.get("properties") or {}).get("lastModified")),
            )
            for entry in entries
        ]

    def read_file(
        self, job_id: str, task_id: str, path: str, *, offset: int = 0, length: int | None = None
    ) -> bytes:
        """Bytes of a task file on its node, from `offset`."""
        if Path(path).is_absolute() or ".." in Path(path).parts:
            raise BackendError(
                f"'{path}' is outside the task directory",
                code="InvalidPropertyValue",
                job_id=job_id,
                task_id=task_id,
            )
        ocp_range = None
        if offset or length is not None:
            if length is None:  # Batch takes only closed ranges: up to the file's size now
                with self._errors(job_id, task_id):
                    props = self.client.get_task_file_properties(job_id, task_id, path)
                size = int(props.content_length or 0)
                if offset >= size:
                    return b""
                length = size - offset
            if length <= 0:
                return b""
            ocp_range = f"bytes={offset}-{offset + length - 1}"
        try:
            with self._errors(job_id, task_id):
                return b"".join(
                    self.client.download_task_file(job_id, task_id, path, ocp_range=ocp_range)
                )
        except BackendError as exc:
            # The node may be gone (or the file cleaned up): a collected output is also
            # in the outputs container.
            if exc.kind == "invalid" or not self.target.containers.get("outputs"):
                raise
            found = self._collected(job_id, task_id, path)
            if found is None:
                raise
            stop = len(found) if length is None else offset + length
            return found[offset:stop]

    def _collected(self, job_id: str, task_id: str, path: str) -> bytes | None:
        from azure.core.exceptions import AzureError

        try:
            return self.stager.read_output(job_id, task_id, path)
        except (AzureError, BackendError):
            return None

    # -- control ---------------------------------------------------------------------

    def terminate(self, job_id: str, reason: str = "UserTerminate") -> None:
        """End the job (Batch answers at once; the job is `terminating` until done)."""
        options: Any = {"terminateReason": reason}
        with self._errors(job_id):
            self.client.begin_terminate_job(job_id, options)

    def enable(self, job_id: str) -> None:
        """A disabled job becomes active again."""
        with self._errors(job_id):
            self.client.begin_enable_job(job_id)

    def disable(self, job_id: str, disable_tasks: str = "requeue") -> None:
        """No task of the job starts until it is enabled."""
        body: Any = {"disableTasks": disable_tasks}
        with self._errors(job_id):
            self.client.begin_disable_job(job_id, body)

    def delete(self, job_id: str) -> None:
        """Delete the job, its tasks and their files (Batch does it asynchronously)."""
        with self._errors(job_id):
            self.client.begin_delete_job(job_id)

    def update_job(self, job_id: str, changes: dict[str, Any]) -> None:
        """Change the job's mutable properties (wire names), as `az batch job set`."""
        body: Any = changes
        with self._errors(job_id):
            self.client.update_job(job_id, body)

    def terminate_task(self, job_id: str, task_id: str) -> None:
        """End one task."""
        with self._errors(job_id, task_id):
            self.client.terminate_task(job_id, task_id)

    def reactivate_task(self, job_id: str, task_id: str) -> None:
        """Run a failed task again."""
        with self._errors(job_id, task_id):
            self.client.reactivate_task(job_id, task_id)

    def close(self) -> None:
        """Close the client's connections (the running work is not affected)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._stager is not None:
            self._stager.close()
            self._stager = None


def _names(task_id: str) -> tuple[str | int, ...]:
    """How dependencies name a task: its id (case-insensitively), and for a numeric id
    its number too (a range's `1-10` takes `007` as 7, as Batch does)."""
    number = task_number(task_id)
    return (task_id.lower(),) if number is None else (task_id.lower(), number)


def _satisfies_when_failed(task: dict[str, Any]) -> bool:
    """Whether a failed task's exit conditions let its dependents run anyway."""
    conditions = task.get("exitConditions") or {}
    actions = [conditions.get("default") or {}]
    actions += [c.get("exitOptions") or {} for c in conditions.get("exitCodes") or ()]
    actions += [c.get("exitOptions") or {} for c in conditions.get("exitCodeRanges") or ()]
    return any(str(a.get("dependencyAction", "")).lower() == "satisfy" for a in actions)
