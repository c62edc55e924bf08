"""The contract suite: Batch's job and task semantics, tested the same way on every backend.

Every test talks to a `client` (the `BatchClient` protocol below): Batch's data-plane
operations, taking and returning dicts in the REST wire shape (camelCase, lowercase enum
values) and raising `batchflow.exceptions.BackendError` with Batch's error `code` and the
`job_id` / `task_id` involved. Tests assert on codes, ids and states, never on wording,
and wait for states with `wait_for` (generous timeouts, no timed assertions); an order
of events comes from gates (a task that waits for its gate to open), never from sleeps.

**Adding a backend** (the HTTP emulator, the Azure backend) takes one class with the
shape of `LocalTarget`, registered in `TARGETS`:

- `__init__(self, tmp_path)`: set up the backend (start a server, connect to an
  account); `tmp_path` is the test's own directory;
- `client`: a `BatchClient` on it. It must be safe to use from several threads at once
  (the concurrency test shares it) and raise `BackendError` with `code`, `job_id` and
  `task_id` filled in (an HTTP client takes the code from the error body and the ids
  from the request it made);
- `pool_id`: the pool the tests' jobs go to. Its nodes must have `SLOTS` task slots
  (`requiredSlots` tests need 4); a single node, since the tests share files between
  tasks through `AZ_BATCH_NODE_SHARED_DIR`;
- `gate(name)`: a `Gate` that a task command can wait on and the test can open;
- `close()`: stop what `__init__` started and anything left behind (the local target
  kills its engine process).

Job ids are unique per test (`job_ids`), so targets whose accounts are shared keep
working; tests that list jobs filter on their own id prefix.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shlex
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from batchflow.backends.local.service import BatchService, Page
from batchflow.exceptions import BackendError
from tests.local.conftest import stop_engine

#: How long any wait for a state may take before the test fails (never a measure);
#: `CONTRACT_WAIT` shortens it while debugging.
WAIT = float(os.environ.get("CONTRACT_WAIT", "60"))
#: Task slots per node of every target's pool.
SLOTS = 4
#: What Batch returns for an unlimited duration.
INFINITE = "P10675199DT2H48M5.4775807S"

T = TypeVar("T")


class BatchClient(Protocol):
    """Batch's job and task operations in the wire shape (the contract under test)."""

    def create_job(self, spec: dict[str, Any]) -> dict[str, Any]: ...
    def get_job(self, job_id: str) -> dict[str, Any]: ...
    def list_jobs(
        self,
        *,
        state: str | None = None,
        id_prefix: str | None = None,
        limit: int = 1000,
        continuation: str | None = None,
    ) -> Page: ...
    def update_job(self, job_id: str, patch: dict[str, Any], *, replace: bool = False) -> None: ...
    def terminate_job(self, job_id: str, reason: str | None = None) -> None: ...
    def delete_job(self, job_id: str) -> None: ...
    def disable_job(self, job_id: str, disable_tasks: str = "requeue") -> None: ...
    def enable_job(self, job_id: str) -> None: ...
    def add_task(self, job_id: str, task: dict[str, Any]) -> dict[str, Any]: ...
    def add_tasks(self, job_id: str, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]: ...
    def get_task(self, job_id: str, task_id: str) -> dict[str, Any]: ...
    def list_tasks(
        self,
        job_id: str,
        *,
        state: str | None = None,
        result: str | None = None,
        id_prefix: str | None = None,
        limit: int = 1000,
        continuation: str | None = None,
    ) -> Page: ...
    def update_task(self, job_id: str, task_id: str, constraints: dict[str, Any]) -> None: ...
    def terminate_task(self, job_id: str, task_id: str) -> None: ...
    def delete_task(self, job_id: str, task_id: str) -> None: ...
    def reactivate_task(self, job_id: str, task_id: str) -> None: ...
    def list_subtasks(self, job_id: str, task_id: str) -> list[dict[str, Any]]: ...
    def task_counts(self, job_id: str) -> dict[str, dict[str, int]]: ...
    def preparation_status(self, job_id: str) -> list[dict[str, Any]]: ...
    def list_files(
        self, job_id: str, task_id: str, *, recursive: bool = False
    ) -> list[dict[str, Any]]: ...
    def read_file(
        self,
        job_id: str,
        task_id: str,
        path: str,
        *,
        offset: int = 0,
        length: int | None = None,
    ) -> bytes: ...
    def file_properties(self, job_id: str, task_id: str, path: str) -> dict[str, Any]: ...
    def delete_file(self, job_id: str, task_id: str, path: str) -> None: ...


