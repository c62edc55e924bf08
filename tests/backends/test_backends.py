"""What every backend does the same way, run on the local engine and on the Azure backend
(azure-batch SDK -> emulator)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from batchflow.backends.base import each_task
from batchflow.dsl import Job
from batchflow.exceptions import BackendError
from batchflow.loader import load
from batchflow.model import JobSpec
from tests.backends.conftest import POOL, Gate, settled, wait_for


def test_a_graph_runs_and_reads_the_same(backend: Any) -> None:
    job = Job("graph", pool=POOL)
    first = job.task("first", "/bin/echo hello")
    job.task("bad", "/bin/sh -c 'echo oops >&2; exit 3'", after=[first])
    job.task("after-bad", "/bin/echo never", after=["bad"])
    job.task("other", "/bin/echo other", after=[first])
    result = backend.submit(job)
    assert (result.job_id, result.added, result.unchanged) == ("graph", 4, 0)
    status = settled(backend, "graph")
    assert status.backend == backend.name
    assert status.state == "active"  # onAllTasksComplete noaction: Batch leaves it active
    counts = status.counts
    assert (counts.succeeded, counts.failed, counts.active) == (2, 1, 1)
    failed, cursor = backend.failed_since("graph", 0)
    assert [t.id for t in failed] == ["bad"]
    assert failed[0].exit_code == 3 and failed[0].failure_info.code == "FailureExitCode"
    assert backend.failed_since("graph", cursor)[0] == []
    assert backend.read_file("graph", "first", "stdout.txt") == b"hello\n"
    assert backend.read_file("graph", "bad", "stderr.txt") == b"oops\n"
    assert backend.read_file("graph", "first", "stdout.txt", offset=2, length=2) == b"ll"
    names = {f.name for f in backend.files("graph", "first")}
    assert {"stdout.txt", "stderr.txt"} <= names
    assert backend.task("graph", "after-bad").state == "active"
    assert [t.id for t in backend.tasks("graph", state="completed")] == ["first", "bad", "other"]


def test_listing_pages_and_filters(backend: Any) -> None:
    job = Job("pages", pool=POOL)
    for i in range(5):
        job.task(f"t{i}", "/bin/true" if i != 2 else "/bin/false")
    backend.submit(job)
    settled(backend, "pages")
    page, token = backend.list_tasks("pages", limit=2)
    assert len(page) == 2 and token is not None
    seen = [t.id for t in page]
    while token is not None:
        page, token = backend.list_tasks("pages", limit=2, continuation=token)
        seen += [t.id for t in page]
    assert sorted(seen) == [f"t{i}" for i in range(5)]
    assert [t.id for t in each_task(backend, "pages", result="failure")] == ["t2"]
    assert len(list(each_task(backend, "pages", state="completed", result="success"))) == 4


def test_resubmitting_attaches_and_a_changed_task_needs_replace(backend: Any) -> None:
    job = Job("again", pool=POOL)
    job.task("a", "/bin/echo one")
    backend.submit(job)
    settled(backend, "again")
    same = backend.submit(job)
    assert (same.added, same.unchanged, same.replaced) == (0, 1, 0)
    grown = Job("again", pool=POOL)
    grown.task("a", "/bin/echo one")
    grown.task("b", "/bin/echo two")
    assert backend.submit(grown).added == 1
    changed = Job("again", pool=POOL)
    changed.task("a", "/bin/echo ONE")
    with pytest.raises(BackendError) as refused:
        backend.submit(changed)
    assert refused.value.code == "TaskDefinitionChanged" and refused.value.task_id == "a"
    replaced = backend.submit(changed, replace=True)
    assert replaced.replaced_ids == ("a",)
    wait_for(
        lambda: backend.task("again", "a"),
        lambda t: t.state == "completed",
        "the replaced task ran again",
    )
    assert backend.read_file("again", "a", "stdout.txt") == b"ONE\n"


def test_terminatejob_waits_for_every_task(backend: Any, gate: Callable[[str], Gate]) -> None:
    hold = gate("last")
    job = Job("ends", pool=POOL, on_all_tasks_complete="terminatejob")
    job.task("quick", "/bin/true")
    job.task("slow", hold.command())
    backend.submit(job)
    wait_for(lambda: backend.task("ends", "quick"), lambda t: t.state == "completed", "quick")
    assert backend.job_status("ends").state == "active"
    hold.open()
    status = settled(backend, "ends")
    assert (status.state, status.terminate_reason) == ("completed", "AllTasksComplete")
    with pytest.raises(BackendError) as late:
        more = Job("ends", pool=POOL)
        more.task("late", "/bin/true")
        backend.submit(more)
    assert late.value.code == "JobCompleted"


def test_terminate_kills_what_runs(backend: Any, gate: Callable[[str], Gate]) -> None:
    hold = gate("never")
    job = Job("stop", pool=POOL)
    job.task("waits", hold.command())
    backend.submit(job)
    wait_for(lambda: backend.task("stop", "waits"), lambda t: t.state == "running", "running")
    backend.terminate("stop")
    status = settled(backend, "stop")
    assert (status.state, status.terminate_reason) == ("completed", "UserTerminate")
    task = backend.task("stop", "waits")
    assert task.state == "completed" and task.result == "failure"


def test_a_failed_task_reactivated_runs_again(backend: Any, gate: Callable[[str], Gate]) -> None:
    fixed = gate("fixed")
    job = Job("fix", pool=POOL)
    job.task("flaky", f"/bin/sh -c 'test -e {fixed.path}'")
    job.task("next", "/bin/true", after=["flaky"])
    backend.submit(job)
    status = settled(backend, "fix")
    assert (status.counts.failed, status.counts.active) == (1, 1)
    fixed.open()
    backend.reactivate_task("fix", "flaky")
    wait_for(
        lambda: backend.job_status("fix").counts,
        lambda c: c.succeeded == 2,
        "both tasks succeeded after the reactivation",
    )


def test_delete_removes_the_job(backend: Any) -> None:
    job = Job("gone", pool=POOL)
    job.task("a", "/bin/true")
    backend.submit(job)
    settled(backend, "gone")
    backend.delete("gone")

    def missing() -> str | None:
        try:
            backend.job_status("gone")
        except BackendError as exc:
            return exc.code
        return None

    assert wait_for(missing, lambda code: code is not None, "the job is gone") == "JobNotFound"


def test_errors_carry_batch_codes(backend: Any, gate: Callable[[str], Gate]) -> None:
    with pytest.raises(BackendError) as no_job:
        backend.job_status("nope")
    assert no_job.value.code == "JobNotFound"
    hold = gate("hold")
    job = Job("codes", pool=POOL, max_parallel_tasks=1)
    job.task("runs", hold.command())
    job.task("waits", "/bin/true")
    backend.submit(job)
    with pytest.raises(BackendError) as no_task:
        backend.task("codes", "nope")
    assert no_task.value.code == "TaskNotFound"
    wait_for(lambda: backend.task("codes", "runs"), lambda t: t.state == "running", "running")
    with pytest.raises(BackendError) as not_started:
        backend.read_file("codes", "waits", "stdout.txt")
    assert not_started.value.kind in ("conflict", "not_found")
    with pytest.raises(BackendError) as outside:
        backend.read_file("codes", "runs", "../../../../etc/passwd")
    assert outside.value.kind == "invalid"
    hold.open()


def test_a_task_only_file_keeps_the_jobs_settings(
    backend: Any, gate: Callable[[str], Gate]
) -> None:
    """Tasks added to a `terminatejob` job by a flow that states no job settings: the job
    does not complete while they are added, and still terminates when all are done."""
    hold = gate("first")
    job = Job("keeps", pool=POOL, on_all_tasks_complete="terminatejob")
    job.task("first", hold.command())
    backend.submit(job)
    more = Job.from_spec(JobSpec(id="keeps"))  # what a task-only JSON file loads as
    more.task("second", "/bin/true")
    assert backend.submit(more).added == 1
    hold.open()
    status = settled(backend, "keeps")
    assert (status.state, status.terminate_reason) == ("completed", "AllTasksComplete")
    assert status.counts.succeeded == 2


def test_a_job_blocked_through_a_range_on_a_padded_id_is_settled(
    backend: Any, tmp_path: Path
) -> None:
    """`007` fails; `after` waits on the range 7-7, which names it as 7, and on `ok`;
    `last` waits on `after`: nothing more can run, and the job reads as settled."""
    path = tmp_path / "padded.json"
    path.write_text(
        json.dumps(
            {
                "id": "padded",
                "poolInfo": {"poolId": POOL},
                "usesTaskDependencies": True,
                "tasks": [
                    {"id": "007", "commandLine": "/bin/false"},
                    {"id": "ok", "commandLine": "/bin/true"},
                    {
                        "id": "after",
                        "commandLine": "/bin/true",
                        "dependsOn": {"taskIds": ["ok"], "taskIdRanges": [{"start": 7, "end": 7}]},
                    },
                    {"id": "last", "commandLine": "/bin/true", "dependsOn": {"taskIds": ["after"]}},
                ],
            }
        )
    )
    backend.submit(load(path).job())
    status = settled(backend, "padded")
    assert (status.counts.failed, status.counts.succeeded, status.counts.active) == (1, 1, 2)


def test_a_failure_line_quotes_stderr_but_never_repeats_the_failure(backend: Any) -> None:
    from batchflow.cli.progress import failure_line

    job = Job("lines", pool=POOL)
    job.task("bad", "/bin/sh -c 'echo first >&2; echo last words >&2; exit 3'")
    unreachable = [{"httpUrl": "http://127.0.0.1:9/input.txt", "filePath": "input.txt"}]
    job.task("unfetched", "/bin/true", resource_files=unreachable)
    backend.submit(job)
    assert settled(backend, "lines").counts.failed == 2
    lines = {t.id: failure_line(backend, "lines", t) for t in backend.tasks("lines")}
    assert lines["bad"] == '✗ bad  exit 3  stderr: "last words"'
    assert lines["unfetched"].startswith("✗ unfetched  BlobDownloadMiscError: ")
    assert "http://127.0.0.1:9/input.txt" in lines["unfetched"]
    assert "stderr:" not in lines["unfetched"]


def test_a_stored_job_tells_whether_it_takes_dependencies(backend: Any) -> None:
    from batchflow.backends.base import stored_tasks

    flat = Job("flat", pool=POOL)
    flat.task("a", "/bin/true")
    graph = Job("graph", pool=POOL)
    graph.task("b", "/bin/true", after=graph.task("a", "/bin/true"))
    backend.submit(flat)
    backend.submit(graph)
    found = {name: stored_tasks(backend, name) for name in ("flat", "graph", "nope")}
    assert found["nope"] is None
    assert found["flat"] is not None and not found["flat"].uses_task_dependencies
    assert found["graph"] is not None and found["graph"].uses_task_dependencies
    assert found["graph"].having(["A", "c"]) == {"a"}
