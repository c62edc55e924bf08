"""A flow's job and tasks on a Batch account, exactly once.

- The job is created with `onAllTasksComplete: noaction` whatever the flow says; the
  flow's value is set only once every task is in (a job created with `terminatejob` and
  no tasks completes at once: the tutorial's trap). A job already `terminatejob` keeps
  it (Batch refuses to turn it back): tasks added to it go in while it has unfinished
  ones, else it has completed and refuses them (`JobCompleted`).
- Tasks go in collections of at most 100 and under 1 MB (a 413 `RequestBodyTooLarge`
  splits the collection), several requests in flight.
- The task id is the idempotency key. Every task carries a hash of its definition in the
  environment variable `BATCHFLOW_TASK_HASH` (Batch returns definitions with defaults
  filled in, so their JSON cannot be compared). A retried add that answers `TaskExists`
  is a success when the stored task carries the same hash, and an error naming the task
  when it does not. Adds are retried per task: after a throttle, a server error, a
  timeout or a dropped connection, whatever the first attempt may or may not have added.
- Attaching to an existing job follows the local rules (`backends/local/attach.py`):
  finished tasks stay, new ones are added, a changed one is refused unless `replace`,
  which deletes it and adds it again (never while it runs).
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from batchflow.backends.azure.client import errors
from batchflow.backends.base import SubmitResult
from batchflow.exceptions import BackendError

if TYPE_CHECKING:
    from azure.batch import BatchClient


__all__ = ["HASH_VARIABLE", "TaskAdder", "retried", "submit_job", "task_hash", "transient"]

T = TypeVar("T")

#: The environment variable that carries a task's definition hash.
HASH_VARIABLE = "BATCHFLOW_TASK_HASH"
#: Batch's limits on one Add Task Collection request.
MAX_TASKS = 100
MAX_BYTES = 1_000_000
#: Requests in flight at once.
WORKERS = 4
#: Attempts per task before giving up (each after a back-off).
ATTEMPTS = 8
#: Codes of a per-task result (or a whole request) that are worth another attempt.
TRANSIENT = frozenset(
    {
        "ServerBusy",
        "OperationTimedOut",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "TooManyRequests",
        "HTTP429",
    }
)


def transient(exc: BackendError) -> bool:
    """Whether a failed request is worth sending again (throttled, busy, a server error,
    a connection dropped) once azure-core's own retries are spent."""
    return exc.code in TRANSIENT or exc.code.startswith("HTTP5")


def retried(
    endpoint: str,
    call: Callable[[], T],
    *,
    job_id: str | None = None,
    task_id: str | None = None,
    pause: Callable[[int], None] | None = None,
) -> T:
    """`call()` through `errors`, sent again after transient failures (up to `ATTEMPTS`).

    For the few calls a submission makes besides adds (reading, creating and updating the
    job, deleting a replaced task): azure-core does not retry a throttled PATCH, and
    retries a busy service only 3 times."""
    attempt = 0
    while True:
        try:
            with errors(endpoint, job_id=job_id, task_id=task_id):
                return call()
        except BackendError as exc:
            attempt += 1
            if not transient(exc) or attempt >= ATTEMPTS:
                raise
            (pause or _back_off)(attempt)


def task_hash(definition: str) -> str:
    """The hash a task carries: of its canonical definition (inputs' content included)."""
    return hashlib.sha256(definition.encode()).hexdigest()[:32]


def stored_hash(wire: dict[str, Any]) -> str | None:
    """The hash a stored task carries, if batchflow added it."""
    for setting in wire.get("environmentSettings") or ():
        if setting.get("name") == HASH_VARIABLE:
            return str(setting.get("value"))
    return None


@dataclass
class Prepared:
    """A task ready to add: its wire body (hash included) and the size of its JSON."""

    id: str
    body: dict[str, Any]
    hash: str
    size: int


def prepare(tasks: Sequence[dict[str, Any]], hashes: Sequence[str]) -> list[Prepared]:
    """Wire tasks with their hash variable added."""
    out: list[Prepared] = []
    dumps = json.dumps
    for wire, digest in zip(tasks, hashes, strict=True):
        body = dict(wire)
        env = [e for e in body.get("environmentSettings") or () if e.get("name") != HASH_VARIABLE]
        env.append({"name": HASH_VARIABLE, "value": digest})
        body["environmentSettings"] = env
        out.append(Prepared(body["id"], body, digest, len(dumps(body)) + 1))
    return out


