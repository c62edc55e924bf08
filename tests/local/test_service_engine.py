"""What the engine does for the service: adds while a job runs, a job's own environment,
idleness with deadlines pending, retention, reactivation through the CLI's backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchflow.backends.local import LocalBackend
from batchflow.backends.local.control import engine_pid
from batchflow.backends.local.paths import StateDir
from batchflow.dsl import Job
from batchflow.exceptions import BackendError
from tests.local.conftest import run, wait_for, wait_until_done

SH = "/bin/sh -c"


def gated(gate: Path) -> str:
    """A command that waits for `gate` to exist (the test decides when it ends)."""
    return f"{SH} 'while [ ! -e {gate} ]; do sleep 0.01; done'"


def test_tasks_added_while_the_job_manager_runs_keep_their_own_records(
    backend: LocalBackend, tmp_path: Path
) -> None:
    """The tutorial's job manager (runExclusive false), then work tasks added by a second
    submit while it runs: the manager's run stays the manager's."""
    gate = tmp_path / "gate"
    manager = {
        "id": "manager",
        "commandLine": gated(gate),
        "runExclusive": False,
        "killJobOnCompletion": False,
    }
    job = Job("jm", job_manager=manager)
    job.task("work-0", "/bin/true")
    backend.submit(job)
    wait_for(lambda: backend.task("jm", "work-0").state == "completed")
    wait_for(lambda: backend.task("jm", "manager").state == "running")
    more = Job("jm", job_manager=manager)
    more.task("work-0", "/bin/true")
    more.task("work-1", "/bin/true")
    assert backend.submit(more).added == 1
    wait_for(lambda: backend.task("jm", "work-1").state == "completed")
    assert backend.task("jm", "manager").state == "running"
    gate.touch()
    wait_for(lambda: backend.task("jm", "manager").state == "completed")
    assert backend.task("jm", "manager").result == "success"
    backend.terminate("jm")
    wait_until_done(backend, "jm")
    for task_id in ("work-0", "work-1", "manager"):
        info = backend.task("jm", task_id)
        assert (info.state, info.result) == ("completed", "success"), task_id


def test_a_jobs_tasks_see_the_environment_of_its_creator_only(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = tmp_path / "gate"
    show = f"{SH} 'echo secret=$MYSECRET lang=$LANG'"
    monkeypatch.setenv("MYSECRET", "first")
    monkeypatch.setenv("LANG", "C.UTF-8")
    first = LocalBackend(state_dir, slots=2)
    job = Job("env-a")
    job.task("hold", gated(gate))  # keeps the first submit's engine running
    job.task("show", show)
    first.submit(job)
    wait_for(lambda: first.task("env-a", "show").state == "completed")
    monkeypatch.setenv("MYSECRET", "second")
    monkeypatch.setenv("LANG", "POSIX")
    second = LocalBackend(state_dir, slots=2)
    other = Job("env-b")
    other.task("show", show)
    second.submit(other)
    wait_for(lambda: second.task("env-b", "show").state == "completed")
    gate.touch()
    assert first.read_file("env-a", "show", "stdout.txt") == b"secret= lang=C.UTF-8\n"
    assert second.read_file("env-b", "show", "stdout.txt") == b"secret= lang=POSIX\n"
    first.close()
    second.close()


def test_the_engine_exits_with_a_wall_clock_pending_and_a_read_applies_it(
    backend: LocalBackend, state_dir: Path
) -> None:
    job = Job("deadline", max_wall_clock_time="PT2S", uses_task_dependencies=True)
    bad = job.task("bad", "/bin/false")
    job.task("blocked", "/bin/true", after=bad)  # waits for ever
    status = run(backend, job)
    assert status.state == "active" and status.settled
    wait_for(lambda: engine_pid(StateDir(state_dir)) is None)  # nothing to run: it left
    wait_for(lambda: backend.job_status("deadline").state == "completed")
    status = backend.job_status("deadline")
    assert status.terminate_reason == "MaxWallClockTimeExpiry"
    assert backend.task("deadline", "blocked").state == "active"


def test_a_completed_tasks_directory_goes_after_its_retention_time(
    backend: LocalBackend, state_dir: Path
) -> None:
    job = Job("kept")
    job.task("short", "/bin/sh -c 'echo hi'", retention="PT3S")
    job.task("long", "/bin/sh -c 'echo hi'")
    run(backend, job)
    short_dir = Path(backend.task("kept", "short").task_dir or "")
    long_dir = Path(backend.task("kept", "long").task_dir or "")
    assert short_dir.is_dir() and long_dir.is_dir()
    wait_for(lambda: engine_pid(StateDir(state_dir)) is None)
    # the next engine (started by any new work) removes what is past its retention
    nudge = Job("nudge")
    nudge.task("t", "/bin/true")

    def cleaned() -> bool:
        if engine_pid(StateDir(state_dir)) is None:
            backend.submit(nudge)
        return not short_dir.exists()

    wait_for(cleaned)
    assert long_dir.is_dir()
    with pytest.raises(BackendError) as caught:
        backend.read_file("kept", "short", "stdout.txt")
    assert caught.value.code == "TaskFilesCleanedup"


def test_reactivated_failed_tasks_run_again_after_a_fix(
    backend: LocalBackend, tmp_path: Path
) -> None:
    fixed = tmp_path / "fixed"
    job = Job("fix-me", uses_task_dependencies=True)
    flaky = job.task("flaky", f"{SH} 'test -e {fixed}'", retries=1)
    job.task("after", "/bin/true", after=flaky)
    status = run(backend, job)
    assert status.counts.failed == 1 and backend.task("fix-me", "flaky").retry_count == 1
    with pytest.raises(BackendError) as caught:
        backend.reactivate_task("fix-me", "after")  # never ran
    assert caught.value.code == "TaskNotCompleted"
    fixed.touch()
    backend.reactivate_task("fix-me", "flaky")
    # back in the queue: the engine may have started it already
    assert backend.task("fix-me", "flaky").state in ("active", "running", "completed")
    status = wait_until_done(backend, "fix-me")
    assert status.counts.succeeded == 2 and status.counts.failed == 0
    assert backend.task("fix-me", "flaky").retry_count == 0
    with pytest.raises(BackendError) as caught:
        backend.reactivate_task("fix-me", "flaky")
    assert caught.value.code == "TaskSucceeded"


def test_dependents_added_before_their_parents_run_after_them(state_dir: Path) -> None:
    """The SDK's create_tasks sends the last chunk first: every task of a pipeline arrives
    before its parent, and a gate task arrives last of all."""
    from batchflow.backends.local.service import BatchService
    from batchflow.backends.local.wire import timestamp

    service = BatchService(StateDir(state_dir))
    service.create_job(
        {"id": "reversed", "poolInfo": {"poolId": "p"}, "usesTaskDependencies": True}
    )
    tasks = [
        {
            "id": f"t{i}",
            "commandLine": "/bin/true",
            "dependsOn": {"taskIds": [f"t{i - 3}" if i >= 3 else "gate"]},
        }
        for i in range(30)
    ]
    for start in range(27, -1, -3):  # chunks of 3, the last one first
        results = service.add_tasks("reversed", tasks[start : start + 3])
        assert [r["status"] for r in results] == ["success"] * 3
    assert service.task_counts("reversed")["taskCounts"]["active"] == 30
    service.add_task("reversed", {"id": "gate", "commandLine": "/bin/true"})
    wait_for(lambda: service.task_counts("reversed")["taskCounts"]["succeeded"] == 31)
    for i in range(30):
        parent = service.get_task("reversed", f"t{i - 3}" if i >= 3 else "gate")
        child = service.get_task("reversed", f"t{i}")
        ended = parent["executionInfo"]["endTime"]
        assert child["executionInfo"]["startTime"] >= ended, (i, timestamp(0))
    service.close()


def test_work_added_right_after_a_job_is_created_is_never_stranded(tmp_path: Path) -> None:
    """An engine started by create_job may decide "nothing to run" while the next call
    adds tasks; its late write must not hide them (repeated: the race is a matter of
    microseconds)."""
    from batchflow.backends.local.service import BatchService

    for attempt in range(6):
        service = BatchService(StateDir(tmp_path / f"state-{attempt}"))
        service.create_job({"id": "etl", "poolInfo": {"poolId": "p"}, "usesTaskDependencies": True})
        service.add_tasks(
            "etl",
            [{"id": "load", "commandLine": "/bin/true", "dependsOn": {"taskIds": ["extract"]}}],
        )
        service.add_task("etl", {"id": "extract", "commandLine": "/bin/true"})
        wait_for(lambda s=service: s.task_counts("etl")["taskCounts"]["succeeded"] == 2)
        service.close()


def test_the_engines_verdict_never_hides_tasks_added_after_it_looked(tmp_path: Path) -> None:
    """The race above, made deterministic: the engine looks (no tasks), a service adds a
    task, then the engine records its verdict; the job must not read as settled."""
    from batchflow.backends.local.control import try_lock
    from batchflow.backends.local.engine import Engine
    from batchflow.backends.local.service import BatchService

    state = StateDir(tmp_path / "state")
    service = BatchService(state, engine=False)
    service.create_job({"id": "etl", "poolInfo": {"poolId": "p"}})
    lock = try_lock(state.lock) if state.root.exists() else None
    assert lock is not None
    engine = Engine(state, lock)
    engine.scan()
    engine.ledger.commit()
    service.add_task("etl", {"id": "late", "commandLine": "/bin/true"})
    engine.mark_settled()
    engine.ledger.commit()
    assert service.store.one("SELECT settled FROM jobs")[0] == 0
    engine.scan()  # the engine's next look sees the task and can start it
    assert engine.ledger.jobs[1].can_start()
    engine.dirs.close()
    engine.store.close()
    service.close()