class Gate(Protocol):
    """Something a task can wait for and a test can open."""

    def test(self) -> str:
        """A shell snippet that succeeds if the gate is open (and fails if not)."""
        ...

    def command(self, then: str = "") -> str:
        """A task command line that waits until the gate is open, then runs `then`
        (a shell snippet)."""
        ...

    def open(self) -> None:
        """Let every task waiting on this gate go on."""
        ...


def sh(script: str) -> str:
    """A command line running `script` with /bin/sh (Batch runs no shell by itself)."""
    return shlex.join(["/bin/sh", "-c", script])


# -- the local target ------------------------------------------------------------------


class LocalClient(BatchService):
    """The local service is the client; its `files` operations under flat names."""

    def list_files(
        self, job_id: str, task_id: str, *, recursive: bool = False
    ) -> list[dict[str, Any]]:
        return self.files.list(job_id, task_id, recursive=recursive)

    def read_file(
        self,
        job_id: str,
        task_id: str,
        path: str,
        *,
        offset: int = 0,
        length: int | None = None,
    ) -> bytes:
        return self.files.read(job_id, task_id, path, offset=offset, length=length)

    def file_properties(self, job_id: str, task_id: str, path: str) -> dict[str, Any]:
        return self.files.properties(job_id, task_id, path)

    def delete_file(self, job_id: str, task_id: str, path: str) -> None:
        self.files.delete(job_id, task_id, path)