def chunks(tasks: Sequence[Prepared]) -> list[list[Prepared]]:
    """Collections of at most `MAX_TASKS` tasks and `MAX_BYTES` of JSON, in order."""
    out: list[list[Prepared]] = []
    current: list[Prepared] = []
    size = 20  # {"value":[...]}
    for task in tasks:
        if current and (len(current) >= MAX_TASKS or size + task.size > MAX_BYTES):
            out.append(current)
            current, size = [], 20
        current.append(task)
        size += task.size
    if current:
        out.append(current)
    return out


class TaskAdder:
    """Adds tasks to one job exactly once (see the module docstring).

    `pause(attempt)` is the back-off before retry `attempt` (tests shorten it).
    """

    def __init__(
        self,
        client: BatchClient,
        endpoint: str,
        job_id: str,
        *,
        workers: int = WORKERS,
        pause: Callable[[int], None] | None = None,
    ) -> None:
        self.client = client
        self.endpoint = endpoint
        self.job_id = job_id
        self.workers = workers
        self.pause = pause or _back_off
        self._lock = threading.Lock()
        self.added = 0
        #: Tasks found already there with the same hash (a retry's first attempt had
        #: added them, or another submitter did).
        self.existed = 0

    def add(self, tasks: Sequence[Prepared]) -> None:
        """Add every task, or raise the first `BackendError` that is not transient."""
        if not tasks:
            return
        groups = chunks(tasks)
        if len(groups) == 1 or self.workers <= 1:
            for group in groups:
                self._add_group(group)
            return
        with ThreadPoolExecutor(self.workers, thread_name_prefix="batchflow-add") as pool:
            # Consume in order so the first error raised is the first group's.
            for _ in pool.map(self._add_group, groups):
                pass

    def _add_group(self, group: list[Prepared]) -> None:
        pending = group
        attempt = 0
        while pending:
            try:
                results = self._send(pending)
            except _TooLarge:
                if len(pending) == 1:
                    raise BackendError(
                        f"task '{pending[0].id}' is larger than the 1 MB Batch takes in one "
                        "request",
                        code="RequestBodyTooLarge",
                        job_id=self.job_id,
                        task_id=pending[0].id,
                    ) from None
                half = len(pending) // 2
                self._add_group(pending[:half])
                self._add_group(pending[half:])
                return
            except BackendError as exc:
                if not transient(exc):
                    raise
                attempt += 1
                if attempt >= ATTEMPTS:
                    raise
                self.pause(attempt)
                continue
            retry: list[Prepared] = []
            exists: list[Prepared] = []
            by_id = {t.id.lower(): t for t in pending}
            done = 0
            for result in results:
                task = by_id.pop(str(result.get("taskId", "")).lower(), None)
                if task is None:
                    continue
                status = result.get("status")
                error = result.get("error") or {}
                code = error.get("code")
                if status == "success":
                    done += 1
                elif code == "TaskExists":
                    exists.append(task)
                elif status == "servererror" or code in TRANSIENT:
                    retry.append(task)
                else:
                    message = (error.get("message") or {}).get("value") or code or "refused"
                    details = "; ".join(
                        f"{v.get('key')}: {v.get('value')}" for v in error.get("values") or ()
                    )
                    raise BackendError(
                        f"job '{self.job_id}' task '{task.id}': {message}"
                        + (f" ({details})" if details else ""),
                        code=code or "InvalidPropertyValue",
                        job_id=self.job_id,
                        task_id=task.id,
                    )
            retry.extend(by_id.values())  # no result at all: send again
            if exists:
                done += self._confirm(exists)
            if done:
                self._count(done)
            pending = retry
            if pending:
                attempt += 1
                if attempt >= ATTEMPTS:
                    raise BackendError(
                        f"job '{self.job_id}' task '{pending[0].id}': not added after "
                        f"{ATTEMPTS} attempts (the Batch service kept failing)",
                        code="ServerBusy",
                        job_id=self.job_id,
                        task_id=pending[0].id,
                    )
                self.pause(attempt)

    def _send(self, pending: list[Prepared]) -> list[dict[str, Any]]:
        from azure.core.exceptions import HttpResponseError

        body: Any = {"value": [t.body for t in pending]}
        try:
            with errors(self.endpoint, job_id=self.job_id):
                try:
                    result = self.client.create_task_collection(self.job_id, body)
                except HttpResponseError as exc:
                    if exc.status_code == 413:
                        raise _TooLarge from None
                    raise
        except BackendError as exc:
            if exc.code == "RequestBodyTooLarge":
                raise _TooLarge from None
            raise
        return list(result.as_dict().get("value") or ())

    def _confirm(self, exists: list[Prepared]) -> int:
        """Tasks that answered `TaskExists`: added by an earlier attempt if their hash
        matches (the count of those); else the first one is an error."""
        for task in exists:
            stored = self._stored(task.id)
            if stored_hash(stored) != task.hash:
                raise BackendError(
                    f"job '{self.job_id}' task '{task.id}': a different task with this id is "
                    "already in the job",
                    code="TaskDefinitionChanged",
                    job_id=self.job_id,
                    task_id=task.id,
                )
        with self._lock:
            self.existed += len(exists)
        return len(exists)

    def _stored(self, task_id: str) -> dict[str, Any]:
        """A task as stored (id and environment), read again after transient failures."""
        return retried(
            self.endpoint,
            lambda: dict(
                self.client.get_task(
                    self.job_id, task_id, select=["id", "environmentSettings"]
                ).as_dict()
            ),
            job_id=self.job_id,
            task_id=task_id,
            pause=self.pause,
        )

    def _count(self, n: int) -> None:
        with self._lock:
            self.added += n


