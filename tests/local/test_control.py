"""Terminate, delete, and CLI processes reading while the engine writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from batchflow.backends.local import LocalBackend
from batchflow.dsl import Job
from tests.local.conftest import run, wait_for, wait_until_done

SH = "/bin/sh -c"


def test_terminate_kills_running_tasks_and_leaves_active_ones(
    state_dir: Path, tmp_path: Path
) -> None:
    backend = LocalBackend(state_dir, slots=1)
    job = Job("term")
    job.task("running", "sleep 30")
    job.task("queued", "/bin/true")
    backend.submit(job)
    wait_for(lambda: backend.task("term", "running").state == "running")
    backend.terminate("term", "StopIt")
    status = wait_until_done(backend, "term")
    assert status.state == "completed" and status.terminate_reason == "StopIt"
    ended = backend.task("term", "running")
    assert ended.result == "failure" and ended.exit_code is None
    assert ended.failure_info is not None and ended.failure_info.code == "TaskEnded"
    assert backend.task("term", "queued").state == "active"
    backend.close()


def test_delete_removes_the_job_and_its_files(backend: LocalBackend, state_dir: Path) -> None:
    from batchflow.exceptions import BackendError

    job = Job("gone")
    job.task("t", "sleep 30")
    backend.submit(job)
    wait_for(lambda: backend.task("gone", "t").state == "running")
    backend.delete("gone")

    def deleted() -> bool:
        try:
            backend.job_status("gone")
        except BackendError:
            return True
        return False

    wait_for(deleted)
    wait_for(lambda: not (state_dir / "nodes" / "node-1" / "workitems" / "gone").exists())
    assert [j.id for j in backend.jobs()] == []


def test_status_from_another_process_while_the_engine_runs(
    backend: LocalBackend, state_dir: Path
) -> None:
    job = Job("shared")
    for i in range(40):
        job.task(f"t{i}", "/bin/true")
    backend.submit(job)
    code = (
        "from batchflow.backends.local import LocalBackend;"
        f"b = LocalBackend({str(state_dir)!r});"
        "print(b.job_status('shared').counts.total)"
    )
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "40"
    assert wait_until_done(backend, "shared").counts.succeeded == 40


def test_a_job_manager_task_ends_the_job(backend: LocalBackend, tmp_path: Path) -> None:
    started = tmp_path / "started"
    manager = f"/bin/sh -c 'while [ ! -e {started} ]; do sleep 0.01; done'"
    job = Job(
        "managed",
        job_manager={"id": "manager", "commandLine": manager, "runExclusive": False},
    )
    job.task("long", f"/bin/sh -c 'touch {started}; sleep 30'")  # runs until killed
    status = run(backend, job)
    assert status.state == "completed" and status.terminate_reason == "JMComplete"
    assert backend.task("managed", "manager").result == "success"
    long = backend.task("managed", "long")
    assert long.failure_info is not None and long.failure_info.code == "TaskEnded"


def test_an_exclusive_job_manager_has_its_node_alone(backend: LocalBackend, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    manager = f"/bin/sh -c 'while [ ! -e {gate} ]; do sleep 0.01; done'"
    job = Job("exclusive", job_manager={"id": "manager", "commandLine": manager})
    job.task("other", "/bin/true")
    backend.submit(job)
    wait_for(lambda: backend.task("exclusive", "manager").state == "running")
    # a free slot and a ready task, but the node is the manager's
    assert backend.task("exclusive", "other").state == "active"
    gate.touch()
    status = wait_until_done(backend, "exclusive")
    assert status.terminate_reason == "JMComplete"
    # the only node was the manager's while it ran, and the job ended with it
    assert backend.task("exclusive", "other").state == "active"


def test_preparation_runs_once_per_node_and_release_at_the_end(
    state_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    backend = LocalBackend(state_dir, slots=2, nodes=2)
    job = Job(
        "prepared",
        on_all_tasks_complete="terminatejob",
        preparation={"commandLine": f"{SH} 'echo prep $AZ_BATCH_NODE_ID >> {log}'"},
        release={"commandLine": f"{SH} 'echo release $AZ_BATCH_NODE_ID >> {log}'"},
    )
    for i in range(6):
        job.task(f"t{i}", f"{SH} 'echo task >> {log}; test -d $AZ_BATCH_JOB_PREP_DIR'")
    status = run(backend, job)
    assert status.state == "completed" and status.counts.succeeded == 6
    lines = log.read_text().splitlines()
    preps = [line for line in lines if line.startswith("prep")]
    releases = [line for line in lines if line.startswith("release")]
    assert len(preps) == len(set(preps)) and 1 <= len(preps) <= 2
    assert sorted(p.split()[1] for p in preps) == sorted(r.split()[1] for r in releases)
    assert lines.index(preps[0]) < lines.index("task")
    backend.close()


def test_a_failed_preparation_keeps_tasks_off_the_node(backend: LocalBackend) -> None:
    job = Job("bad-prep", preparation={"commandLine": "/bin/false"})
    job.task("t", "/bin/true")
    status = wait_until_done_after_submit(backend, job)
    assert status.settled and status.state == "active"
    assert backend.task("bad-prep", "t").state == "active"


def wait_until_done_after_submit(backend: LocalBackend, job: Job):  # type: ignore[no-untyped-def]
    backend.submit(job)
    return wait_until_done(backend, job.id)