class FileGate:
    """A gate that is a file: open once it exists (tasks run on this machine)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def test(self) -> str:
        return f"test -e {shlex.quote(str(self.path))}"

    def command(self, then: str = "") -> str:
        wait = f"until {self.test()}; do sleep 0.01; done"
        return sh(f"{wait}; {then}" if then else wait)

    def open(self) -> None:
        self.path.touch()


class LocalTarget:
    """`BatchService` on a fresh state directory, with a real engine process."""

    pool_id = "local"

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "state"
        self.gates = tmp_path / "gates"
        self.gates.mkdir()
        self.made: list[FileGate] = []
        self.client = LocalClient(self.root)
        with self.client.store.write() as db:  # the pool: one node with SLOTS slots
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('slots', ?)", (SLOTS,))
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('nodes', '1')")

    def gate(self, name: str) -> Gate:
        made = FileGate(self.gates / name)
        self.made.append(made)
        return made

    def close(self) -> None:
        for made in self.made:  # a task still waiting on its gate would outlive the test
            made.open()
        self.client.close()
        stop_engine(self.root)


# -- the emulator target: the azure-batch SDK over HTTP ------------------------------------


class EmulatorClient:
    """The contract's operations through the pinned azure-batch SDK to the emulator:
    dicts in the wire shape both ways (`as_dict()`), Batch's error code from the error
    body, the ids from the request."""

    def __init__(self, sdk: Any) -> None:
        self.sdk = sdk

    def _call(self, job_id: str | None, task_id: str | None, call: Callable[[], T]) -> T:
        from azure.core.exceptions import HttpResponseError

        try:
            return call()
        except HttpResponseError as exc:
            code = exc.error.code if exc.error is not None else None
            if code is None and exc.response is not None:  # a streamed download
                with contextlib.suppress(Exception):
                    code = json.loads(exc.response.read())["code"]
                with contextlib.suppress(Exception):
                    exc.response.close()
            raise BackendError(
                str(exc.message),
                code=code or f"HTTP{exc.status_code}",
                job_id=job_id,
                task_id=task_id,
            ) from None

    @staticmethod
    def _page(pager: Any, continuation: str | None) -> Page:
        pages = pager.by_page(continuation_token=continuation)
        page = Page(item.as_dict() for item in next(pages))
        page.continuation = pages.continuation_token or None
        return page

    def create_job(self, spec: dict[str, Any]) -> dict[str, Any]:
        self._call(spec.get("id"), None, lambda: self.sdk.create_job(spec))
        return self.get_job(spec["id"])

    @staticmethod
    def _entity(model: Any) -> dict[str, Any]:
        # An entity's body carries "odata.metadata" (as Batch's does); a listing's not.
        return {k: v for k, v in model.as_dict().items() if not k.startswith("odata.")}

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self._call(job_id, None, lambda: self._entity(self.sdk.get_job(job_id)))

    def list_jobs(
        self,
        *,
        state: str | None = None,
        id_prefix: str | None = None,
        limit: int = 1000,
        continuation: str | None = None,
    ) -> Page:
        parts = [f"state eq '{state}'"] if state else []
        parts += [f"startswith(id,'{id_prefix}')"] if id_prefix else []
        pager = self.sdk.list_jobs(filter=" and ".join(parts) or None, max_results=limit)
        return self._call(None, None, lambda: self._page(pager, continuation))

    def update_job(self, job_id: str, patch: dict[str, Any], *, replace: bool = False) -> None:
        if replace:
            body = {"poolInfo": self.get_job(job_id)["poolInfo"], **patch}
            self._call(job_id, None, lambda: self.sdk.replace_job(job_id, body))
        else:
            self._call(job_id, None, lambda: self.sdk.update_job(job_id, patch))

    def terminate_job(self, job_id: str, reason: str | None = None) -> None:
        from azure.batch.models._models import BatchJobTerminateOptions

        # SDK 15.1.0 refuses empty options client-side; an absent reason is UserTerminate.
        options = BatchJobTerminateOptions(termination_reason=reason or "UserTerminate")
        # The request the SDK's begin_terminate_job sends, without its poller: the
        # contract reads the job's states itself (likewise below).
        self._call(job_id, None, lambda: self.sdk._terminate_job_internal(job_id, options))

    def delete_job(self, job_id: str) -> None:
        self._call(job_id, None, lambda: self.sdk._delete_job_internal(job_id))

    def disable_job(self, job_id: str, disable_tasks: str = "requeue") -> None:
        body = {"disableTasks": disable_tasks}
        self._call(job_id, None, lambda: self.sdk._disable_job_internal(job_id, body))

    def enable_job(self, job_id: str) -> None:
        self._call(job_id, None, lambda: self.sdk._enable_job_internal(job_id))

    def add_task(self, job_id: str, task: dict[str, Any]) -> dict[str, Any]:
        self._call(job_id, task.get("id"), lambda: self.sdk.create_task(job_id, task))
        return self.get_task(job_id, task["id"])

    def add_tasks(self, job_id: str, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        group = {"value": tasks}
        result = self._call(job_id, None, lambda: self.sdk.create_task_collection(job_id, group))
        return [r.as_dict() for r in result.result_values]

    def get_task(self, job_id: str, task_id: str) -> dict[str, Any]:
        return self._call(job_id, task_id, lambda: self._entity(self.sdk.get_task(job_id, task_id)))

    def list_tasks(
        self,
        job_id: str,
        *,
        state: str | None = None,
        result: str | None = None,
        id_prefix: str | None = None,
        limit: int = 1000,
        continuation: str | None = None,
    ) -> Page:
        parts = [f"state eq '{state}'"] if state else []
        parts += [f"executionInfo/result eq '{result}'"] if result else []
        parts += [f"startswith(id,'{id_prefix}')"] if id_prefix else []
        pager = self.sdk.list_tasks(job_id, filter=" and ".join(parts) or None, max_results=limit)
        return self._call(job_id, None, lambda: self._page(pager, continuation))

    def update_task(self, job_id: str, task_id: str, constraints: dict[str, Any]) -> None:
        body = {"constraints": constraints}
        self._call(job_id, task_id, lambda: self.sdk.replace_task(job_id, task_id, body))

    def terminate_task(self, job_id: str, task_id: str) -> None:
        self._call(job_id, task_id, lambda: self.sdk.terminate_task(job_id, task_id))

    def delete_task(self, job_id: str, task_id: str) -> None:
        self._call(job_id, task_id, lambda: self.sdk.delete_task(job_id, task_id))

    def reactivate_task(self, job_id: str, task_id: str) -> None:
        self._call(job_id, task_id, lambda: self.sdk.reactivate_task(job_id, task_id))

    def list_subtasks(self, job_id: str, task_id: str) -> list[dict[str, Any]]:
        return self._call(
            job_id,
            task_id,
            lambda: [s.as_dict() for s in self.sdk.list_subtasks(job_id, task_id)],
        )

    def task_counts(self, job_id: str) -> dict[str, dict[str, int]]:
        found = self._call(job_id, None, lambda: self.sdk.get_job_task_counts(job_id).as_dict())
        return {k: v for k, v in found.items() if k in ("taskCounts", "taskSlotCounts")}

    def preparation_status(self, job_id: str) -> list[dict[str, Any]]:
        return self._call(
            job_id,
            None,
            lambda: [
                s.as_dict() for s in self.sdk.list_job_preparation_and_release_task_status(job_id)
            ],
        )

    def list_files(
        self, job_id: str, task_id: str, *, recursive: bool = False
    ) -> list[dict[str, Any]]:
        return self._call(
            job_id,
            task_id,
            lambda: [
                f.as_dict() for f in self.sdk.list_task_files(job_id, task_id, recursive=recursive)
            ],
        )

    def read_file(
        self,
        job_id: str,
        task_id: str,
        path: str,
        *,
        offset: int = 0,
        length: int | None = None,
    ) -> bytes:
        span = None
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            span = f"bytes={offset}-{end}"
        return self._call(
            job_id,
            task_id,
            lambda: b"".join(self.sdk.download_task_file(job_id, task_id, path, ocp_range=span)),
        )

    def file_properties(self, job_id: str, task_id: str, path: str) -> dict[str, Any]:
        from batchflow.backends.local.wire import timestamp

        try:
            found = self._call(
                job_id, task_id, lambda: self.sdk.get_task_file_properties(job_id, task_id, path)
            )
        except BackendError:
            # A HEAD answer has no body to carry the code: the GET of the file tells it.
            self.read_file(job_id, task_id, path, length=1)
            raise
        return {
            "name": path,
            "isDirectory": bool(found.is_directory),
            "properties": {
                "lastModified": timestamp(found.last_modified.timestamp()),
                "contentLength": str(found.content_length),
                "fileMode": found.file_mode,
            },
        }

    def delete_file(self, job_id: str, task_id: str, path: str) -> None:
        self._call(job_id, task_id, lambda: self.sdk.delete_task_file(job_id, task_id, path))


class EmulatorTarget:
    """The emulator (`serve`) on a fresh state directory, a pool of one node with `SLOTS`
    slots, driven through the azure-batch SDK."""

    pool_id = "contract"

    def __init__(self, tmp_path: Path) -> None:
        from batchflow.emulator import serve

        self.local = LocalTarget.__new__(LocalTarget)  # its gates: tasks run here too
        self.local.gates = tmp_path / "gates"
        self.local.gates.mkdir()
        self.local.made = []
        self._serving = serve(state_dir=tmp_path / "emulator")
        self.handle = self._serving.__enter__()
        sdk = self.handle.new_client(connection_pool_maxsize=16)
        sdk.create_pool(
            {
                "id": self.pool_id,
                "vmSize": "standard_d2s_v3",
                "targetDedicatedNodes": 1,
                "taskSlotsPerNode": SLOTS,
            }
        )
        self.client = EmulatorClient(sdk)

    def gate(self, name: str) -> Gate:
        return LocalTarget.gate(self.local, name)

    def close(self) -> None:
        for made in self.local.made:
            made.open()
        self.client.sdk.close()
        stop_engine(self.handle.state_dir)
        self._serving.__exit__(None, None, None)


#: Every backend the suite runs on: name -> target class.
TARGETS: dict[str, Callable[[Path], Any]] = {"local": LocalTarget, "emulator": EmulatorTarget}


@pytest.fixture(params=sorted(TARGETS))
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """The backend under test (one per `TARGETS` entry)."""
    instance = TARGETS[request.param](tmp_path)
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
def client(target: Any) -> BatchClient:
    """The backend's client."""
    return target.client  # type: ignore[no-any-return]