class _TooLarge(Exception):
    """The service answered 413: the collection must be split."""


def _back_off(attempt: int) -> None:
    time.sleep(min(10.0, 0.2 * 2 ** (attempt - 1)) * (0.5 + random.random()))


# -- the job ------------------------------------------------------------------------------


def submit_job(
    client: BatchClient,
    endpoint: str,
    tasks: Sequence[dict[str, Any]],
    definitions: Sequence[str],
    spec: dict[str, Any],
    *,
    replace: bool = False,
    workers: int = WORKERS,
) -> SubmitResult:
    """Create or attach to `spec`'s job and add `tasks` (wire bodies, in flow order, with
    `definitions` their canonical definitions) exactly once; then set the flow's
    `onAllTasksComplete`."""
    job_id = spec["id"]
    stated = spec.get("onAllTasksComplete")
    hashes = [task_hash(d) for d in definitions]
    existing_job = get_job(client, endpoint, job_id)
    created = existing_job is None
    if created:
        body = {**spec, "onAllTasksComplete": "noaction"}
        job_json: Any = body  # the wire dict is the model's JSON
        create = functools.partial(client.create_job, job_json)
        try:
            retried(endpoint, create, job_id=job_id)
        except BackendError as exc:
            if exc.code != "JobExists":
                raise
            created = False  # another submitter (or an attempt that timed out) made it
        existing_job = get_job(client, endpoint, job_id) if not created else None
    existing: dict[str, tuple[str | None, str, str | None]] = {}
    if existing_job is not None:
        job_id = existing_job["id"]
        _check_job(client, endpoint, existing_job, spec, replace)
        existing = _existing_tasks(client, endpoint, job_id)
    new: list[int] = []
    changed: list[int] = []
    for pos, wire in enumerate(tasks):
        known = existing.get(wire["id"].lower())
        if known is None:
            new.append(pos)
        elif known[0] != hashes[pos]:
            changed.append(pos)
    if changed and not replace:
        task_id = tasks[changed[0]]["id"]
        raise BackendError(
            f"job '{job_id}' task '{task_id}': its definition changed since the task was submitted",
            code="TaskDefinitionChanged",
            job_id=job_id,
            task_id=task_id,
        )
    if existing_job is not None and (new or changed) and existing_job["state"] != "active":
        state = existing_job["state"]
        reason = (existing_job.get("executionInfo") or {}).get("terminateReason")
        raise BackendError(
            f"job '{job_id}' is {state}{f' ({reason})' if reason else ''}; Batch adds and "
            "changes no tasks in it",
            code={"completed": "JobCompleted", "terminating": "JobBeingTerminated"}.get(
                state, "JobNotActive"
            ),
            job_id=job_id,
        )
    # The flow's value, or (a task-only file states none) the job's own. Batch refuses to
    # turn terminatejob back into noaction, so tasks added to such a job go in as it is:
    # while any of its tasks is unfinished it cannot complete.
    stored_final = str((existing_job or {}).get("onAllTasksComplete") or "noaction").lower()
    final = str(stated or stored_final)
    for pos in changed:
        task_id = tasks[pos]["id"]
        if existing[task_id.lower()][1] in ("running", "preparing"):
            raise BackendError(
                f"job '{job_id}' task '{task_id}' is running; it can be replaced once it has "
                "finished",
                code="OperationInvalidForCurrentState",
                job_id=job_id,
                task_id=task_id,
            )
        try:
            retried(
                endpoint,
                functools.partial(client.delete_task, job_id, task_id),
                job_id=job_id,
                task_id=task_id,
            )
        except BackendError as exc:
            if exc.code != "TaskNotFound":
                raise
    adder = TaskAdder(client, endpoint, job_id, workers=workers)
    positions = new + changed
    adder.add(prepare([tasks[p] for p in positions], [hashes[p] for p in positions]))
    if final.lower() != "noaction" and (created or stored_final != final.lower()):
        _update(client, endpoint, job_id, {"onAllTasksComplete": final})
    return SubmitResult(
        job_id=job_id,
        added=len(new),
        unchanged=len(tasks) - len(new) - len(changed),
        replaced=len(changed),
        replaced_ids=tuple(tasks[p]["id"] for p in changed),
    )