@pytest.fixture
def gate(target: Any) -> Callable[[str], Gate]:
    """`gate(name)`: a new gate of the backend under test."""
    return target.gate  # type: ignore[no-any-return]


@pytest.fixture
def job_ids() -> Iterator[str]:
    """Unique job ids for this test: `<prefix>-1`, `<prefix>-2`, ..."""
    prefix = f"ct{uuid.uuid4().hex[:10]}"
    return (f"{prefix}-{n}" for n in itertools.count(1))


@pytest.fixture
def new_job(client: BatchClient, target: Any, job_ids: Iterator[str]) -> Callable[..., str]:
    """`new_job(**fields)`: create a job on the target's pool; its id."""

    def make(**fields: Any) -> str:
        job_id = fields.pop("id", None) or next(job_ids)
        client.create_job({"id": job_id, "poolInfo": {"poolId": target.pool_id}, **fields})
        return job_id

    return make


# -- waiting ---------------------------------------------------------------------------


def wait_for(read: Callable[[], T], ok: Callable[[T], bool], what: str = "") -> T:
    """Poll `read()` until `ok(value)`; the value. Fails after `WAIT` seconds."""
    deadline = time.monotonic() + WAIT
    pause = 0.01
    while True:
        value = read()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {WAIT:.0f}s: {what or 'condition'}: {value}")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.1)


def task_in(client: BatchClient, job_id: str, task_id: str, *states: str) -> dict[str, Any]:
    """Wait until the task is in one of `states`; the task."""
    return wait_for(
        lambda: client.get_task(job_id, task_id),
        lambda t: t["state"] in states,
        f"task {task_id} {'/'.join(states)}",
    )


def job_in(client: BatchClient, job_id: str, *states: str) -> dict[str, Any]:
    """Wait until the job is in one of `states`; the job."""
    return wait_for(
        lambda: client.get_job(job_id),
        lambda j: j["state"] in states,
        f"job {job_id} {'/'.join(states)}",
    )


def job_gone(client: BatchClient, job_id: str) -> None:
    """Wait until the job is deleted (`JobNotFound`)."""

    def gone() -> bool:
        try:
            client.get_job(job_id)
        except BackendError as exc:
            assert exc.code == "JobNotFound", exc.code
            return True
        return False

    wait_for(gone, bool, f"job {job_id} deleted")


def all_tasks(client: BatchClient, job_id: str, **filters: Any) -> list[dict[str, Any]]:
    """Every task of the listing, following continuations."""
    found: list[dict[str, Any]] = []
    continuation: str | None = None
    while True:
        page = client.list_tasks(job_id, continuation=continuation, **filters)
        found += page
        continuation = page.continuation
        if continuation is None:
            return found


@contextlib.contextmanager
def refused(code: str, *, job_id: str | None = None, task_id: str | None = None) -> Iterator[None]:
    """Expect a `BackendError` with Batch's `code` (and these ids, compared as given)."""
    with pytest.raises(BackendError) as caught:
        yield
    error = caught.value
    assert error.code == code, f"{error.code} ({error}), expected {code}"
    if job_id is not None:
        assert (error.job_id or "").lower() == job_id.lower(), error.job_id
    if task_id is not None:
        assert (error.task_id or "").lower() == task_id.lower(), error.task_id