def get_job(client: BatchClient, endpoint: str, job_id: str) -> dict[str, Any] | None:
    try:
        return retried(endpoint, lambda: dict(client.get_job(job_id).as_dict()), job_id=job_id)
    except BackendError as exc:
        if exc.code == "JobNotFound":
            return None
        raise


def _update(client: BatchClient, endpoint: str, job_id: str, changes: dict[str, Any]) -> None:
    patch: Any = changes  # the model's JSON
    retried(endpoint, functools.partial(client.update_job, job_id, patch), job_id=job_id)


def _check_job(
    client: BatchClient,
    endpoint: str,
    stored: dict[str, Any],
    spec: dict[str, Any],
    replace: bool,
) -> None:
    """The rules of attaching (as `backends/local/attach.py`): a job being deleted, or
    whose dependencies setting differs, is refused; settings the flow states that differ
    are updated with `replace` (those Batch lets change) or refused."""
    job_id = stored["id"]
    if stored.get("state") == "deleting":
        raise BackendError(
            f"job '{job_id}' is being deleted", code="JobBeingDeleted", job_id=job_id
        )
    if spec.get("usesTaskDependencies") and not stored.get("usesTaskDependencies"):
        raise BackendError(
            f"job '{job_id}' was created without usesTaskDependencies, so its tasks cannot "
            "have dependencies (Batch cannot change it after creation)",
            code="TaskDependenciesNotSpecifiedOnJob",
            job_id=job_id,
        )
    changes: dict[str, Any] = {
        key: spec[key]
        for key in ("priority", "maxParallelTasks", "onTaskFailure")
        if key in spec and _differs(stored.get(key), spec[key])
    }
    pool = (spec.get("poolInfo") or {}).get("poolId")
    stored_pool = (stored.get("poolInfo") or {}).get("poolId")
    if pool and stored_pool and pool.lower() != stored_pool.lower():
        changes["poolInfo"] = spec["poolInfo"]
    if not changes:
        return
    first = sorted(changes)[0]
    if not replace:
        raise BackendError(
            f"job '{job_id}' already exists with a different {first}",
            code="JobDefinitionChanged",
            job_id=job_id,
        )
    _update(client, endpoint, job_id, changes)


def _differs(stored: Any, stated: Any) -> bool:
    if isinstance(stored, str) and isinstance(stated, str):
        return stored.lower() != stated.lower()
    return bool(stored != stated)


def _existing_tasks(
    client: BatchClient, endpoint: str, job_id: str
) -> dict[str, tuple[str | None, str, str | None]]:
    """lower(id) -> (hash, state, result) of every task in the job (one paged listing)."""
    found: dict[str, tuple[str | None, str, str | None]] = {}

    def listing() -> list[dict[str, Any]]:
        select = ["id", "state", "environmentSettings", "executionInfo"]
        return [t.as_dict() for t in client.list_tasks(job_id, select=select)]

    for wire in retried(endpoint, listing, job_id=job_id):
        found[wire["id"].lower()] = (
            stored_hash(wire),
            wire.get("state", ""),
            (wire.get("executionInfo") or {}).get("result"),
        )
    return found
